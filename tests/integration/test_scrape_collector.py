"""The scrape collector against the real marketplace replicas listed in Prometheus' file_sd file."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from vigil.collectors.scrape import ScrapeCollector, ScrapeSignal, ScrapeTarget, targets_from_file_sd
from vigil.demo_marketplace.runner import Marketplace
from vigil.stack.private_prometheus import free_port

pytestmark = pytest.mark.integration

DURATION = "http_server_request_duration_seconds"
SIGNALS = [
    ScrapeSignal("requests_per_s", DURATION, "rate", by=("service",)),
    ScrapeSignal("latency_p99_seconds", DURATION, "quantile", by=("service",), quantile=0.99),
    ScrapeSignal("error_ratio", DURATION, "ratio", by=("service",), numerator_match={"status_class": "~5.."}),
    ScrapeSignal("rss_bytes", "process_resident_memory_bytes", "gauge", by=("service",), aggregation="max"),
]


def browse(url: str, stop: threading.Event, sent: list[int]) -> None:
    with requests.Session() as session:
        while not stop.is_set():
            session.get(url, timeout=10).raise_for_status()
            sent.append(1)
            time.sleep(0.02)


def test_rates_and_p99_per_service_from_the_replicas(marketplace: Marketplace) -> None:
    # The fixture starts the marketplace when it is not running, which also writes the file_sd file.
    file_sd = marketplace.stack.home / "prometheus" / "targets" / "marketplace.json"
    targets = [t for t in targets_from_file_sd(file_sd) if t.labels.get("job") == "marketplace"]
    dead = ScrapeTarget(f"http://127.0.0.1:{free_port()}/metrics", {"job": "marketplace", "service": "ghost"})
    collector = ScrapeCollector("scrape", [*targets, dead], SIGNALS, timeout=3.0)
    products = f"{marketplace.url('gateway')}/api/products?category=books"
    requests.get(products, timeout=10).raise_for_status()  # so the series exist before the first scrape

    stop, sent = threading.Event(), list[int]()
    browser = threading.Thread(target=browse, args=(products, stop, sent), daemon=True)
    browser.start()
    try:
        first = collector.collect(time.time())
        time.sleep(3)
        second = collector.collect(time.time())
    finally:
        stop.set()
        browser.join(timeout=15)

    assert first.up
    assert not any(key.signal in ("requests_per_s", "latency_p99_seconds") for key in first.series)
    assert second.up, second.error
    by_signal: dict[str, dict[str, float]] = {}
    for key, points in second.series.items():
        assert len(points) == 1
        by_signal.setdefault(key.signal, {})[key.label_dict().get("service", "")] = points[0].value

    rates = by_signal["requests_per_s"]
    assert all(rate >= 0 for rate in rates.values()), rates
    assert len(sent) > 10
    # The gateway served what the browser sent (3 s at ~30/s); the catalog served the gateway's calls.
    assert rates["gateway"] > 1.0
    assert rates["catalog"] > 1.0
    p99 = by_signal["latency_p99_seconds"]
    for service in ("gateway", "catalog"):
        assert 0 < p99[service] <= 10.0, p99  # within the replicas' bucket bounds
    assert set(p99) <= set(rates)
    assert 0 <= by_signal["error_ratio"]["gateway"] <= 1
    assert by_signal["rss_bytes"]["gateway"] > 10e6
    assert "ghost" not in rates

    health = collector.target_health()
    assert health[dead.url][0] is False
    assert "ConnectionError" in str(health[dead.url][1])
    assert all(health[t.url] == (True, None) for t in targets), health
    assert second.error is not None
    assert second.error.startswith(f"1 of {len(targets) + 1} targets down: {dead.url}")
