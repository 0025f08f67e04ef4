"""The alert path: small stages with one interface, run in order on every evaluation.

    observations -> evaluate rules -> deduplicate -> mute -> group into incidents
                 -> decide notifications -> send

Each stage takes the alerts so far and returns the alerts it passes on; what stages learn about
the round (which alerts are muted, the incidents, the decisions) goes into the ``Context``. The
time of the round is the context's ``now``: no stage reads a clock, so the same observations at the
same times always give the same notifications.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter

from vigil.alerts.incidents import Incident, IncidentTracker
from vigil.alerts.model import Alert
from vigil.alerts.mute import Muter
from vigil.alerts.notify import Decision, NotifyState, Sent, severity_rank, should_notify
from vigil.alerts.rules import AlertRule, Observation, RuleEvaluator


@dataclass
class Context:
    now: float
    observations: Sequence[Observation] = ()
    muted: set[str] = field(default_factory=set)  # fingerprints
    incidents: list[Incident] = field(default_factory=list)  # open, or resolved this round
    decisions: dict[str, Decision] = field(default_factory=dict)  # by incident id
    sent: list[Alert] = field(default_factory=list)  # what was handed to the notifier


class Stage(Protocol):
    def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]: ...


class Notifier(Protocol):
    """Where notifications go: the Alertmanager outbox (``vigil.alerts.outbox.Outbox``)."""

    def send(self, alerts: list[Alert]) -> None: ...


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


class Mute:
    """Marks muted alerts; they still form incidents, but no one is notified of them firing."""

    def __init__(self, muters: Sequence[Muter]) -> None:
        self.muters = list(muters)

    def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        ctx.muted |= {a.fingerprint for a in alerts if any(m.mutes(a, ctx.now) for m in self.muters)}
        return alerts


class GroupIncidents:
    def __init__(self, tracker: IncidentTracker) -> None:
        self.tracker = tracker

    def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        ctx.incidents = self.tracker.update(alerts, ctx.now)
        return alerts


class DecideNotifications:
    """Passes on the alerts people should hear about now, each annotated with its incident.

    A notified incident sends its unmuted firing alerts. Independently of any decision, every alert
    the notifier was told is firing has its resolution passed on as soon as it resolves, muted or
    not: a page must never be left open because the resolution was held back.
    """

    def __init__(
        self,
        repeat_interval: float,
        group_wait: float = 0.0,
        group_interval: float = 0.0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.timing = {
            "repeat_interval": repeat_interval,
            "group_wait": group_wait,
            "group_interval": group_interval,
        }
        self._last: dict[str, Sent] = {}  # incident id -> what its last notification said
        self._told_firing: set[str] = set()  # fingerprints the notifier last heard of as firing
        self._decisions = Counter(
            "vigil_alert_notification_decisions",
            "Notification decisions about incidents, by reason",
            ["reason"],
            registry=registry if registry is not None else CollectorRegistry(),
        )

    def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        out: dict[str, Alert] = {}
        incident_of: dict[str, Incident] = {}
        for incident in ctx.incidents:
            incident_of |= dict.fromkeys(incident.alerts, incident)
            firing = [a for a in incident.firing(ctx.now) if a.fingerprint not in ctx.muted]
            state = NotifyState(
                opened_at=incident.opened_at,
                firing=frozenset(a.fingerprint for a in firing),
                severity=max((a.severity for a in firing), key=severity_rank, default=""),
                resolved=incident.resolved_at is not None,
                muted=incident.resolved_at is None and not firing,
                last=self._last.get(incident.id),
            )
            decision = should_notify(state, ctx.now, **self.timing)
            ctx.decisions[incident.id] = decision
            self._decisions.labels(decision.reason.value).inc()
            if decision.notify:
                self._last[incident.id] = Sent(ctx.now, state.firing, state.severity, state.resolved)
                out |= {a.fingerprint: _about(a, incident) for a in firing}
            if state.resolved:
                self._last.pop(incident.id, None)  # it will not be seen again
        for alert in alerts:
            if alert.resolved(ctx.now) and alert.fingerprint in self._told_firing:
                incident = incident_of.get(alert.fingerprint)
                out[alert.fingerprint] = _about(alert, incident) if incident is not None else alert
        for alert in out.values():
            if alert.resolved(ctx.now):
                self._told_firing.discard(alert.fingerprint)
            else:
                self._told_firing.add(alert.fingerprint)
        return list(out.values())


def _about(alert: Alert, incident: Incident) -> Alert:
    """The alert with its incident noted, so the page says what it is part of and where to look first."""
    notes = {"incident_id": incident.id, "incident_alerts": str(len(incident.alerts))}
    if incident.likely_cause:
        notes["likely_cause"] = incident.likely_cause
    return replace(alert, annotations={**alert.annotations, **notes})


class Send:
    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        if alerts:
            self.notifier.send(alerts)
        ctx.sent = alerts
        return alerts


class Pipeline:
    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)

    def run(self, now: float, observations: Sequence[Observation] = ()) -> Context:
        ctx = Context(now=now, observations=observations)
        alerts: list[Alert] = []
        for stage in self.stages:
            alerts = stage.exec(ctx, alerts)
        return ctx


def build_pipeline(
    rules: Sequence[AlertRule],
    notifier: Notifier,
    *,
    muters: Sequence[Muter] = (),
    incidents: IncidentTracker | None = None,
    repeat_interval: float = 3600.0,
    group_wait: float = 30.0,
    group_interval: float = 60.0,
    registry: CollectorRegistry | None = None,
) -> Pipeline:
    """vigil's alert path. Pass ``incidents`` to keep a handle on the incidents (for the API)."""
    return Pipeline(
        [
            EvaluateRules([RuleEvaluator(rule) for rule in rules]),
            Deduplicate(),
            Mute(muters),
            GroupIncidents(incidents if incidents is not None else IncidentTracker()),
            DecideNotifications(repeat_interval, group_wait, group_interval, registry=registry),
            Send(notifier),
        ]
    )
