"""The bad-release fault: aimed at any catalog service, recorded so, acted out by that service only."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from vigil.demo_marketplace.common.app import create_app
from vigil.demo_marketplace.common.faults import BadReleaseError, FaultState, act_out_bad_release
from vigil.demo_marketplace.common.settings import ServiceSettings
from vigil.demo_marketplace.common.telemetry import ServiceMetrics
from vigil.demo_marketplace.faults import FAULTS, Injector, chaos_schedule, read_ground_truth
from vigil.demo_marketplace.runner import Marketplace
from vigil.stack import StackSettings


@pytest.fixture
def market(tmp_path: Path) -> Marketplace:
    market = Marketplace(StackSettings(home=tmp_path), log=lambda _line: None)
    market.home.mkdir(parents=True)
    return market


@pytest.fixture
def acting(market: Marketplace) -> Iterator[Injector]:
    """bad-release injected on orders (error_rate 1) in the background until the test ends."""
    injector = Injector(market)
    worker = threading.Thread(
        target=injector.inject, args=("bad-release", 60, {"error_rate": 1.0}), kwargs={"service": "orders"}
    )
    worker.start()
    deadline = time.monotonic() + 30  # a file write: room for a busy machine
    while not market.faults_file.exists():
        assert time.monotonic() < deadline, "the flag is written"
        time.sleep(0.01)
    yield injector
    injector.stop.set()
    worker.join()


def test_bad_release_can_target_any_service_and_defaults_to_its_own() -> None:
    bad = FAULTS["bad-release"]
    assert bad.any_service
    assert bad.params == {"error_rate": 0.3, "ramp": 0.0}  # all at once unless it rolls out
    assert not any(f.any_service for f in FAULTS.values() if f.name != "bad-release")


def test_the_ground_truth_names_the_service_actually_targeted(market: Marketplace) -> None:
    injector = Injector(market)
    injector.stop.set()  # ends at once: only the record matters here
    record = injector.inject("bad-release", 30, service="payments")
    assert record["service"] == "payments"
    assert record["params"] == {"error_rate": 0.3, "ramp": 0.0}
    assert read_ground_truth(market.ground_truth_file) == [record]
    assert injector.inject("bad-release", 30)["service"] == "catalog"


def test_a_service_is_only_accepted_for_faults_that_can_hit_any_service(market: Marketplace) -> None:
    injector = Injector(market)
    injector.stop.set()
    with pytest.raises(ValueError, match="payment-errors always targets payment-gateway"):
        injector.inject("payment-errors", 30, service="orders")
    with pytest.raises(ValueError, match="unknown service 'nosuch'"):
        injector.inject("bad-release", 30, service="nosuch")
    assert read_ground_truth(market.ground_truth_file) == []  # nothing was injected


def test_only_the_targeted_service_acts_out_the_flag(market: Marketplace, acting: Injector) -> None:
    assert FaultState(market.faults_file, "orders").active("bad-release") is not None
    assert FaultState(market.faults_file, "catalog").active("bad-release") is None
    acting.stop.set()
    deadline = time.monotonic() + 30
    while FaultState(market.faults_file, "orders").active("bad-release") is not None:
        assert time.monotonic() < deadline, "the injector removes its flag when it ends"
        time.sleep(0.01)


def fault_active(metrics: ServiceMetrics) -> float | None:
    return metrics.registry.get_sample_value(
        "marketplace_fault_active", {"service": metrics.service, "fault": "bad-release"}
    )


def test_the_targeted_service_fails_its_work_and_shows_the_fault(
    market: Marketplace, acting: Injector
) -> None:
    orders, catalog = (ServiceMetrics(name, CollectorRegistry()) for name in ("orders", "catalog"))
    with pytest.raises(BadReleaseError):
        act_out_bad_release(FaultState(market.faults_file, "orders"), orders)
    act_out_bad_release(FaultState(market.faults_file, "catalog"), catalog)  # not the target: no failure
    assert (fault_active(orders), fault_active(catalog)) == (1, 0)


def failures_in(attempts: int, faults: FaultState, metrics: ServiceMetrics, rng: random.Random) -> int:
    failures = 0
    for _ in range(attempts):
        try:
            act_out_bad_release(faults, metrics, rng=rng)
        except BadReleaseError:
            failures += 1
    return failures


def test_a_bad_release_fails_the_configured_share_of_the_work(tmp_path: Path) -> None:
    flag = {"name": "bad-release", "service": "orders", "start": 0, "until": time.time() + 60}
    path = tmp_path / "faults.json"
    path.write_text(json.dumps({"faults": [{**flag, "params": {"error_rate": 0.25}}]}))
    faults, metrics, rng = (
        FaultState(path, "orders"),
        ServiceMetrics("orders", CollectorRegistry()),
        random.Random(7),
    )
    assert 400 < failures_in(2000, faults, metrics, rng) < 600


def test_a_rolling_bad_release_fails_a_growing_share(tmp_path: Path) -> None:
    """ramp 0.5: the bad build's share grows to its error_rate over the first half of the fault."""
    now = 1000.0
    flag = {"name": "bad-release", "service": "orders", "start": 900.0, "until": 1300.0}
    path = tmp_path / "faults.json"
    path.write_text(json.dumps({"faults": [{**flag, "params": {"error_rate": 0.4, "ramp": 0.5}}]}))
    faults = FaultState(path, "orders", clock=lambda: now)  # 25% through: half rolled out, 20% fail
    metrics, rng = ServiceMetrics("orders", CollectorRegistry()), random.Random(3)
    assert 330 < failures_in(2000, faults, metrics, rng) < 470


def test_failed_requests_answer_500_with_their_route_and_health_stays_up(
    market: Marketplace, acting: Injector
) -> None:
    registry = CollectorRegistry()
    app = create_app(ServiceSettings(service="orders", faults_file=market.faults_file), registry)
    client = TestClient(app)  # no lifespan: the bad build fails before any handler needs the database
    assert client.get("/orders/abc").status_code == 500
    assert client.get("/healthz").status_code == 200
    failed = [
        s
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for s in family.samples
        if s.name == "http_server_request_duration_seconds_count" and s.labels["status_class"] == "5xx"
    ]
    assert [(s.labels["route"], s.value) for s in failed] == [("/orders/{order_id}", 1.0)]


def test_chaos_aims_bad_release_at_a_seeded_service() -> None:
    plan = chaos_schedule(3, 3600, faults=["bad-release", "memory-leak"], min_gap=1, max_gap=2)
    assert plan == chaos_schedule(3, 3600, faults=["bad-release", "memory-leak"], min_gap=1, max_gap=2)
    targets = {step.service for step in plan if step.fault == "bad-release"}
    assert len(targets) > 1
    assert all(step.service is None for step in plan if step.fault == "memory-leak")
