"""The verdict on one replayed case of the fault matrix, computed as the demo computes it.

Customers feel a fault at the first breach of any SLO of the system after the fault began; the
baselines are a static rule at each SLO, a warning rule at half of each SLO's limit, and the generated
burn-rate alerts, all evaluated on the recorded data. vigil's alert for the fault is its first alert,
fired during the fault (or ``grace`` after it), about the culprit or a service the culprit can reach;
its culprit rank is the culprit's place among the suspects of that alert's incident. Alerts that fired
before the fault (or anywhere in a fault-free surge) are false alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from alerts.alertmanager_config import Timing
from vigil.alerts.incidents import Incident
from vigil.alerts.model import PAGE, TICKET
from vigil.backtest import Backtest
from vigil.backtest_faults import Episode
from vigil.collectors.prometheus_client import PrometheusClient
from vigil.demo.leadtime import Rule, breach_rule, burn_rate_rules, fires_at, limit, sli, static_rule
from vigil.demo.outcome import explains
from vigil.demo_marketplace.catalog import SYSTEM
from vigil.durations import parse_duration
from vigil.system import SLO

GRACE_S = 60.0  # an alert this long after the fault ended still counts for it
# An abrupt fault's page must reach Alertmanager within 2 scrape intervals + 1 evaluation (issue 16).
ABRUPT_BUDGET_S = 3 * 5.0


def warning_rule(slo: SLO) -> Rule:
    """Baseline (c): a warning at half the SLO's limit, held as long as the static rule."""
    rule = static_rule(slo)
    return replace(rule, name=f"warning {slo.name}", expr=f"{sli(slo)} > {limit(slo) / 2:g}")


def first_of(
    client: PrometheusClient, rules: dict[str, Rule], start: float, end: float, after: float
) -> tuple[float | None, str | None]:
    """The earliest firing among ``rules`` (name -> rule): (time, name), or (None, None)."""
    times = [
        (at, name)
        for name, rule in rules.items()
        if (at := fires_at(client, rule, start=start, end=end, after=after)) is not None
    ]
    return min(times) if times else (None, None)


def baselines(client: PrometheusClient, start: float, end: float, after: float) -> dict[str, Any]:
    """Breach and baseline times over every SLO of the system, from ``after`` on."""
    slos = SYSTEM.slos
    out: dict[str, Any] = {}
    for kind, make in (("breach", breach_rule), ("static", static_rule), ("warning", warning_rule)):
        out[kind], out[f"{kind}_slo"] = first_of(client, {s.name: make(s) for s in slos}, start, end, after)
    burns = {f"{s.name}: {r.name}": r for s in slos for r in burn_rate_rules(s)}
    out["burn_rate"], out["burn_rate_rule"] = first_of(client, burns, start, end, after)
    return out


def about(episode: Episode) -> str:
    """What the alert is about, as the on-call reads it (a queue's alert is about the queue's owner)."""
    labels = episode.key.label_dict()
    return episode.about or labels.get("service") or labels.get("component") or ""


@dataclass(frozen=True)
class Told:
    """What Alertmanager sent about one incident: notifications that raise or update a page or ticket
    (some alert of it firing), and resolutions (every alert it told of resolved). A resolution closes
    what its group raised (PagerDuty and Opsgenie receive it under the same dedup key): it is counted
    apart, not as a second problem."""

    firing: int = 0
    resolved: int = 0

    def __add__(self, other: Told) -> Told:
        return Told(self.firing + other.firing, self.resolved + other.resolved)

    @property
    def total(self) -> int:
        return self.firing + self.resolved


def notifications(alerts: Sequence[Episode], incident: Incident, timing: Timing) -> Told:
    """Notifications Alertmanager sends about one incident, modelled on its dispatcher with vigil's
    generated config: one group per (incident label, severity); a group flushes group_wait after it is
    created, then every group_interval while it holds alerts; a flush notifies when an alert fires that
    the last notification did not hold, when every alert it told of has resolved, or when one resolved
    (send_resolved). A ticket is muted while a page of its incident fires (the inhibit rule), even once
    resolved: a ticket that ends under its page is never told resolved. The model is checked against the
    real Alertmanager in tests/integration/test_notification_model.py."""
    members = [e for e in alerts if e.fingerprint in incident.alerts]
    label = {e: incident.label_of(e.fingerprint) for e in members}
    pages = [e for e in members if e.severity == PAGE]

    def muted(e: Episode, t: float) -> bool:
        return e.severity == TICKET and any(label[p] == label[e] and p.start <= t < p.end for p in pages)

    groups: dict[tuple[str, str], list[Episode]] = {}
    for e in members:
        groups.setdefault((label[e], e.severity), []).append(e)
    interval = parse_duration(timing.group_interval)
    total = Told()
    for (_, severity), group in groups.items():
        wait = parse_duration(timing.page_group_wait if severity == PAGE else timing.ticket_group_wait)
        total += _group_notifications(group, wait, interval, muted)
    return total


def _group_notifications(
    group: list[Episode], wait: float, interval: float, muted: Callable[[Episode, float], bool]
) -> Told:
    sent, told_firing, told_resolved = Told(), set[Episode](), set[Episode]()
    told, gone = False, set[Episode]()
    t = min(e.start for e in group) + wait
    while True:
        present = [e for e in group if e.start <= t and e not in gone]
        # The inhibit stage drops muted alerts, resolved or not, before anything else; a flush left with
        # none stops there (Alertmanager's pipeline ends on an empty list) and tells nothing.
        heard = [e for e in present if not muted(e, t)]
        firing = {e for e in heard if t < e.end}
        resolved = {e for e in heard if e.end <= t}
        if not heard:
            notify = False
        elif not told:
            notify = bool(firing)
        elif not firing <= told_firing:
            notify = True
        elif not firing:
            notify = bool(told_firing)
        else:
            notify = not resolved <= told_resolved
        if notify:
            sent += Told(1, 0) if firing else Told(0, 1)
            told, told_firing, told_resolved = True, firing, resolved
        gone |= {e for e in present if e.end <= t}  # a flush drops resolved alerts, muted ones too
        if any(t < e.end for e in present):
            t += interval
            continue
        later = [e.start for e in group if e.start > t]
        if not later:
            return sent
        t = min(later) + wait  # the group was emptied and deleted: a new one waits again


def judge(case: dict[str, Any], result: Backtest, client: PrometheusClient) -> dict[str, Any]:
    """One case's row: alerted, lead times, culprit rank, notifications, false alerts."""
    truth = case.get("ground_truth")
    started, ended = case["started"], case["ended"]
    fault_start = truth["start"] if truth else None
    culprit = truth["service"] if truth else None
    quiet_until = fault_start if fault_start is not None else ended
    false = [e for e in result.episodes if e.start < quiet_until]
    row: dict[str, Any] = {
        "case": case["id"],
        "seed": case["seed"],
        "fault": case["fault"],
        "severity": case["severity"],
        "phase": case["phase"],
        "culprit": culprit,
        "fault_free_s": round(quiet_until - started, 1),
        "false_alerts": [_brief(e, started) for e in false],
    }
    if truth is None or fault_start is None:
        return row
    times = baselines(client, started, ended, fault_start)
    during = [
        e
        for e in result.episodes
        if fault_start <= e.start <= truth["end"] + GRACE_S and explains(culprit, about(e))
    ]
    first = min(during, key=lambda e: (e.start, about(e) != culprit), default=None)
    incident = _incident_of(first, result.incidents) if first else None
    rank = None
    if incident is not None:
        names = [s.service for s in incident.suspects]
        rank = names.index(culprit) + 1 if culprit in names else None
    alert_at = first.start if first else None
    row |= {
        "fault_start": fault_start,
        "fault_end": truth["end"],
        **{
            f"{k}_after_s": _after(v, fault_start)
            for k, v in times.items()
            if not k.endswith(("_slo", "_rule"))
        },
        "breach_slo": times["breach_slo"],
        "vigil_after_s": _after(alert_at, fault_start),
        "vigil_signal": first.key.signal if first else None,
        "vigil_about": about(first) if first else None,
        "likely_cause": incident.likely_cause if incident else None,
        "culprit_rank": rank,
        **_told(notifications(result.episodes, incident, Timing()) if incident else Told()),
        "unrelated_alerts": len([e for e in result.episodes if e.start >= fault_start and e not in during]),
        "alerts": [_brief(e, fault_start) for e in result.episodes if e.start >= fault_start],
    }
    for baseline in ("breach", "static", "warning", "burn_rate"):  # + : vigil was that much earlier
        then = times[baseline]
        row[f"lead_vs_{baseline}_s"] = None if alert_at is None or then is None else round(then - alert_at, 1)
    row["in_time"] = in_time(alert_at, times["breach"], fault_start)
    return row


def _told(told: Told) -> dict[str, int]:
    return {"notifications": told.firing, "resolutions": told.resolved}


def in_time(alert_at: float | None, breach: float | None, fault_start: float) -> bool | None:
    """Before the breach, or within the abrupt budget of the onset; None when no SLO broke."""
    if breach is None:
        return None
    return alert_at is not None and alert_at <= max(breach, fault_start + ABRUPT_BUDGET_S)


def _incident_of(episode: Episode, incidents: Sequence[Incident]) -> Incident | None:
    return next((i for i in incidents if episode.fingerprint in i.alerts), None)


def _after(at: float | None, origin: float) -> float | None:
    return None if at is None else round(at - origin, 1)


def _brief(e: Episode, origin: float) -> dict[str, Any]:
    return {
        "at_s": round(e.start - origin, 1),
        "until_s": round(e.end - origin, 1),
        "signal": e.key.signal,
        "about": about(e),
        "severity": e.severity,
    }
