"""``VigilSourceDown``: vigil says when it cannot read a source, once per outage, and not about the
watched system (no incident); the alert survives a restart like every other alert (injected time)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from tests.unit.test_alert_pipeline import scores
from tests.unit.test_incidents import DEPS
from tests.unit.test_outbox import RecordingSink
from vigil.alerts.incidents import IncidentTracker
from vigil.alerts.memory import AlertMemory
from vigil.alerts.outbox import Outbox
from vigil.alerts.pipeline import build_pipeline
from vigil.alerts.rules import AlertRule, RuleEvaluator
from vigil.alerts.sources import ALERT, SourceWatch
from vigil.runtime.alerting import AlertPath


@dataclass
class Source:
    up: bool = True
    down_since: float | None = None
    error: str | None = None

    def fail(self, at: float, error: str = "connection refused") -> Source:
        return Source(False, at, error)


def test_fires_once_the_source_was_away_long_enough_and_resolves_when_it_answers() -> None:
    watch = SourceWatch(down_for=120.0)
    prometheus, elastic = Source(), Source()
    assert watch.evaluate({"prometheus": prometheus, "elasticsearch": elastic}, 0.0) == []
    prometheus = prometheus.fail(10.0, "ConnectError: [Errno 111] Connection refused")
    assert watch.evaluate({"prometheus": prometheus, "elasticsearch": elastic}, 100.0) == []  # 90 s: not yet
    (alert,) = watch.evaluate({"prometheus": prometheus, "elasticsearch": elastic}, 130.0)
    assert alert.labels == {"alertname": ALERT, "source": "prometheus", "severity": "ticket", "kind": "vigil"}
    assert (alert.starts_at, alert.ends_at) == (130.0, None)
    assert "Connection refused" in alert.annotations["description"]
    again = watch.evaluate({"prometheus": prometheus, "elasticsearch": elastic}, 160.0)
    assert again == [alert]  # every round the same alert, the same text: nothing new to tell
    (resolved,) = watch.evaluate({"prometheus": Source(), "elasticsearch": elastic}, 190.0)
    assert (resolved.fingerprint, resolved.starts_at, resolved.ends_at) == (alert.fingerprint, 130.0, 190.0)
    assert watch.firing() == []
    assert watch.evaluate({"prometheus": Source()}, 190.0 + 301) == []  # resolutions re-sent for a while only


def test_a_new_outage_is_a_new_occurrence_and_a_removed_source_resolves() -> None:
    watch = SourceWatch(down_for=60.0)
    watch.evaluate({"es": Source().fail(0.0)}, 60.0)
    watch.evaluate({"es": Source()}, 90.0)
    (second,) = watch.evaluate({"es": Source().fail(100.0)}, 160.0)
    assert (second.starts_at, second.ends_at) == (160.0, None)
    (gone,) = watch.evaluate({}, 170.0)  # the source left the configuration: nothing to watch any more
    assert gone.ends_at == 170.0


def alert_path(outbox_file: Path, sink: RecordingSink) -> AlertPath:
    outbox = Outbox(outbox_file, sink, resend_interval=60.0)
    sink.outbox = outbox
    evaluators = (RuleEvaluator(AlertRule(for_=30.0, keep_firing_for=30.0)),)
    incidents, watch = IncidentTracker(dependencies=DEPS), SourceWatch(down_for=60.0)
    pipeline = build_pipeline(evaluators, outbox, incidents, watch)
    memory = AlertMemory(outbox_file)
    return AlertPath(pipeline, outbox, incidents, threading.Lock(), evaluators, memory, watch)


def test_goes_to_alertmanager_outside_any_incident_and_survives_a_restart(tmp_path: Path) -> None:
    sink, down = RecordingSink(), {"prometheus": Source().fail(0.0)}
    path = alert_path(tmp_path / "outbox.sqlite", sink)
    path.run(0.0, scores(0.0, catalog=2.0), down)
    ctx = path.run(60.0, scores(60.0, catalog=2.0), down)
    by_name = {a.name: a for a in ctx.sent}
    assert set(by_name) == {"VigilAnomaly", ALERT}
    assert "incident" not in by_name[ALERT].labels  # about vigil: no incident of the system's
    assert [i.services for i in ctx.incidents] == [["catalog"]]
    assert ALERT in {a.name for a in sink.sent}  # out at once
    told = len([a for a in sink.sent if a.name == ALERT])

    restarted = alert_path(tmp_path / "outbox.sqlite", sink)  # killed -9 and started again
    restarted.reconcile(90.0)
    restarted.outbox.flush(90.0)
    ctx = restarted.run(120.0, scores(120.0, catalog=2.0), down)
    (kept,) = [a for a in ctx.sent if a.name == ALERT]
    assert (kept.starts_at, kept.ends_at) == (60.0, None)  # the same alert: not resolved, not re-raised
    assert all(a.ends_at is None or a.ends_at > 120.0 for a in sink.sent if a.name == ALERT)
    assert len([a for a in sink.sent if a.name == ALERT]) >= told
