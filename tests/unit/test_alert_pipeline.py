"""The alert path on injected time: evaluate, dedup, group, note the incident, hand over, remember.

vigil hands every firing alert to the outbox every round, as Prometheus does; whether and when a
person hears of it is Alertmanager's business (its grouping and timing are tested against the real
one in tests/integration/test_alert_path.py). What vigil keeps is its own: ``for`` and hysteresis,
incidents, and the memory of both across restarts.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from tests.unit.test_incidents import DEPS
from tests.unit.test_outbox import RecordingSink
from vigil.alerts.incidents import IncidentTracker
from vigil.alerts.memory import AlertMemory
from vigil.alerts.model import Alert
from vigil.alerts.outbox import Outbox
from vigil.alerts.pipeline import Context, Deduplicate, build_pipeline
from vigil.alerts.rules import AlertRule, Observation, RuleEvaluator
from vigil.collectors.model import SeriesKey
from vigil.runtime.alerting import AlertPath

CATALOG = SeriesKey("http_p99_latency_seconds", (("route", "/products"), ("service", "catalog")))
GATEWAY = SeriesKey("http_p99_latency_seconds", (("route", "/api/products"), ("service", "gateway")))
PAYMENTS = SeriesKey("http_error_ratio", (("service", "payments"),))
RULE = AlertRule(for_=30.0, keep_firing_for=30.0, resolve_below=0.8)


def scores(now: float, **by_key: float) -> list[Observation]:
    keys = {"catalog": CATALOG, "gateway": GATEWAY, "payments": PAYMENTS}
    return [Observation(keys[name], now, score) for name, score in by_key.items()]


def alert_path(outbox_file: Path, sink: RecordingSink) -> AlertPath:
    """The path ``vigil run`` builds, with the Alertmanager side recorded."""
    outbox = Outbox(outbox_file, sink, resend_interval=60.0)
    sink.outbox = outbox
    evaluators = (RuleEvaluator(RULE),)
    incidents = IncidentTracker(dependencies=DEPS)  # the demo marketplace's: who depends on whom
    pipeline = build_pipeline(evaluators, outbox, incidents)
    return AlertPath(pipeline, outbox, incidents, threading.Lock(), evaluators, AlertMemory(outbox_file))


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


def test_every_firing_alert_is_handed_over_every_round_with_its_incident(tmp_path: Path) -> None:
    sink = RecordingSink()
    run = alert_path(tmp_path / "outbox.sqlite", sink).run
    assert run(0.0, scores(0.0, catalog=2.0)).sent == []  # pending: for 30 s
    assert sink.sent == []
    ctx = run(30.0, scores(30.0, catalog=2.0))  # fires: out at once, no waiting in front of Alertmanager
    (sent,) = sink.sent
    assert (sent.service, sent.starts_at, sent.ends_at) == ("catalog", 30.0, 30.0 + 4 * 60.0)
    assert sent.annotations["incident_id"] == sent.labels["incident"] == ctx.incidents[0].id
    assert sent.annotations["likely_cause"] == "catalog"
    ctx = run(45.0, scores(45.0, catalog=2.0, gateway=3.0))
    assert [a.service for a in ctx.sent] == ["catalog"]  # every round, all of them (gateway pends)
    ctx = run(75.0, scores(75.0, catalog=2.0, gateway=3.0))
    assert sorted(a.service for a in ctx.sent) == ["catalog", "gateway"]
    assert {a.annotations["incident_id"] for a in ctx.sent} == {ctx.incidents[0].id}  # one incident
    for t in (90.0, 120.0):
        ctx = run(t, scores(t, catalog=0.1, gateway=0.1))
    assert {(a.service, a.ends_at) for a in ctx.sent} == {("catalog", 120.0), ("gateway", 120.0)}
    assert {(a.service, a.ends_at) for a in sink.sent[-2:]} == {("catalog", 120.0), ("gateway", 120.0)}
    ctx = run(135.0, [])  # the incident closed: resolutions re-sent later are still the same alerts
    assert {a.labels["incident"] for a in ctx.sent} == {sent.labels["incident"]}


def test_a_restart_takes_back_timers_firing_alerts_and_incidents(tmp_path: Path) -> None:
    sink = RecordingSink()
    first = alert_path(tmp_path / "outbox.sqlite", sink)
    run = first.run
    run(0.0, scores(0.0, catalog=2.0))
    ctx = run(30.0, scores(30.0, catalog=2.0, payments=3.0))  # catalog fires, payments pends
    (incident,) = [i for i in ctx.incidents if "catalog" in i.services]
    told = len(sink.sent)

    second = alert_path(tmp_path / "outbox.sqlite", sink)  # killed and started again: nothing in memory
    second.reconcile(45.0)
    second.outbox.flush(45.0)  # delivery runs on its own: whatever reconcile put is sent at once
    assert [i.id for i in second.incidents.open] == [incident.id]
    assert second.incidents.open[0].likely_cause == "catalog"
    run = second.run
    ctx = run(60.0, scores(60.0, catalog=2.0, payments=3.0))
    by_service = {a.service: a for a in ctx.sent}
    assert by_service["catalog"].starts_at == 30.0  # the same alert, not a new one
    assert by_service["payments"].starts_at == 60.0  # its `for` ran on from 30, across the restart
    assert by_service["catalog"].annotations["incident_id"] == incident.id
    assert all(a.ends_at is None or a.ends_at > 60.0 for a in sink.sent[told:])  # nothing was resolved


def test_what_the_outbox_holds_firing_and_no_rule_tracks_is_resolved_at_start(tmp_path: Path) -> None:
    sink = RecordingSink()
    outbox_file = tmp_path / "outbox.sqlite"
    run = alert_path(outbox_file, sink).run
    run(0.0, scores(0.0, catalog=2.0))
    run(30.0, scores(30.0, catalog=2.0))
    with sqlite3.connect(outbox_file) as db:  # the memory is lost; the outbox still says "firing"
        db.execute("DELETE FROM alert_memory")
    restarted = alert_path(outbox_file, sink)
    restarted.reconcile(100.0)
    restarted.outbox.flush(100.0)
    assert (sink.sent[-1].service, sink.sent[-1].ends_at) == ("catalog", 100.0)


def test_a_vanished_series_resolves_its_alert_after_a_restart(tmp_path: Path) -> None:
    sink = RecordingSink()
    run = alert_path(tmp_path / "outbox.sqlite", sink).run
    run(0.0, scores(0.0, catalog=2.0))
    run(30.0, scores(30.0, catalog=2.0))
    restarted = alert_path(tmp_path / "outbox.sqlite", sink)
    restarted.reconcile(40.0)
    run = restarted.run
    for t in (45.0, 60.0, 75.0):  # the catalog's series is gone: keep_firing_for, then resolved
        run(t, [])
    assert (sink.sent[-1].service, sink.sent[-1].ends_at) == ("catalog", 75.0)
    assert restarted.incidents.open == []


def test_memory_of_another_format_is_reported_and_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = RecordingSink()
    run = alert_path(tmp_path / "outbox.sqlite", sink).run
    run(0.0, scores(0.0, catalog=2.0))
    run(30.0, scores(30.0, catalog=2.0))
    with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
        db.execute("UPDATE alert_memory SET format = 99 WHERE part = 'incidents'")
        db.execute("UPDATE alert_memory SET body = '{not json' WHERE part = 'rule:VigilAnomaly'")
    restarted = alert_path(tmp_path / "outbox.sqlite", sink)
    with caplog.at_level(logging.WARNING):
        restarted.reconcile(40.0)
    assert "part 'incidents' has format 99" in caplog.text
    assert "part 'rule:VigilAnomaly' is unreadable" in caplog.text
    assert restarted.incidents.open == []
    restarted.outbox.flush(40.0)
    assert sink.sent[-1].ends_at == 40.0  # no rule holds it any more: resolved rather than left firing
