"""When did customers feel it, and when would the usual alerts have said so? Read from recorded data.

Every answer here is computed from what Prometheus recorded during a run, by range queries at the
scrape resolution, so vigil and the baselines are judged on the same data:

- the SLO breach: the first moment the SLO's 1-minute SLI is past its objective (p99 above the latency
  threshold, or more than the error budget's share of requests failing);
- baseline (a), static threshold rules at the SLO: that same condition held ``for`` 1 minute
  (latency) or at once (error ratio), as teams write them by hand;
- baseline (b), the Google SRE multi-window burn-rate alerts vigil generates for Prometheus
  (``vigil.alerts.prometheus_rules``), evaluated with their own windows and ``for``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vigil.alerts.prometheus_rules import Links, burn_alert, sli_error_ratio, slo_events
from vigil.collectors.prometheus_api import align_up
from vigil.collectors.prometheus_client import PrometheusClient
from vigil.collectors.promql import matchers
from vigil.demo_marketplace.catalog import SYSTEM
from vigil.detectors.burn_rate import DEFAULT_RULES
from vigil.system import SLO

STEP = 5.0  # Prometheus scrapes the stack every 5 s
STATIC_LATENCY_FOR = 60.0


@dataclass(frozen=True)
class Rule:
    """An alerting condition evaluated on recorded data: PromQL that returns series while it holds."""

    name: str
    expr: str
    for_s: float = 0.0


def sli(slo: SLO, window: str = "1m") -> str:
    """The SLO's indicator as customers feel it now: p99 latency (seconds) or the share of failed requests."""
    if slo.kind == "latency":
        buckets = f"{SYSTEM.slo_metric(slo)}_bucket{matchers(slo_events(SYSTEM, slo))}"
        return f"histogram_quantile({slo.objective:g}, sum by (le) (rate({buckets}[{window}])))"
    return sli_error_ratio(SYSTEM, slo, window)


def limit(slo: SLO) -> float:
    """The value of :func:`sli` past which the SLO is broken."""
    if slo.kind == "latency":
        assert slo.threshold_seconds is not None  # the model requires it for latency SLOs
        return slo.threshold_seconds
    return slo.error_budget


def breach_rule(slo: SLO) -> Rule:
    return Rule(f"{slo.name} breached", f"{sli(slo)} > {limit(slo):g}")


def static_rule(slo: SLO) -> Rule:
    """Baseline (a): the hand-written threshold alert at the SLO."""
    for_s = STATIC_LATENCY_FOR if slo.kind == "latency" else 0.0
    return Rule(f"static {slo.name}", f"{sli(slo)} > {limit(slo):g}", for_s)


def burn_rate_rules(slo: SLO) -> list[Rule]:
    """Baseline (b): the generated multi-window burn-rate alerts of ``slo`` (page and ticket)."""
    rules = []
    for burn in DEFAULT_RULES:
        alert = burn_alert(slo, burn, Links())
        labels = alert["labels"]
        name = f"burn rate {labels['long_window']}/{labels['short_window']} {burn.factor:g}x"
        rules.append(Rule(name, alert["expr"], parse_for(alert["for"])))
    return rules


def parse_for(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(text[:-1]) * units[text[-1]]


def first_firing(times: Sequence[float], start: float, for_s: float, step: float = STEP) -> float | None:
    """When a rule first fires for something that began at ``start``: the first time its condition
    (``times``, sorted, one per evaluation at which it held) has held without a gap for ``for_s``
    seconds, counting only streaks that began at or after ``start``; one already holding then (a
    burn-rate ticket still firing for an earlier incident) was not caused by what began. None: never."""
    held_since: float | None = None
    previous: float | None = None
    for t in times:
        if previous is None or t - previous > step * 1.5:  # a missed evaluation ends the streak
            held_since = t
        previous = t
        if held_since is not None and held_since >= start and t - held_since >= for_s:
            return t
    return None


def fires_at(
    client: PrometheusClient, rule: Rule, *, start: float, end: float, after: float | None = None
) -> float | None:
    """When ``rule`` first fired in [``after``, ``end``] on the data recorded since ``start``, evaluated
    on the step grid vigil's own rounds keep (``vigil.runtime.service.first_round``), so that both are
    judged on the same evaluation times."""
    grid = align_up(start, STEP)
    result = client.query_range(rule.expr, grid, max(end, grid), STEP, name=rule.name)
    times = sorted({t for series in result for t, _ in series.values})
    return first_firing(times, start if after is None else after, rule.for_s)


@dataclass(frozen=True)
class SloTimes:
    slo: str
    breach: float | None
    static: float | None
    burn_rate: float | None  # the earliest of the burn-rate alerts
    burn_rate_rule: str | None


def slo_times(
    client: PrometheusClient, slo: SLO, *, start: float, end: float, after: float | None = None
) -> SloTimes:
    """Breach and baseline alert times of ``slo`` in a run from ``start`` to ``end``, from ``after`` on."""
    breach = fires_at(client, breach_rule(slo), start=start, end=end, after=after)
    static = fires_at(client, static_rule(slo), start=start, end=end, after=after)
    burns = [
        (at, rule.name)
        for rule in burn_rate_rules(slo)
        if (at := fires_at(client, rule, start=start, end=end, after=after)) is not None
    ]
    first = min(burns) if burns else (None, None)
    return SloTimes(slo.name, breach, static, first[0], first[1])
