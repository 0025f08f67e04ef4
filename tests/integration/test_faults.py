"""Each injected fault visibly changes the metrics it should, and is recorded as ground truth."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests
from elasticsearch import Elasticsearch

from tests.integration.market import Traffic, api, metric_sum
from vigil.demo_marketplace.faults import Injector, read_ground_truth
from vigil.demo_marketplace.runner import Marketplace

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def traffic(marketplace: Marketplace) -> Iterator[Traffic]:
    with Traffic(marketplace) as running:
        yield running


def during(
    market: Marketplace, fault: str, seconds: float, probe: Callable[[], float]
) -> tuple[float, float]:
    """``probe()`` before the fault and at its end (while it still acts); the fault is recorded."""
    before = probe()
    injector = Injector(market)
    worker = threading.Thread(target=injector.inject, args=(fault, seconds))
    started = time.time()
    worker.start()
    time.sleep(seconds - 1.5)
    at_end = probe()
    worker.join()
    records = [r for r in read_ground_truth(market.ground_truth_file) if r["fault"] == fault]
    assert records, "the injection was recorded"
    assert records[-1]["start"] >= started - 1
    assert records[-1]["end"] - records[-1]["start"] == pytest.approx(seconds, abs=1.5)
    return before, at_end


def mean(
    market: Marketplace, service: str, histogram: str, **labels: str
) -> Callable[[], tuple[float, float]]:
    def read() -> tuple[float, float]:
        return (
            metric_sum(market, service, f"{histogram}_sum", **labels),
            metric_sum(market, service, f"{histogram}_count", **labels),
        )

    return read


def window_mean(before: tuple[float, float], after: tuple[float, float]) -> float:
    return (after[0] - before[0]) / max(after[1] - before[1], 1)


def test_payment_gateway_slowdown_slows_charges(marketplace: Marketplace, traffic: Traffic) -> None:
    probe = mean(marketplace, "payment-gateway", "http_server_request_duration_seconds", route="/v1/charges")
    before, after = during(marketplace, "payment-gateway-slow", 12, probe)  # type: ignore[arg-type]
    assert window_mean(before, after) > 0.4  # baseline median is 0.12 s


def test_payment_errors_fail_charges(marketplace: Marketplace, traffic: Traffic) -> None:
    def failures() -> float:
        return metric_sum(
            marketplace, "payment-gateway", "http_server_request_duration_seconds_count", status_class="5xx"
        )

    before, after = during(marketplace, "payment-errors", 10, failures)
    assert after - before >= 3


def test_slow_sql_slows_catalog_queries(marketplace: Marketplace, traffic: Traffic) -> None:
    probe = mean(marketplace, "catalog", "db_client_operation_duration_seconds", operation="search")
    before, after = during(marketplace, "catalog-slow-sql", 12, probe)  # type: ignore[arg-type]
    assert window_mean(before, after) > 0.1


def test_warehouse_stall_builds_a_backlog(marketplace: Marketplace, traffic: Traffic) -> None:
    probe = mean(marketplace, "warehouse", "messaging_process_duration_seconds")
    before, after = during(marketplace, "warehouse-stall", 12, probe)  # type: ignore[arg-type]
    assert window_mean(before, after) > 1.0


def queue_depth(market: Marketplace, queue: str) -> float:
    s = market.stack
    info = requests.get(
        f"{s.rabbitmq_management_url}/api/queues/%2F/{queue}",
        auth=(s.rabbitmq_user, s.rabbitmq_password),
        timeout=5,
    ).json()
    return float(info.get("messages", 0))


def test_warehouse_crash_leaves_orders_queued_then_drains(marketplace: Marketplace, traffic: Traffic) -> None:
    def depth() -> float:
        # RabbitMQ's management stats refresh every few seconds; the depth is the real broker state.
        return queue_depth(marketplace, "warehouse.order-paid")

    before, at_end = during(marketplace, "warehouse-crash", 15, depth)
    assert at_end > before
    marketplace.wait_healthy()
    deadline = time.monotonic() + 60
    while queue_depth(marketplace, "warehouse.order-paid") > 0:
        assert time.monotonic() < deadline, "the restarted consumer drains the backlog"
        time.sleep(1)


def test_cache_outage_turns_reads_into_cache_errors(marketplace: Marketplace, traffic: Traffic) -> None:
    def errors() -> float:
        return metric_sum(marketplace, "catalog", "cache_requests_total", result="error")

    before, after = during(marketplace, "cache-outage", 8, errors)
    assert after - before >= 5
    assert api(marketplace, "GET", "/api/products/5").status_code == 200  # the database still serves


def test_memory_leak_grows_resident_memory(marketplace: Marketplace, traffic: Traffic) -> None:
    def rss() -> float:
        return metric_sum(marketplace, "catalog", "process_resident_memory_bytes")

    before, after = during(marketplace, "memory-leak", 12, rss)
    assert after - before > 20 * 2**20


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


def wait_for(what: str, condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def bad_release(market: Marketplace, service: str, seconds: float) -> tuple[Injector, threading.Thread]:
    injector = Injector(market)
    worker = threading.Thread(
        target=injector.inject,
        args=("bad-release", seconds, {"error_rate": 0.5}),
        kwargs={"service": service},
    )
    worker.start()
    return injector, worker


def test_bad_release_fails_one_http_service_and_logs_its_errors(
    marketplace: Marketplace, traffic: Traffic
) -> None:
    # Product pages call recommendations; the gateway serves them without, so only it fails.
    def server_errors(service: str) -> float:
        return metric_sum(
            marketplace, service, "http_server_request_duration_seconds_count", status_class="5xx"
        )

    bystanders = ("gateway", "catalog")
    before = {s: server_errors(s) for s in ("recommendations", *bystanders)}
    started = time.time()
    injector, worker = bad_release(marketplace, "recommendations", 10)
    try:
        wait_for(
            "recommendations answers 500 to some requests",
            lambda: server_errors("recommendations") - before["recommendations"] >= 5,
            timeout=9,
        )
        assert (
            metric_sum(marketplace, "recommendations", "marketplace_fault_active", fault="bad-release") == 1
        )
    finally:
        injector.stop.set()
        worker.join()
    assert {s: server_errors(s) - before[s] for s in bystanders} == dict.fromkeys(bystanders, 0)
    records = read_ground_truth(marketplace.ground_truth_file)
    (record,) = [r for r in records if r["fault"] == "bad-release" and r["start"] >= started - 1]
    assert record["service"] == "recommendations"
    wait_for(
        "the error logs reach Elasticsearch",
        lambda: error_logs_since(marketplace, "recommendations", started) > 0,
        timeout=30,
    )


def test_bad_release_dead_letters_a_consumers_messages(marketplace: Marketplace, traffic: Traffic) -> None:
    def dead_letters() -> float:
        return metric_sum(marketplace, "payments", "messaging_consumed_total", outcome="dead_letter")

    before = dead_letters()
    started = time.time()
    injector, worker = bad_release(marketplace, "payments", 15)
    try:
        wait_for("payments dead-letters some orders", lambda: dead_letters() - before >= 2, timeout=14)
    finally:
        injector.stop.set()
        worker.join()
    wait_for(
        "the dead-letter errors reach Elasticsearch",
        lambda: error_logs_since(marketplace, "payments", started) > 0,
        timeout=30,
    )
