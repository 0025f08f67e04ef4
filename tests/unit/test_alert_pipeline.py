"""The alert path end to end on injected time: evaluate, dedup, mute, group, decide, send."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from tests.unit.test_incidents import DEPS
from vigil.alerts.incidents import IncidentTracker
from vigil.alerts.model import Alert
from vigil.alerts.mute import MaintenanceMuter, MaintenanceWindow, Muter
from vigil.alerts.notify import Reason
from vigil.alerts.pipeline import Context, Deduplicate, Pipeline, build_pipeline
from vigil.alerts.rules import AlertRule, Observation
from vigil.collectors.model import SeriesKey

CATALOG = SeriesKey("http_p99_latency_seconds", (("route", "/products"), ("service", "catalog")))
GATEWAY = SeriesKey("http_p99_latency_seconds", (("route", "/api/products"), ("service", "gateway")))
PAYMENTS = SeriesKey("http_error_ratio", (("service", "payments"),))


class Recorder:
    """A notifier that keeps what it is sent (the sink under test is the pipeline's output)."""

    def __init__(self) -> None:
        self.batches: list[list[Alert]] = []

    def send(self, alerts: list[Alert]) -> None:
        self.batches.append(list(alerts))


def pipeline(
    recorder: Recorder, muters: Sequence[Muter] = (), registry: CollectorRegistry | None = None
) -> Pipeline:
    return build_pipeline(
        [AlertRule()],
        recorder,
        muters=muters,
        incidents=IncidentTracker(dependencies=DEPS),  # the demo marketplace's: who depends on whom
        group_wait=30.0,
        group_interval=60.0,
        repeat_interval=3600.0,
        registry=registry,
    )


def only_decision(ctx: Context) -> Reason:
    (decision,) = ctx.decisions.values()
    return decision.reason


def scores(now: float, **by_key: float) -> list[Observation]:
    keys = {"catalog": CATALOG, "gateway": GATEWAY, "payments": PAYMENTS}
    return [Observation(keys[name], now, score) for name, score in by_key.items()]


def test_deduplicate_keeps_the_latest_state_of_each_alert() -> None:
    labels = {"alertname": "VigilAnomaly", "service": "catalog"}
    firing, resolved = Alert(labels, starts_at=10.0), Alert(labels, starts_at=10.0, ends_at=50.0)
    refired = Alert(labels, starts_at=60.0)
    other = Alert({"alertname": "VigilAnomaly", "service": "cart"}, starts_at=5.0)
    dedup = Deduplicate()
    ctx = Context(now=60.0)
    assert dedup.exec(ctx, [resolved, other, firing]) == [resolved, other]
    assert dedup.exec(ctx, [refired, resolved]) == [refired]
    annotated = Alert(labels, {"anomaly_score": "3"}, starts_at=10.0)
    assert dedup.exec(ctx, [firing, annotated]) == [annotated]  # a tie: the one that came last


def test_an_alert_is_notified_after_group_wait_and_its_resolution_at_once() -> None:
    recorder = Recorder()
    run = pipeline(recorder).run
    reasons = [only_decision(run(t, scores(t, catalog=2.0))) for t in (0.0, 15.0)]
    assert reasons == [Reason.NOT_DUE, Reason.NOT_DUE]
    assert recorder.batches == []
    ctx = run(30.0, scores(30.0, catalog=2.0))
    assert only_decision(ctx) == Reason.NEW
    ((sent,),) = recorder.batches
    assert (sent.service, sent.starts_at, sent.ends_at) == ("catalog", 0.0, None)
    assert sent.annotations["incident_id"] == ctx.incidents[0].id
    assert sent.annotations["likely_cause"] == "catalog"
    assert run(45.0, scores(45.0, catalog=2.0)).sent == []
    ctx = run(60.0, scores(60.0, catalog=0.2))
    assert only_decision(ctx) == Reason.RESOLVED
    ((resolved,),) = recorder.batches[1:]
    assert (resolved.fingerprint, resolved.ends_at) == (sent.fingerprint, 60.0)
    assert run(75.0, scores(75.0, catalog=0.2)).sent == []  # told once; the outbox retries, not us


def test_a_storm_is_one_notification_and_another_service_gets_its_own() -> None:
    recorder = Recorder()
    run = pipeline(recorder).run
    storm = [
        Observation(SeriesKey(signal, (("route", f"/r{i}"), ("service", service))), 0.0, 3.0)
        for i in range(5)
        for service in ("catalog", "gateway")
        for signal in ("http_p99_latency_seconds", "http_error_ratio")
    ]
    assert len(storm) == 20
    for t in (0.0, 15.0):
        run(t, storm)
    ctx = run(30.0, [*storm, *scores(30.0, payments=5.0)])
    assert len(ctx.incidents) == 2
    (batch,) = recorder.batches
    assert len(batch) == 20
    assert {a.annotations["likely_cause"] for a in recorder.batches[0]} == {"catalog"}
    ctx = run(60.0, [*storm, *scores(60.0, payments=5.0)])
    assert {d.reason for d in ctx.decisions.values()} == {Reason.NEW, Reason.NOT_DUE}
    assert [a.service for a in ctx.sent] == ["payments"]


def test_an_alert_joining_a_notified_incident_is_sent_as_a_change_after_group_interval() -> None:
    recorder = Recorder()
    run = pipeline(recorder).run
    for t in (0.0, 30.0):
        run(t, scores(t, catalog=2.0))
    for t in (45.0, 60.0, 75.0):
        assert run(t, scores(t, catalog=2.0, gateway=2.0)).sent == []
    ctx = run(90.0, scores(90.0, catalog=2.0, gateway=2.0))
    assert only_decision(ctx) == Reason.CHANGED
    assert sorted(a.service for a in ctx.sent) == ["catalog", "gateway"]


def test_a_maintenance_window_mutes_its_services_only_and_until_it_ends() -> None:
    recorder = Recorder()
    window = MaintenanceWindow(0.0, 100.0, {"service": "catalog"}, reason="database upgrade")
    run = pipeline(recorder, muters=[MaintenanceMuter([window])]).run
    for t in (0.0, 30.0, 60.0, 90.0):
        ctx = run(t, scores(t, catalog=2.0, payments=2.0))
        by_service = {i.services[0]: ctx.decisions[i.id].reason for i in ctx.incidents}
        assert by_service["catalog"] == Reason.MUTED  # the incident is there, nobody is paged
    assert [a.service for batch in recorder.batches for a in batch] == ["payments"]
    ctx = run(100.0, scores(100.0, catalog=2.0, payments=2.0))
    assert [a.service for a in ctx.sent] == ["catalog"]


def test_a_muted_alert_in_a_notified_incident_is_left_out_but_its_resolution_is_sent() -> None:
    recorder = Recorder()
    window = MaintenanceWindow(40.0, 1000.0, {"service": "gateway"})
    run = pipeline(recorder, muters=[MaintenanceMuter([window])]).run
    run(0.0, scores(0.0, catalog=2.0, gateway=2.0))
    assert sorted(a.service for a in run(30.0, scores(30.0, catalog=2.0, gateway=2.0)).sent) == [
        "catalog",
        "gateway",
    ]
    assert run(3700.0, scores(3700.0, catalog=2.0, gateway=2.0)).sent[0].service == "catalog"  # the repeat
    ctx = run(3715.0, scores(3715.0, catalog=2.0, gateway=0.1))
    assert [(a.service, a.ends_at) for a in ctx.sent] == [("gateway", 3715.0)]  # muted, yet resolved
    assert ctx.sent[0].annotations["incident_id"] == ctx.incidents[0].id


def test_an_incident_over_before_group_wait_notifies_nobody() -> None:
    recorder = Recorder()
    run = pipeline(recorder).run
    run(0.0, scores(0.0, catalog=2.0))
    ctx = run(15.0, scores(15.0, catalog=0.1))
    assert only_decision(ctx) == Reason.ALREADY_RESOLVED
    assert recorder.batches == []


def test_decisions_are_counted_by_reason_in_the_given_registry() -> None:
    registry = CollectorRegistry()
    run = pipeline(Recorder(), registry=registry).run
    for t in (0.0, 15.0, 30.0):
        run(t, scores(t, catalog=2.0))
    count = registry.get_sample_value
    assert count("vigil_alert_notification_decisions_total", {"reason": "not_due"}) == 2
    assert count("vigil_alert_notification_decisions_total", {"reason": "new"}) == 1


def test_maintenance_windows_cover_start_to_end_and_match_labels() -> None:
    alert = Alert({"alertname": "VigilAnomaly", "service": "catalog", "severity": "page"})
    everything = MaintenanceMuter([MaintenanceWindow(100.0, 200.0)])
    assert [everything.mutes(alert, t) for t in (99.9, 100.0, 199.9, 200.0)] == [False, True, True, False]
    pages_of_cart = MaintenanceWindow(0.0, 10.0, {"service": "cart", "severity": "page"})
    pages_of_catalog = MaintenanceWindow(0.0, 10.0, {"service": "catalog", "severity": "page"}, "upgrade")
    muter = MaintenanceMuter([pages_of_cart, pages_of_catalog])
    assert muter.window_for(alert, 5.0) == pages_of_catalog
    assert not MaintenanceMuter([pages_of_cart]).mutes(alert, 5.0)
    with pytest.raises(ValueError, match="start before it ends"):
        MaintenanceWindow(10.0, 10.0)
