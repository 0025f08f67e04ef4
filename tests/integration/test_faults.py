"""Each injected fault visibly changes the metrics it should, and is recorded as ground truth.

Every test places the traffic its fault needs itself (a fault nobody exercises changes nothing) and
holds the fault until its effect shows, within a bound that leaves room for a busy machine; then the
fault is ended early through the injector's stop event, exactly as Ctrl-C would end it.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable

import pytest
import requests
from elasticsearch import Elasticsearch

from tests.integration.market import api, checkout, metric_sum
from vigil.demo_marketplace.faults import Injector, read_ground_truth
from vigil.demo_marketplace.runner import Marketplace

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ACT_TIMEOUT = 90.0  # seconds a fault may take to show; its effect normally shows within a few


def browse(market: Marketplace) -> None:
    """A product page (gateway, catalog, recommendations) and a search that misses the cache."""
    with contextlib.suppress(requests.RequestException):
        api(market, "GET", f"/api/products/{random.randint(1, 5000)}")
        api(market, "GET", "/api/search", params={"q": f"{random.randint(10, 99_999)}"})


def buy(market: Marketplace) -> None:
    """A checkout: cart and orders, then payments, the payment gateway and warehouse via the queues."""
    with contextlib.suppress(requests.RequestException, AssertionError):  # some faults fail checkouts
        checkout(market)


def act_out(
    market: Marketplace,
    fault: str,
    *,
    place: Callable[[Marketplace], None],
    acted: Callable[[], bool],
    params: dict[str, float] | None = None,
    service: str | None = None,
    seconds: float = ACT_TIMEOUT,
) -> dict:
    """Inject ``fault`` (for at most ``seconds``), ``place`` traffic until ``acted()``, end it; its record."""
    injector = Injector(market)
    started = time.time()
    worker = threading.Thread(
        target=injector.inject, args=(fault, seconds, params), kwargs={"service": service}
    )
    worker.start()
    try:
        deadline = time.monotonic() + min(seconds, ACT_TIMEOUT)
        while not acted():
            assert time.monotonic() < deadline, f"{fault} did not act within {min(seconds, ACT_TIMEOUT):.0f}s"
            assert worker.is_alive(), f"{fault} ended before it acted"
            place(market)
            time.sleep(0.2)
    finally:
        injector.stop.set()
        worker.join()
    # The injector reads the same clock after ``started``: only this injection's record is that new.
    records = [r for r in read_ground_truth(market.ground_truth_file) if r["start"] >= started]
    assert [r["fault"] for r in records] == [fault], "the injection was recorded as ground truth"
    record: dict = records[0]
    assert record["start"] <= record["end"] <= record["start"] + seconds + 1
    return record


class Mean:
    """The mean of a histogram since this object was made: ``_sum`` and ``_count`` deltas."""

    def __init__(self, market: Marketplace, service: str, histogram: str, **labels: str) -> None:
        self.read = lambda: (
            metric_sum(market, service, f"{histogram}_sum", **labels),
            metric_sum(market, service, f"{histogram}_count", **labels),
        )
        self.before = self.read()

    def above(self, limit: float, *, at_least: int) -> bool:
        total, count = self.read()
        n = count - self.before[1]
        return n >= at_least and (total - self.before[0]) / n > limit


def grew(read: Callable[[], float], by: float) -> Callable[[], bool]:
    before = read()
    return lambda: read() - before >= by


def test_payment_gateway_slowdown_slows_charges(marketplace: Marketplace) -> None:
    charges = Mean(
        marketplace, "payment-gateway", "http_server_request_duration_seconds", route="/v1/charges"
    )
    # The provider slows progressively: full delay (1.5 s on top of ~0.12 s) half-way through 40 s.
    record = act_out(
        marketplace,
        "payment-gateway-slow",
        place=buy,
        acted=lambda: charges.above(0.4, at_least=3),
        seconds=40,
    )
    assert record["service"] == "payment-gateway"


def test_payment_errors_fail_charges(marketplace: Marketplace) -> None:
    def failures() -> float:
        return metric_sum(
            marketplace, "payment-gateway", "http_server_request_duration_seconds_count", status_class="5xx"
        )

    act_out(marketplace, "payment-errors", place=buy, acted=grew(failures, 3), params={"error_rate": 1.0})


def test_slow_sql_slows_catalog_queries(marketplace: Marketplace) -> None:
    # Every operation counts: a request released by a lock lands in the next gap, so of one loop's page
    # and search often only the first waits (the lock-step periodic faults impose on a sequential client).
    queries = Mean(marketplace, "catalog", "db_client_operation_duration_seconds")
    act_out(marketplace, "catalog-slow-sql", place=browse, acted=lambda: queries.above(0.1, at_least=4))


def test_warehouse_stall_builds_a_backlog(marketplace: Marketplace) -> None:
    handling = Mean(marketplace, "warehouse", "messaging_process_duration_seconds")
    act_out(marketplace, "warehouse-stall", place=buy, acted=lambda: handling.above(1.0, at_least=2))


def queue_depth(market: Marketplace, queue: str) -> float:
    s = market.stack
    info = requests.get(
        f"{s.rabbitmq_management_url}/api/queues/%2F/{queue}",
        auth=(s.rabbitmq_user, s.rabbitmq_password),
        timeout=5,
    ).json()
    return float(info.get("messages", 0))


def test_warehouse_crash_leaves_orders_queued_then_drains(marketplace: Marketplace) -> None:
    def depth() -> float:
        # RabbitMQ's management stats refresh every few seconds; the depth is the real broker state.
        return queue_depth(marketplace, "warehouse.order-paid")

    # Paid orders pile up while no warehouse consumer runs; they stay queued, none is lost.
    act_out(marketplace, "warehouse-crash", place=buy, acted=lambda: depth() >= 3)
    marketplace.wait_healthy()
    deadline = time.monotonic() + 90
    while depth() > 0:
        assert time.monotonic() < deadline, "the restarted consumer drains the backlog within 90 s"
        time.sleep(1)


def test_cache_outage_turns_reads_into_cache_errors(marketplace: Marketplace) -> None:
    def errors() -> float:
        return metric_sum(marketplace, "catalog", "cache_requests_total", result="error")

    act_out(marketplace, "cache-outage", place=browse, acted=grew(errors, 5))
    assert api(marketplace, "GET", "/api/products/5").status_code == 200  # the database still serves


def test_memory_leak_grows_resident_memory(marketplace: Marketplace) -> None:
    def rss() -> float:
        return metric_sum(marketplace, "catalog", "process_resident_memory_bytes")

    act_out(marketplace, "memory-leak", place=browse, acted=grew(rss, 20 * 2**20))


def error_logs_since(market: Marketplace, service: str, since: float) -> int:
    """Error log lines of ``service`` in Elasticsearch since ``since`` (epoch seconds)."""
    query = {
        "bool": {
            "filter": [
                {"term": {"log.level": "error"}},
                {"term": {"service.name": service}},
                {"range": {"@timestamp": {"gte": int(since * 1000), "format": "epoch_millis"}}},
            ]
        }
    }
    es = Elasticsearch(market.stack.elasticsearch_url)
    try:
        return int(es.count(index=f"logs-marketplace-{service}-*", query=query)["count"])
    finally:
        es.close()


def test_bad_release_fails_one_http_service_and_logs_its_errors(marketplace: Marketplace) -> None:
    # Product pages call recommendations; the gateway serves them without, so only it fails.
    def server_errors(service: str) -> float:
        return metric_sum(
            marketplace, service, "http_server_request_duration_seconds_count", status_class="5xx"
        )

    bystanders = ("gateway", "catalog")
    before = {s: server_errors(s) for s in bystanders}
    started = time.time()
    failing = grew(lambda: server_errors("recommendations"), 5)

    def acting() -> bool:
        flagged = metric_sum(marketplace, "recommendations", "marketplace_fault_active", fault="bad-release")
        return failing() and flagged == 1

    record = act_out(
        marketplace,
        "bad-release",
        place=browse,
        acted=acting,
        params={"error_rate": 0.5},
        service="recommendations",
    )
    assert record["service"] == "recommendations"
    assert {s: server_errors(s) - before[s] for s in bystanders} == dict.fromkeys(bystanders, 0)
    wait_until_logged(marketplace, "recommendations", started)


def test_bad_release_dead_letters_a_consumers_messages(marketplace: Marketplace) -> None:
    def dead_letters() -> float:
        return metric_sum(marketplace, "payments", "messaging_consumed_total", outcome="dead_letter")

    started = time.time()
    act_out(
        marketplace,
        "bad-release",
        place=buy,
        acted=grew(dead_letters, 2),
        params={"error_rate": 0.5},
        service="payments",
    )
    wait_until_logged(marketplace, "payments", started)


def wait_until_logged(market: Marketplace, service: str, since: float) -> None:
    """Shipping a log line and an index refresh take seconds; 60 s leaves room for a busy machine."""
    deadline = time.monotonic() + 60
    while error_logs_since(market, service, since) == 0:
        assert time.monotonic() < deadline, f"no error log of {service} reached Elasticsearch in 60 s"
        time.sleep(1)
