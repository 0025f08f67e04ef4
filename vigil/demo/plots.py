"""The demo report's picture: load, the SLO, vigil's scores and the queues over the run, with its moments.

Drawn from what Prometheus recorded (vigil's own scores included: Prometheus scrapes vigil), with
the fault shaded and vertical lines where vigil alerted, the SLO broke and the baselines fired.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server

import matplotlib.pyplot as plt

from vigil.collectors.prometheus_client import PrometheusClient, PrometheusError, Series
from vigil.demo.leadtime import limit, sli
from vigil.demo.outcome import Outcome
from vigil.demo.watch import GATEWAY_RATE
from vigil.system import SLO

STEP = 5.0
SCORE_AXIS_MAX = 5.0
QUEUE_DEPTH = 'sum by (queue) (rabbitmq_detailed_queue_messages{queue!~".*[.]dead"})'
LineStyle = Literal["-", "--"]
MOMENTS: tuple[tuple[str, str, str, LineStyle], ...] = (  # attribute of the outcome, label, colour, style
    ("vigil_alert", "vigil alert", "tab:orange", "-"),
    ("slo_breach", "SLO breach", "tab:red", "-"),
    ("static_alert", "static rule", "tab:gray", "--"),
    ("burn_rate_alert", "burn-rate alert", "tab:purple", "--"),
)


def _range(prometheus: PrometheusClient, promql: str, outcome: Outcome) -> list[Series]:
    try:
        return prometheus.query_range(promql, outcome.started, outcome.ended, STEP)
    except PrometheusError:
        return []


def _minutes(series: Series, origin: float) -> tuple[list[float], list[float]]:
    points = [(t, v) for t, v in series.values if math.isfinite(v)]
    return [(t - origin) / 60 for t, _ in points], [v for _, v in points]


def render(prometheus: PrometheusClient, outcome: Outcome, slo: SLO, folder: Path) -> list[Path]:
    origin = outcome.started
    figure, axes = plt.subplots(4, 1, figsize=(11, 10), sharex=True)
    load, slo_axis, scores, queues = axes

    for series in _range(prometheus, GATEWAY_RATE, outcome):
        load.plot(*_minutes(series, origin), color="tab:blue")
    load.set_ylabel("storefront req/s")
    load.set_title(f"{outcome.scenario}: load, SLO {slo.name}, vigil's scores, queues")

    for series in _range(prometheus, sli(slo), outcome):
        slo_axis.plot(*_minutes(series, origin), color="tab:green", label=f"{slo.name} (1 min)")
    slo_axis.axhline(limit(slo), color="tab:red", linewidth=0.8, linestyle=":", label="SLO limit")
    slo_axis.set_ylabel("p99 (s)" if slo.kind == "latency" else "5xx share")
    slo_axis.legend(loc="upper left", fontsize=8)

    scored = _range(prometheus, "vigil_anomaly_score", outcome)
    top = sorted(scored, key=lambda s: -max((v for _, v in s.values if math.isfinite(v)), default=0))[:5]
    for series in top:
        labels = series.metric
        where = " ".join(labels[k] for k in ("service", "route", "queue") if k in labels)
        scores.plot(*_minutes(series, origin), label=f"{labels.get('signal', '')} {where}", linewidth=1)
    scores.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
    scores.set_ylim(0, SCORE_AXIS_MAX)  # above 1 is anomalous; how far above matters little
    scores.set_ylabel(f"anomaly score (to {SCORE_AXIS_MAX:g})")
    if top:
        scores.legend(loc="upper left", fontsize=7)

    for series in _range(prometheus, QUEUE_DEPTH, outcome):
        queues.plot(*_minutes(series, origin), label=series.metric.get("queue", ""), linewidth=1)
    queues.set_ylabel("messages waiting")
    queues.set_xlabel("minutes since the load began")
    if queues.lines:
        queues.legend(loc="upper left", fontsize=7)

    for axis in axes:
        _moments(axis, outcome, origin)
    handles = [plt.Line2D([], [], color=c, linestyle=s, label=label) for _, label, c, s in MOMENTS]
    figure.legend(handles=handles, loc="lower center", ncol=4, fontsize=8)
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    path = folder / "timeline.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return [path]


def _moments(axis: plt.Axes, outcome: Outcome, origin: float) -> None:
    if outcome.fault_start is not None:
        end = outcome.fault_end if outcome.fault_end is not None else outcome.ended
        axis.axvspan((outcome.fault_start - origin) / 60, (end - origin) / 60, color="tab:red", alpha=0.08)
    for attribute, _label, colour, style in MOMENTS:
        at = getattr(outcome, attribute)
        if at is not None:
            axis.axvline((at - origin) / 60, color=colour, linestyle=style, linewidth=1)
