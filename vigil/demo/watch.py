"""What the demo shows while it runs: load, SLOs, vigil's scores, alerts and incidents, as events.

A :class:`Watcher` polls the real sources every few seconds (Prometheus for load and SLIs, vigil's
API for scores and incidents, Alertmanager's API for the alerts that reached it) and turns what
changed into :class:`Event` s. Alerts count from the moment Alertmanager first lists them: that is
when the page leaves vigil (Alertmanager's own group_wait comes on top for every sender alike).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import requests

from vigil.alerts.alertmanager import parse_time
from vigil.alerts.model import ANOMALY, KIND
from vigil.alerts.webhook import NOTIFICATIONS_PATH
from vigil.collectors.prometheus_client import PrometheusClient, PrometheusError
from vigil.demo.leadtime import limit, sli
from vigil.system import SLO

GATEWAY_RATE = 'sum(rate(http_server_request_duration_seconds_count{service="gateway"}[1m]))'


@dataclass(frozen=True)
class Event:
    at: float
    kind: str  # phase | fault | breach | vigil-alert | rule-alert | incident | resolved
    text: str
    service: str = ""


@dataclass(frozen=True)
class SeenAlert:
    """An alert as Alertmanager listed it, with the time it was first seen there."""

    at: float
    labels: dict[str, str]
    starts_at: str

    @property
    def from_vigil(self) -> bool:
        """Sent by vigil itself. Prometheus rules on vigil's exported scores (``vigil alerts rules
        --mirror-anomalies``, for setups that alert through Prometheus) carry the scrape's ``job``."""
        return self.labels.get(KIND) == ANOMALY and "job" not in self.labels

    @property
    def service(self) -> str:
        """The service it is about, else the component (a database, a cache) it names."""
        return self.labels.get("service") or self.labels.get("component", "")

    @property
    def subject(self) -> str:
        """``http_p99_latency_seconds (/products)``: what is anomalous, and on which route or queue."""
        labels = self.labels
        what = labels.get("signal") or labels.get("slo") or labels.get("alertname", "")
        where = labels.get("route") or labels.get("queue")
        return f"{what} ({where})" if where else what


@dataclass
class Snapshot:
    at: float
    rps: float | None = None
    slis: dict[str, float | None] = field(default_factory=dict)
    scores: list[tuple[str, float]] = field(default_factory=list)  # the highest, "signal service/..."
    open_incidents: int = 0


@dataclass
class Watcher:
    prometheus: PrometheusClient
    vigil_url: str
    alertmanager_url: str
    slos: list[SLO]
    started: float  # alerts that began before this belong to someone else's run
    alerts: dict[str, SeenAlert] = field(default_factory=dict)  # by fingerprint
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)  # by id, as vigil's API gave them
    breaches: dict[str, float] = field(default_factory=dict)  # SLO -> first seen broken
    # What Alertmanager told the on-call (through vigil's webhook), by (time received, group key); kept
    # here as vigil only remembers them until it restarts.
    notifications: dict[tuple[float, str], dict[str, Any]] = field(default_factory=dict)
    http: requests.Session = field(default_factory=requests.Session)

    def poll(self, now: float) -> tuple[Snapshot, list[Event]]:
        snapshot = Snapshot(at=now)
        events: list[Event] = []
        self._load_and_slos(snapshot, events, now)
        self._scores(snapshot)
        self._alerts(events, now)
        self._incidents(snapshot, events, now)
        self._notifications()
        return snapshot, events

    def _value(self, promql: str, now: float) -> float | None:
        try:
            return highest(self.prometheus, promql, now)
        except PrometheusError:
            return None

    def _load_and_slos(self, snapshot: Snapshot, events: list[Event], now: float) -> None:
        snapshot.rps = self._value(GATEWAY_RATE, now)
        for slo in self.slos:
            value = snapshot.slis[slo.name] = self._value(sli(slo), now)
            if value is not None and value > limit(slo) and slo.name not in self.breaches:
                self.breaches[slo.name] = now
                events.append(
                    Event(now, "breach", f"SLO {slo.name} broken: {describe(slo, value)}", slo.service)
                )

    def _get(self, url: str, **params: str) -> Any:
        try:
            response = self.http.get(url, params=params, timeout=5)
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError):
            return None  # a source that is restarting: the next poll tries again

    def _scores(self, snapshot: Snapshot) -> None:
        signals = self._get(f"{self.vigil_url}/api/v1/signals") or []
        scored = []
        for item in signals:
            score = item.get("anomaly_score")
            if score is None:
                continue
            labels = item.get("labels") or {}
            where = "/".join(str(v) for v in labels.values())
            scored.append((f"{item.get('signal')} {where}".strip(), float(score)))
        snapshot.scores = sorted(scored, key=lambda pair: -pair[1])[:4]

    def _alerts(self, events: list[Event], now: float) -> None:
        for item in self._get(f"{self.alertmanager_url}/api/v2/alerts") or []:
            fingerprint = item.get("fingerprint", "")
            if (
                fingerprint in self.alerts
                or not item.get("startsAt")
                or parse_time(item["startsAt"]) < self.started
            ):
                continue
            seen = self.alerts[fingerprint] = SeenAlert(now, dict(item.get("labels", {})), item["startsAt"])
            who = "vigil" if seen.from_vigil else "Prometheus rule"
            name, severity = seen.labels.get("alertname", ""), seen.labels.get("severity", "")
            text = f"{who} alert {name} [{severity}] {seen.subject} on {seen.service}"
            events.append(Event(now, "vigil-alert" if seen.from_vigil else "rule-alert", text, seen.service))

    def _incidents(self, snapshot: Snapshot, events: list[Event], now: float) -> None:
        listed = self._get(f"{self.vigil_url}/api/v1/incidents", status="all") or []
        snapshot.open_incidents = sum(1 for i in listed if i.get("status") != "resolved")
        for incident in listed:
            known = self.incidents.get(incident["id"])
            self.incidents[incident["id"]] = incident
            if known is None:
                cause = incident.get("likely_cause") or "unknown"
                text = f"incident opened: {incident.get('headline', '')} (likely cause: {cause})"
                events.append(Event(now, "incident", text, cause))
            if incident.get("status") == "resolved" and (known is None or known.get("status") != "resolved"):
                events.append(Event(now, "resolved", f"incident resolved: {incident.get('headline', '')}"))

    def _notifications(self) -> None:
        for item in self._get(self.vigil_url + NOTIFICATIONS_PATH) or []:
            received, payload = item.get("received_at", 0.0), item.get("payload") or {}
            if received >= self.started and about_this_run(payload, self.started):
                self.notifications[(received, str(payload.get("groupKey", "")))] = payload

    def vigil_alerts(self) -> list[SeenAlert]:
        return sorted((a for a in self.alerts.values() if a.from_vigil), key=lambda a: a.at)


def about_this_run(payload: dict[str, Any], started: float) -> bool:
    """A notification with an alert that began in this run: a group of an earlier run may still send
    its resolution during this one."""
    return any(parse_time(a.get("startsAt", "")) >= started for a in payload.get("alerts", []))


def describe(slo: SLO, value: float | None) -> str:
    if value is None:
        return "no data"
    if slo.kind == "latency":
        return f"p99 {format_seconds(value)} (limit {format_seconds(limit(slo))})"
    return f"{value:.2%} failing (limit {limit(slo):.0%})"


def format_seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def highest(prometheus: PrometheusClient, promql: str, at: float) -> float | None:
    """The largest finite value ``promql`` has at ``at`` over all its series; None without any."""
    values = [v for s in prometheus.query(promql, at) for _, v in s.values if math.isfinite(v)]
    return max(values) if values else None
