"""The verdict on one run: when the fault started, when vigil alerted, when customers would have felt it.

An alert counts for the fault when vigil sent it after the fault began about the faulty service or
one that depends on it (the fault can explain it); every vigil alert before that (or anywhere in the
fault-free ``surge``) is a false alert, and alerts during the fault about services it cannot reach
are reported as unrelated. Lead times are positive when vigil was earlier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from vigil.alerts.incidents import reachable
from vigil.alerts.model import INCIDENT
from vigil.collectors.prometheus_client import PrometheusClient
from vigil.demo.leadtime import slo_times
from vigil.demo.scenarios import Scenario
from vigil.demo.watch import SeenAlert
from vigil.demo_marketplace.catalog import SYSTEM
from vigil.system import SLO


@dataclass(frozen=True)
class Outcome:
    scenario: str
    fault: str | None
    culprit: str | None
    slo: str
    started: float
    ended: float
    fault_start: float | None
    fault_end: float | None
    slo_breach: float | None
    static_alert: float | None
    burn_rate_alert: float | None
    burn_rate_rule: str | None
    vigil_alert: float | None
    vigil_alert_service: str | None
    vigil_alert_signal: str | None
    likely_cause: str | None
    false_alerts: list[dict[str, Any]] = field(default_factory=list)  # vigil alerts before the fault
    # vigil alerts during the fault about services the fault cannot reach: noise, reported apart
    unrelated_alerts: list[dict[str, Any]] = field(default_factory=list)
    # Notifications the on-call got (firing and resolved), per Alertmanager group: an incident, or a
    # service for alerts outside incidents (the SLO rules Prometheus evaluates).
    notifications: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def _lead(earlier: float | None, later: float | None) -> float | None:
        return None if earlier is None or later is None else round(later - earlier, 1)

    @property
    def lead_vs_breach(self) -> float | None:
        return self._lead(self.vigil_alert, self.slo_breach)

    @property
    def lead_vs_static(self) -> float | None:
        return self._lead(self.vigil_alert, self.static_alert)

    @property
    def lead_vs_burn_rate(self) -> float | None:
        return self._lead(self.vigil_alert, self.burn_rate_alert)

    @property
    def culprit_named(self) -> bool | None:
        """Did vigil name the right service: the incident's likely cause, or else the alert's service."""
        if self.culprit is None or self.vigil_alert is None:
            return None
        return (self.likely_cause or self.vigil_alert_service) == self.culprit

    def relative(self, at: float | None) -> float | None:
        """Seconds after the fault started (after the start of the run when there is no fault)."""
        origin = self.fault_start if self.fault_start is not None else self.started
        return None if at is None else round(at - origin, 1)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data |= {
            "lead_vs_breach_s": self.lead_vs_breach,
            "lead_vs_static_s": self.lead_vs_static,
            "lead_vs_burn_rate_s": self.lead_vs_burn_rate,
            "culprit_named": self.culprit_named,
            "after_fault_start_s": {
                name: self.relative(getattr(self, name))
                for name in ("slo_breach", "static_alert", "burn_rate_alert", "vigil_alert")
            },
        }
        return data


def assess(
    scenario: Scenario,
    *,
    slo: SLO,
    prometheus: PrometheusClient,
    started: float,
    ended: float,
    fault: dict[str, Any] | None,
    alerts: list[SeenAlert],
    incidents: list[dict[str, Any]],
    notifications: Sequence[dict[str, Any]] = (),
) -> Outcome:
    """``fault`` is the injector's ground-truth record; ``alerts`` what reached Alertmanager, in order;
    ``notifications`` what Alertmanager sent on (webhook payloads)."""
    fault_start = fault["start"] if fault else None
    vigil = [a for a in alerts if a.from_vigil]
    during = [a for a in vigil if fault_start is not None and a.at >= fault_start]
    # Of alerts first seen in the same poll, the one about the culprit itself is named first.
    true = sorted(
        (a for a in during if explained_by(a, scenario.culprit)),
        key=lambda a: (a.at, a.service != scenario.culprit),
    )
    false = [a for a in vigil if fault_start is None or a.at < fault_start]
    # Customers feeling it counts from the fault on; a breach during the surge itself is in the table too.
    times = slo_times(prometheus, slo, start=started, end=ended, after=fault_start or started)
    first = true[0] if true else None
    return Outcome(
        scenario=scenario.name,
        fault=scenario.fault,
        culprit=scenario.culprit,
        slo=slo.name,
        started=started,
        ended=ended,
        fault_start=fault_start,
        fault_end=fault["end"] if fault else None,
        slo_breach=times.breach,
        static_alert=times.static,
        burn_rate_alert=times.burn_rate,
        burn_rate_rule=times.burn_rate_rule,
        vigil_alert=first.at if first else None,
        vigil_alert_service=first.service if first else None,
        vigil_alert_signal=first.labels.get("signal") if first else None,
        likely_cause=_likely_cause(first, incidents) if first else None,
        false_alerts=[_brief(a) for a in false],
        unrelated_alerts=[_brief(a) for a in during if not explained_by(a, scenario.culprit)],
        notifications=per_group(notifications),
    )


def per_group(notifications: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many notifications each Alertmanager group sent (webhook payloads, camelCase)."""
    counts: dict[str, int] = {}
    for payload in notifications:
        labels = payload.get("groupLabels") or {}
        group = ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "(no grouping labels)"
        counts[group] = counts.get(group, 0) + 1
    return counts


def explained_by(alert: SeenAlert, culprit: str | None) -> bool:
    """Could a fault in ``culprit`` explain the alert: is it about the culprit, or a service that depends
    on it (calls it, uses its tables or a component it is), so that the trouble reaches it?"""
    return explains(culprit, alert.service)


def explains(culprit: str | None, service: str) -> bool:
    """Could trouble in ``culprit`` reach ``service`` (or is it the culprit itself)?"""
    if culprit is None:
        return False
    return service == culprit or culprit in reachable(service, SYSTEM.dependencies())


def _brief(alert: SeenAlert) -> dict[str, Any]:
    return {
        "at": alert.at,
        "service": alert.service,
        "signal": alert.labels.get("signal"),
        "labels": alert.labels,
    }


def _likely_cause(alert: SeenAlert, incidents: list[dict[str, Any]]) -> str | None:
    """The likely cause vigil named in the incident that the alert is part of."""
    # The incident knows the alert as its rule raised it, before it was labelled with the incident.
    labels = {k: v for k, v in alert.labels.items() if k != INCIDENT}
    for incident in incidents:
        for member in incident.get("alerts", []):
            if member.get("labels") == labels:
                return str(incident.get("likely_cause") or "") or None
    return None
