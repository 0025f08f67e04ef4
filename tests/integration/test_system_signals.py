"""The signals derived from the demo's system file, computed for real: by Prometheus as PromQL, and by
the embedded scraper from the same definitions. Nobody wrote a query for any of them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.integration.market import Traffic
from tests.integration.private_alertmanager import wait_for
from vigil.collectors.model import Collection
from vigil.collectors.prometheus_client import PrometheusClient
from vigil.collectors.promql import to_promql
from vigil.config import VigilConfig
from vigil.demo_marketplace.catalog import SYSTEM, SYSTEM_FILE
from vigil.demo_marketplace.runner import Marketplace
from vigil.runtime.build import build_collectors, metric_signal
from vigil.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# What any loaded marketplace shows at once: traffic, latency, the components' health, the queues.
EXPECTED_NOW = {
    "http_request_rate",
    "http_error_ratio",
    "http_p99_latency_seconds",
    "service_up",
    "http_call_error_ratio",  # calls to the external payment provider, from its caller's metrics
    "process_memory_bytes",
    "cache_hit_ratio",
    "postgresql_up",
    "postgresql_active_connections",
    "redis_up",
    "redis_exporter_up",
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
    # about the third party called (the peer label renamed), not about its caller
    assert [s.metric for s in answered["http_call_error_ratio"]] == [{"service": "payment-gateway"}]
    # a share of replicas per service of its own; the exporters' targets are not services
    up_of = {s.metric["service"]: s.values[0][1] for s in answered["service_up"]}
    assert set(up_of) == {s.name for s in SYSTEM.services if not s.external}
    assert all(0.0 <= share <= 1.0 for share in up_of.values())
    assert up_of["gateway"] > 0
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
    assert {"postgresql_exporter_up", "redis_exporter_up"} <= signals  # the scraper's own ``up``
    up_of = {key.label_dict().get("service") for key in series if key.signal == "service_up"}
    assert {"gateway", "catalog"} <= up_of
    assert None not in up_of
    services = {key.label_dict().get("service") for key in series if key.signal == "http_request_rate"}
    assert {"gateway", "catalog"} <= services
    (up,) = [points for key, points in rounds[-1].series.items() if key.signal == "postgresql_up"]
    assert up[-1].value == 1.0


def test_a_hung_redis_shows_in_its_exporter_up_though_redis_up_vanishes(stack: Stack) -> None:
    """CLIENT PAUSE blocks every command, the exporter's INFO too: its scrape times out, so ``redis_up``
    has no sample at all and only Prometheus' ``up`` of the exporter says Redis is in trouble."""
    import redis

    signal = next(
        s
        for s in config(prometheus={"url": stack.settings.prometheus_url}).signals
        if s.name == "redis_exporter_up"
    )
    query = to_promql(metric_signal(signal))
    client = redis.Redis.from_url(stack.settings.redis_url, socket_timeout=5)
    with PrometheusClient(stack.settings.prometheus_url) as prometheus:

        def value() -> float | None:
            found = prometheus.query(query, time.time())
            return found[0].values[-1][1] if found else None

        # Healthy first (an earlier fault may have left a failed scrape a few seconds ago).
        wait_for("the exporter scraped", lambda: value() == 1.0, timeout=30)
        # Short renewed pauses, as the demo's cache-outage fault does: a paused Redis queues every
        # command, CLIENT UNPAUSE too, so the outage ends at most 3 s after the last renewal.
        deadline, seen = time.monotonic() + 40, value()  # a scrape every 5 s, its timeout: room to spare
        try:
            while seen != 0.0 and time.monotonic() < deadline:
                client.execute_command("CLIENT", "PAUSE", 3000, "ALL")
                time.sleep(2)
                seen = value()
        finally:
            client.ping()  # answered once the last pause is over
            client.close()
        assert seen == 0.0, "the exporter's up never dropped while Redis was paused"


def test_a_crashed_service_shows_in_service_up_though_its_own_series_vanish(
    stack: Stack, marketplace: Marketplace
) -> None:
    """Every recommendations replica killed: its own metrics stop (nothing serves them), and only
    Prometheus' ``up`` of its scrape targets tells where the gateway's calls go unanswered."""
    signal = next(
        s for s in config(prometheus={"url": stack.settings.prometheus_url}).signals if s.name == "service_up"
    )
    query = to_promql(metric_signal(signal))
    with PrometheusClient(stack.settings.prometheus_url) as prometheus:

        def share() -> float | None:
            by_service = {s.metric["service"]: s for s in prometheus.query(query, time.time())}
            found = by_service.get("recommendations")
            return found.values[-1][1] if found is not None else None

        # Scraped every 5 s; a replica restarted by an earlier test may need its first scrape.
        wait_for("recommendations scraped up", lambda: share() == 1.0, timeout=60)
        assert marketplace.kill_replicas("recommendations")
        try:
            wait_for("its crash seen in service_up", lambda: share() == 0.0, timeout=40)
        finally:  # as the orchestrator would: the crashed pods come back
            for replica in marketplace.replica_list("recommendations"):
                marketplace.start_replica(replica)
            marketplace.wait_healthy()
        wait_for("recommendations back up", lambda: share() == 1.0, timeout=60)
