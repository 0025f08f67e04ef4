"""Incidents: the alerts of one problem grouped together, with a lifecycle and a likely cause.

An outage raises many alerts at once (latency, errors, traffic, on several routes and on the
services that call the broken one). People need one incident for it, not twenty pages: an alert
joins an open incident when it is about the same service, or a service that calls or is called by
one already in it, and it fired within ``grouping_window`` of the incident's latest alert. The
window slides, so a problem that keeps spreading stays one incident, while a different service
with no dependency in common, or the same service hours later, gets its own.

An incident is firing while any of its alerts is; it is resolved when all of them are, and then
stays resolved (a new alert opens a new incident). Times come from the alerts, never a clock. The
tracker's ``state`` outlives the process in the alert memory: a restart keeps incidents open, with
their ids and likely causes.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from vigil.alerts.model import SIGNAL, Alert, severity_rank

# Who depends on whom (``vigil.system.System.dependencies``): a service -> the services it calls, the owners
# of tables it uses and the components it uses. Failures travel up these edges.
Dependencies = Mapping[str, Collection[str]]


@dataclass(frozen=True)
class Holding:
    """A service's resource inside a component that other services use too (``vigil.system.Resource``,
    e.g. catalog's products table in PostgreSQL, read by recommendations): a lock on it reaches them all."""

    component: str
    owner: str
    users: frozenset[str]


def subject(alert: Alert) -> str:
    """What an alert is about, for grouping: its service, else its component, queue or signal."""
    labels = alert.labels
    return alert.service or labels.get("component") or labels.get("queue") or labels.get(SIGNAL) or alert.name


@dataclass(frozen=True)
class Suspect:
    service: str  # a service or a backing component (PostgreSQL, Redis ...)
    first_fired_at: float
    # Services it depends on (directly or not) that also alert: a failure there could explain this one.
    affected_dependencies: tuple[str, ...] = ()
    # For a component that raised no alert itself: the alerting services that use it directly.
    shared_by: tuple[str, ...] = ()


# Detectors see one onset at different moments (a 1-minute window fills, a ``for`` runs out): alerts
# caused together land within about this of each other. A dependency that began alerting later than this
# after a service did cannot be why that service alerted (causes come first).
DETECTION_SPREAD = 120.0


def rank_suspects(
    alerts: Iterable[Alert],
    dependencies: Dependencies,
    holdings: Collection[Holding] = (),
    spread: float = DETECTION_SPREAD,
) -> list[Suspect]:
    """Services and components of an incident, most likely cause first.

    Failures travel up the call graph (a slow catalog makes the gateway slow), so a service none of
    whose dependencies is alerting ranks before those that call an alerting service; among equals,
    the one that fired first. Detection order alone would mislead: a caller's latency detector
    often reacts before the callee's database signal does. A component's own alerts (its exporter's
    signals) make it a suspect like any service, and since it depends on nothing it ranks first.

    A component that raised nothing itself (its exporter may be down with it) is still a suspect
    when several services that use it degrade together: at least two of its direct users alert and
    they are at least half of its users. That pattern alone is weaker evidence than alerts of its
    own, so it ranks after the services whose dependencies are all quiet and before the rest.

    A component alerting while only the users of one service's resources in it alert (a lock on
    catalog's tables: PostgreSQL reports exclusive locks, catalog and the readers of its tables slow
    down) is that service's trouble showing in the component: the service ranks first, the component
    right after it, as if the component depended on it.

    Only dependencies that began alerting before, or at most ``spread`` seconds after, a service count
    against it: when a stalled consumer's backlog later slows the database of the producer it depends
    on, the producer's late alert follows the stall and does not take the blame from it.
    """
    first: dict[str, float] = {}
    for alert in alerts:
        name = subject(alert)
        first[name] = min(first.get(name, alert.starts_at), alert.starts_at)
    explained = _explained_components(first, dependencies, holdings)
    suspects = []
    for name, fired in first.items():
        seen = reachable(name, dependencies) - {c for c, owner in explained.items() if owner == name}
        if name in explained:
            seen = {explained[name]}
        earlier = {s for s in seen & first.keys() if first[s] <= fired + spread}
        affected = sorted(earlier, key=lambda s: (first[s], s))
        suspects.append(Suspect(name, fired, tuple(affected)))
    ranked = sorted(suspects, key=lambda s: (len(s.affected_dependencies), s.first_fired_at, s.service))
    shared = sorted(
        _shared_suspects(first, dependencies), key=lambda s: (-len(s.shared_by), s.first_fired_at)
    )
    roots = sum(1 for s in ranked if not s.affected_dependencies)
    return [*ranked[:roots], *shared, *ranked[roots:]]


def _explained_components(
    first: Mapping[str, float], dependencies: Dependencies, holdings: Collection[Holding]
) -> dict[str, str]:
    """Alerting components whose alerting users all work on resources one alerting service holds in it
    -> that service (see ``rank_suspects``)."""
    found = {}
    for component in sorted(first.keys() - dependencies.keys()):
        users = {s for s in first if component in dependencies.get(s, ())}
        owners = sorted(
            {h.owner for h in holdings if h.component == component and h.owner in first},
            key=lambda s: first[s],
        )
        for owner in owners:
            held = {owner}.union(
                *(h.users for h in holdings if h.component == component and h.owner == owner)
            )
            if users and users <= held:
                found[component] = owner
                break
    return found


def _shared_suspects(first: Mapping[str, float], dependencies: Dependencies) -> list[Suspect]:
    """Components that did not alert but whose users degrade together (see ``rank_suspects``)."""
    users: dict[str, set[str]] = {}
    for service, needs in dependencies.items():
        for name in needs:
            users.setdefault(name, set()).add(service)
    found = []
    for component, using in users.items():
        if component in dependencies or component in first:  # a service, or a component alerting itself
            continue
        alerting = sorted(using & first.keys(), key=lambda s: (first[s], s))
        if len(alerting) >= 2 and 2 * len(alerting) >= len(using):
            found.append(Suspect(component, first[alerting[0]], shared_by=tuple(alerting)))
    return found


def reachable(service: str, dependencies: Dependencies) -> set[str]:
    """Every service ``service`` depends on, directly or through others."""
    seen: set[str] = set()
    todo = list(dependencies.get(service, ()))
    while todo:
        callee = todo.pop()
        if callee not in seen and callee != service:
            seen.add(callee)
            todo.extend(dependencies.get(callee, ()))
    return seen


@dataclass
class Incident:
    id: str
    opened_at: float
    alerts: dict[str, Alert] = field(default_factory=dict)  # by fingerprint, in the order they joined
    resolved_at: float | None = None
    last_fired_at: float = 0.0  # the latest start of its alerts; the grouping window runs from here
    suspects: tuple[Suspect, ...] = ()
    # Alerts taken in from incidents merged into this one -> the id of the incident they first joined,
    # which stays their ``incident`` label (see ``vigil.alerts.model.INCIDENT``).
    merged_from: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "firing" if self.resolved_at is None else "resolved"

    @property
    def severity(self) -> str:
        return max((a.severity for a in self.alerts.values()), key=severity_rank, default="")

    @property
    def headline(self) -> str:
        """The signal of the alert that opened the incident."""
        first = next(iter(self.alerts.values()), None)
        return first.labels.get(SIGNAL, first.name) if first is not None else ""

    @property
    def services(self) -> list[str]:
        return list(dict.fromkeys(subject(a) for a in self.alerts.values()))

    @property
    def likely_cause(self) -> str:
        return self.suspects[0].service if self.suspects else ""

    def label_of(self, fingerprint: str) -> str:
        """The ``incident`` label of one of its alerts: this incident's id, or the one it first joined."""
        return self.merged_from.get(fingerprint, self.id)

    def firing(self, now: float) -> list[Alert]:
        return [a for a in self.alerts.values() if not a.resolved(now)]

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Incident:
        """The inverse of ``dataclasses.asdict``."""
        return cls(
            id=body["id"],
            opened_at=body["opened_at"],
            alerts={key: Alert.from_dict(alert) for key, alert in body["alerts"].items()},
            resolved_at=body["resolved_at"],
            last_fired_at=body["last_fired_at"],
            suspects=tuple(
                Suspect(
                    s["service"],
                    s["first_fired_at"],
                    tuple(s["affected_dependencies"]),
                    tuple(s.get("shared_by", ())),  # absent from older alert memories
                )
                for s in body["suspects"]
            ),
            merged_from=dict(body.get("merged_from", {})),
        )


class IncidentTracker:
    def __init__(
        self,
        grouping_window: float = 300.0,
        dependencies: Dependencies | None = None,
        history: int = 100,
        holdings: Collection[Holding] = (),
        detection_spread: float = DETECTION_SPREAD,
    ) -> None:
        self.grouping_window = grouping_window
        self.detection_spread = detection_spread
        self.dependencies = {} if dependencies is None else dependencies
        self.holdings = holdings
        self._open: dict[str, Incident] = {}
        self._incident_of: dict[str, str] = {}  # alert fingerprint -> open incident id
        self.resolved: deque[Incident] = deque(maxlen=history)  # the latest, for people to look back

    @property
    def open(self) -> list[Incident]:
        return list(self._open.values())

    def update(self, alerts: Iterable[Alert], now: float) -> list[Incident]:
        """Take in the current alerts; returns the open incidents and those that resolved just now."""
        touched: set[str] = set()
        for alert in sorted(alerts, key=lambda a: a.starts_at):  # the first to fire opens the incident
            incident = self._find(alert, now)
            if incident is None:
                continue
            incident.alerts[alert.fingerprint] = alert
            incident.last_fired_at = max(incident.last_fired_at, alert.starts_at)
            self._incident_of[alert.fingerprint] = incident.id
            touched.add(incident.id)
        for incident_id in touched & self._open.keys():  # merged-away incidents are gone
            incident = self._open[incident_id]
            incident.suspects = tuple(
                rank_suspects(
                    incident.alerts.values(), self.dependencies, self.holdings, self.detection_spread
                )
            )
        closed = [i for i in self._open.values() if not i.firing(now)]
        for incident in closed:
            incident.resolved_at = max(a.ends_at or now for a in incident.alerts.values())
            del self._open[incident.id]
            for key in incident.alerts:
                self._incident_of.pop(key, None)
            self.resolved.append(incident)
        return [*self._open.values(), *closed]

    def by_alert(self) -> dict[str, Incident]:
        """Alert fingerprint -> its incident, open or among the latest resolved."""
        found = {key: i for i in self.resolved for key in i.alerts}
        return found | {key: i for i in self._open.values() for key in i.alerts}

    def state(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The open incidents and the latest resolved ones, JSON-ready; ``restore`` takes them back."""
        return [asdict(i) for i in self._open.values()], [asdict(i) for i in self.resolved]

    def restore(self, open_: list[dict[str, Any]], resolved: list[dict[str, Any]]) -> None:
        self._open = {i.id: i for i in map(Incident.from_dict, open_)}
        self._incident_of = {key: i.id for i in self._open.values() for key in i.alerts}
        self.resolved.clear()
        self.resolved.extend(map(Incident.from_dict, resolved))

    def _find(self, alert: Alert, now: float) -> Incident | None:
        """The open incident ``alert`` belongs to, a new one if it fires alone, None if it is just over."""
        known = self._incident_of.get(alert.fingerprint)
        if known is not None:
            return self._open[known]
        if alert.resolved(now):  # an alert we never saw firing (or of a closed incident) opens nothing
            return None
        name = subject(alert)
        related = [
            incident
            for incident in self._open.values()
            if alert.starts_at <= incident.last_fired_at + self.grouping_window
            and any(self._related(name, other) for other in incident.services)
        ]
        if related:
            return self._merge(related)
        incident = Incident(
            incident_id(alert, alert.starts_at), opened_at=alert.starts_at, last_fired_at=alert.starts_at
        )
        self._open[incident.id] = incident
        return incident

    def _merge(self, incidents: list[Incident]) -> Incident:
        """One incident of several that an alert links (a catalog alert joins recommendations' and
        warehouse's, both of which use its tables): the oldest takes in the others' alerts."""
        keep, *others = sorted(incidents, key=lambda i: (i.opened_at, i.id))
        for other in others:
            for key, alert in other.alerts.items():
                keep.alerts[key] = alert
                keep.merged_from[key] = other.label_of(key)
                self._incident_of[key] = keep.id
            keep.last_fired_at = max(keep.last_fired_at, other.last_fired_at)
            del self._open[other.id]
        return keep

    def _related(self, a: str, b: str) -> bool:
        return a == b or b in self.dependencies.get(a, ()) or a in self.dependencies.get(b, ())


def incident_id(first: Alert, opened_at: float) -> str:
    """Stable across processes and restarts: the same first alert at the same time gives the same id."""
    text = f"{first.fingerprint}@{opened_at:.3f}"
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()
