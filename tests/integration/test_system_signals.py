"""The signals derived from the demo's system file, computed for real: by Prometheus as PromQL, and by
the embedded scraper from the same definitions. Nobody wrote a query for any of them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.integration.market import Traffic
from vigil.collectors.model import Collection
from vigil.collectors.prometheus_client import PrometheusClient
from vigil.collectors.promql import to_promql
from vigil.config import VigilConfig
from vigil.demo_marketplace.catalog import SYSTEM_FILE
from vigil.demo_marketplace.runner import Marketplace
from vigil.runtime.build import build_collectors, metric_signal
from vigil.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# What any loaded marketplace shows at once: traffic, latency, the components' health, the queues.
EXPECTED_NOW = {
    "http_request_rate",
    "http_error_ratio",
    "http_p99_latency_seconds",
    "process_memory_bytes",
    "cache_hit_ratio",
    "postgresql_up",
    "postgresql_active_connections",
    "redis_up",
    "redis_memory_bytes",
    "rabbitmq_up",
    "elasticsearch_up",
    "queue_depth_messages",
    "queue_consumers",
}


@pytest.fixture(scope="module")
def traffic(marketplace: Marketplace) -> Iterator[Traffic]:
    with Traffic(marketplace) as running:
        yield running


def config(**sources: object) -> VigilConfig:
    return VigilConfig.model_validate({"system": str(SYSTEM_FILE), "step": "5s", "sources": sources})


def test_every_derived_signal_is_valid_promql_and_the_usual_ones_have_data(
    stack: Stack, traffic: Traffic
) -> None:
    signals = [s for s in config(prometheus={"url": stack.settings.prometheus_url}).signals if s.metric]
    with PrometheusClient(stack.settings.prometheus_url) as prometheus:
        # Rates need two scrapes of the traffic (5 s apart) in their 1-minute window; 90 s is room for
        # a busy machine. A query Prometheus refuses raises here, naming its signal.
        deadline = time.monotonic() + 90
        while True:
            answered = {s.name: prometheus.query(to_promql(metric_signal(s)), time.time()) for s in signals}
            empty = EXPECTED_NOW - {name for name, found in answered.items() if found}
            if not empty or time.monotonic() > deadline:
                break
            time.sleep(5)
    assert not empty, f"no data for {sorted(empty)}"
    (up,) = answered["postgresql_up"]
    assert up.metric == {"component": "postgresql"}
    assert up.values[0][1] == 1.0
    queues = {s.metric["queue"] for s in answered["queue_depth_messages"]}
    assert queues == {"payments.order-placed", "warehouse.order-paid"}  # not their dead-letter queues


def test_the_embedded_scraper_computes_the_same_definitions(
    stack: Stack, marketplace: Marketplace, traffic: Traffic
) -> None:
    """Scrape mode: the marketplace's replicas from Prometheus' file_sd, the exporters as static targets
    labelled as the stack's Prometheus labels them (the system file's selectors match those labels)."""
    s = stack.settings
    exporters = [
        {"url": f"http://{s.host}:{s.postgres_exporter_port}/metrics", "labels": {"job": "postgres"}},
        {"url": f"http://{s.host}:{s.redis_exporter_port}/metrics", "labels": {"job": "redis"}},
    ]
    file_sd = s.home / "prometheus" / "targets" / "marketplace.json"
    scraped = config(scrape={"targets": exporters, "file_sd": [str(file_sd)]})
    (collector,) = build_collectors(scraped)
    assert collector.name == "scrape"
    rounds: list[Collection] = []
    for _ in range(3):  # rates and quantiles come from the difference of consecutive scrapes
        rounds.append(collector.collect(time.time()))
        time.sleep(3)
    series = {key for collection in rounds[1:] for key in collection.series}
    signals = {key.signal for key in series}
    assert {"http_request_rate", "http_p99_latency_seconds", "postgresql_up", "redis_up"} <= signals
    services = {key.label_dict().get("service") for key in series if key.signal == "http_request_rate"}
    assert {"gateway", "catalog"} <= services
    (up,) = [points for key, points in rounds[-1].series.items() if key.signal == "postgresql_up"]
    assert up[-1].value == 1.0
