"""vigil_incident_open: one series per service of each open incident, gone once it resolves."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.test_incidents import DEPS, alert, catalog_outage
from vigil.alerts.incidents import IncidentTracker
from vigil.runtime.alerting import AlertPath
from vigil.runtime.incident_metrics import IncidentCollector


def open_series(path: AlertPath) -> list[dict[str, str]]:
    registry = CollectorRegistry()
    registry.register(IncidentCollector(path))
    text = generate_latest(registry).decode()
    return [
        sample.labels
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if family.name == "vigil_incident_open" and sample.value == 1.0
    ]


def test_each_service_of_an_open_incident_is_one_series_until_it_resolves() -> None:
    tracker = IncidentTracker(grouping_window=120, dependencies=DEPS)
    path = AlertPath(pipeline=None, outbox=None, incidents=tracker, lock=threading.Lock())  # type: ignore[arg-type]
    assert open_series(path) == []

    outage = catalog_outage()
    tracker.update(outage, now=1200.0)
    series = open_series(path)
    assert sorted(s["service"] for s in series) == ["cart", "catalog", "gateway", "orders"]
    (incident,) = {s["incident"] for s in series}
    assert {s["likely_cause"] for s in series} == {"catalog"}
    assert {s["severity"] for s in series} == {"page"}
    assert {s["headline"] for s in series} == {"http_p99_latency_seconds"}  # the first alert's signal
    assert incident

    resolved = [a.resolve(1300.0) for a in outage]
    tracker.update(resolved, now=1300.0)
    assert open_series(path) == []
    tracker.update(
        [alert("warehouse", "queue_depth_messages", 1400.0, queue="warehouse.order-paid")], now=1400.0
    )
    assert [s["service"] for s in open_series(path)] == ["warehouse"]
