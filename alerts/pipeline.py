"""The alert path: small stages with one interface, run in order on every evaluation.

    observations -> evaluate rules -> deduplicate -> group into incidents -> note the incident
                 -> watch vigil's own sources -> hand over

Every round hands *every* firing alert (and each recent resolution) to the notifier, the way
Prometheus does; the outbox delivers what changed at once and re-sends the rest before Alertmanager
would let it expire. Alertmanager alone decides who hears what and when: grouping, group_wait,
repeats, silences and inhibition are its own, with one memory of what it told (its nflog). vigil
keeps what is its own: scoring, ``for`` and hysteresis, and incidents with a likely cause, which
travel with each alert as annotations.

Each stage takes the alerts so far and returns the alerts it passes on; what stages learn about
the round goes into the ``Context``. The time of the round is the context's ``now``: no stage reads
a clock, so the same observations at the same times always give the same alerts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from vigil.alerts.incidents import Incident, IncidentTracker
from vigil.alerts.model import INCIDENT, Alert
from vigil.alerts.rules import Observation, RuleEvaluator
from vigil.alerts.sources import SourceState, SourceWatch


@dataclass
class Context:
    now: float
    observations: Sequence[Observation] = ()
    sources: Mapping[str, SourceState] = field(default_factory=dict)  # what vigil reads, and whether it can
    incidents: list[Incident] = field(default_factory=list)  # open, or resolved this round
    sent: list[Alert] = field(default_factory=list)  # what was handed to the notifier


class Stage(Protocol):
    def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]: ...


class Notifier(Protocol):
    """Where alerts go: the Alertmanager outbox (``vigil.alerts.outbox.Outbox``)."""

    def put(self, alert: Alert) -> bool: ...


class EvaluateRules:
    def __init__(self, evaluators: Sequence[RuleEvaluator]) -> None:
        self.evaluators = list(evaluators)

    def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        return alerts + [a for e in self.evaluators for a in e.evaluate(ctx.observations, ctx.now)]


class Deduplicate:
    """One alert per fingerprint: the most recent state wins (on a tie, the one that came last)."""

    def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        latest: dict[str, Alert] = {}
        for alert in alerts:
            kept = latest.get(alert.fingerprint)
            if kept is None or _changed_at(alert) >= _changed_at(kept):
                latest[alert.fingerprint] = alert
        return list(latest.values())


def _changed_at(alert: Alert) -> float:
    return max(alert.starts_at, alert.ends_at if alert.ends_at is not None else alert.starts_at)


class GroupIncidents:
    def __init__(self, tracker: IncidentTracker) -> None:
        self.tracker = tracker

    def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        ctx.incidents = self.tracker.update(alerts, ctx.now)
        return alerts


class NoteIncidents:
    """Each alert carries its incident: the ``incident`` label, on which Alertmanager groups (one problem,
    one notification), and annotations that say what it is part of and where to look first. Resolutions
    re-sent after their incident closed keep the label, or Alertmanager would take them for new alerts."""

    def __init__(self, tracker: IncidentTracker) -> None:
        self.tracker = tracker

    def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        incident_of = self.tracker.by_alert()
        return [_about(a, incident_of[a.fingerprint]) if a.fingerprint in incident_of else a for a in alerts]


def _about(alert: Alert, incident: Incident) -> Alert:
    notes = {"incident_id": incident.id, "incident_alerts": str(len(incident.alerts))}
    if incident.likely_cause:
        notes["likely_cause"] = incident.likely_cause
    labels = {**alert.labels, INCIDENT: incident.label_of(alert.fingerprint)}
    return replace(alert, labels=labels, annotations={**alert.annotations, **notes})


class WatchSources:
    """vigil's own ``VigilSourceDown`` alerts, after the incidents: they are about vigil, not the system."""

    def __init__(self, watch: SourceWatch) -> None:
        self.watch = watch

    def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        return alerts + self.watch.evaluate(ctx.sources, ctx.now)


class HandOver:
    """Every alert to the notifier, every round; it keeps only the latest state of each."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        for alert in alerts:
            self.notifier.put(alert)
        ctx.sent = alerts
        return alerts


class Pipeline:
    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)

    def run(
        self,
        now: float,
        observations: Sequence[Observation] = (),
        sources: Mapping[str, SourceState] | None = None,
    ) -> Context:
        ctx = Context(now=now, observations=observations, sources=sources or {})
        alerts: list[Alert] = []
        for stage in self.stages:
            alerts = stage.exec(ctx, alerts)
        return ctx


def build_pipeline(
    evaluators: Sequence[RuleEvaluator],
    notifier: Notifier,
    incidents: IncidentTracker,
    sources: SourceWatch | None = None,
) -> Pipeline:
    """vigil's alert path; the caller keeps the evaluators, the incidents and the source watch (their
    memory, the API)."""
    watching = [WatchSources(sources)] if sources is not None else []
    return Pipeline(
        [
            EvaluateRules(evaluators),
            Deduplicate(),
            GroupIncidents(incidents),
            NoteIncidents(incidents),
            *watching,
            HandOver(notifier),
        ]
    )
