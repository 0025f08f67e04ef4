"""Backtests: replay a config's Prometheus signals through vigil's own engine, alert rules and incidents.

History is read once with the collector ``vigil run`` uses (aligned steps, chunked range queries,
series keyed by ``keep_labels``, duplicates and non-finite values dropped). Then a replay source
hands a fresh ``Engine`` (the config's detectors, composites joined as in production), round after
round on an injected clock every ``interval``, the points that had arrived by then (and, with logs
exported beside a recording, the log collector's counts of them, window by window); after each round
the config's alert rule (threshold, ``for``, ``keep_firing_for``, hysteresis) and the incident tracker
run on the engine's observations, exactly as in ``vigil run``. An episode is one alert from firing to
resolution; with ground truth, episodes are matched to the faults that were injected, and each fault
gets the likely cause of the incident that covered it.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from vigil.alerts.incidents import Incident, subject
from vigil.alerts.model import Alert, fingerprint
from vigil.alerts.rules import RuleEvaluator
from vigil.backtest_faults import Episode, Fault, FaultMatch, match_faults
from vigil.backtest_logs import RecordedLogs
from vigil.collectors.logs import ERRORS, LINES
from vigil.collectors.model import Collection, Collector, Point, SeriesKey
from vigil.collectors.prometheus_api import (
    MAX_POINTS_PER_REQUEST,
    PrometheusClient,
    PrometheusCollector,
    align_up,
)
from vigil.config import SignalConfig, VigilConfig
from vigil.runtime.alerting import alert_rule, incident_tracker
from vigil.runtime.build import (
    LOG_NOVELTY_SIGNAL,
    build_composites,
    detector_factory,
    log_collector,
    prom_signal,
    promql_of,
)
from vigil.runtime.engine import Engine
from vigil.runtime.observe import observe
from vigil.system import load_system

SOURCE = "prometheus"  # the replayed series' source, as in `vigil run`


class BacktestError(Exception):
    """The replay cannot go on: bad PromQL (named by signal) or Prometheus not answering."""


@dataclass
class SignalReplay:
    name: str
    step: float
    start: float  # first aligned step of the range
    end: float  # last aligned step
    requests: int = 0
    dropped: int = 0  # non-finite or duplicate points, dropped exactly as the engine drops them
    times: dict[SeriesKey, list[float]] = field(default_factory=dict)  # of the points read, per series

    @property
    def steps(self) -> int:
        return max(0, round((self.end - self.start) / self.step) + 1)


def read_history(
    client: PrometheusClient, signal: SignalConfig, start: float, end: float, max_points: int
) -> tuple[SignalReplay, dict[SeriesKey, list[Point]]]:
    """Every series of one PromQL signal over [start, end], through the collector `vigil run` uses."""
    prom = prom_signal(signal)
    # A first round at `end` reads [align_up(end - lookback), align_down(end)]: the whole range.
    collector = PrometheusCollector(
        "backtest", client, [prom], initial_lookback=end - start, max_points_per_request=max_points
    )
    first, last = collector.window(prom, end)
    got = collector.collect(end)
    if got.errors:
        raise BacktestError(got.error)
    replay = SignalReplay(signal.name, signal.step, first, last, got.requests)
    replay.dropped = got.dropped_non_finite + got.dropped_out_of_order
    replay.times = {key: [p.timestamp for p in points] for key, points in got.series.items()}
    return replay, got.series


class Replay:
    """A source that hands out recorded points as time passes: each round, those up to ``now``."""

    name = SOURCE

    def __init__(self, series: dict[SeriesKey, list[Point]]) -> None:
        self.series = {key: sorted(points, key=lambda p: p.timestamp) for key, points in series.items()}
        self.times = {key: [p.timestamp for p in points] for key, points in self.series.items()}
        self.cursor = dict.fromkeys(self.series, 0)

    def collect(self, now: float) -> Collection:
        out = Collection(self.name)
        for key, points in self.series.items():
            begin, end = self.cursor[key], bisect.bisect_right(self.times[key], now)
            if end > begin:
                out.series[key] = points[begin:end]
                self.cursor[key] = end
        return out


@dataclass(frozen=True)
class Overrides:
    hold: float | None = None  # the alert rule's `for`; None: the config's
    keep_firing_for: float | None = None  # None: the config's
    grace: float = 60.0  # an alert up to this long after a fault ended still detects it


def log_signals(config: VigilConfig) -> set[str]:
    """The signals the log collector's series are scored as (novelty: a join of template counts)."""
    return {LINES, ERRORS} | ({LOG_NOVELTY_SIGNAL} if config.log_novelty is not None else set())


def replay(
    config: VigilConfig,
    signals: Sequence[SignalConfig],
    series: dict[SeriesKey, list[Point]],
    span: tuple[float, float],
    overrides: Overrides,
    logs: RecordedLogs | None = None,
) -> tuple[list[Episode], list[Incident]]:
    """Run the engine, the alert rule and the incident tracker over the recorded ``series`` (and the
    recorded ``logs``, when the config reads logs)."""
    chosen = {s.name for s in signals}
    # The injected clock (no decision reads the real one), on the grid `vigil run`'s rounds keep.
    clock = [min(align_up(span[0], config.interval), span[1])]
    sources: list[Collector] = [Replay(series)]
    elasticsearch = config.sources.elasticsearch
    if logs is not None and elasticsearch is not None:  # the logs `vigil run` would have read
        sources.append(log_collector(elasticsearch, None, reader=logs, clock=lambda: clock[0]))
        chosen |= log_signals(config)
    engine = Engine(
        sources,
        detector_factory(config),  # the very detectors `vigil run` would start with
        composites=[c for c in build_composites(config) if c.name in chosen],
        max_series=config.max_series,
        clock=lambda: clock[0],
    )
    system = load_system(config.system) if config.system is not None else None
    rule = alert_rule(config, system)
    changes = {"for_": overrides.hold, "keep_firing_for": overrides.keep_firing_for}
    rule = replace(rule, **{name: value for name, value in changes.items() if value is not None})
    evaluator, tracker = RuleEvaluator(rule), incident_tracker(config, system)
    episodes: dict[tuple[str, float], Episode] = {}
    keys: dict[str, SeriesKey] = {}
    while True:
        now = clock[0]
        engine.tick()
        observations = [o for o in observe(engine.series(), now) if o.key.signal in chosen]
        for o in observations:
            if o.score is not None and o.score > rule.threshold and rule.watches(o.key):
                keys.setdefault(fingerprint(rule.labels(o.key)), o.key)
        alerts = evaluator.evaluate(observations, now)
        tracker.update(alerts, now)
        for alert in alerts:
            _record(episodes, alert, keys, evaluator, now)
        if now >= span[1]:
            break
        clock[0] = min(now + config.interval, span[1])
    return sorted(episodes.values(), key=lambda e: (e.start, e.key)), [*tracker.resolved, *tracker.open]


def _record(
    episodes: dict[tuple[str, float], Episode],
    alert: Alert,
    keys: dict[str, SeriesKey],
    evaluator: RuleEvaluator,
    now: float,
) -> None:
    score = float(alert.annotations.get("anomaly_score", "0"))
    end = alert.ends_at if alert.ends_at is not None else now
    known = episodes.get((alert.fingerprint, alert.starts_at))
    if known is None:
        since = evaluator.pending_since(alert.fingerprint)
        pending = since if since is not None else alert.starts_at
        episodes[(alert.fingerprint, alert.starts_at)] = Episode(
            keys[alert.fingerprint],
            pending,
            alert.starts_at,
            end,
            score,
            alert.fingerprint,
            alert.severity,
            subject(alert),
        )
    elif known.end < end or alert.ends_at is None:
        episodes[(alert.fingerprint, alert.starts_at)] = replace(known, end=end, peak=max(known.peak, score))


@dataclass
class Backtest:
    start: float
    end: float
    signals: list[SignalReplay]
    episodes: list[Episode]
    incidents: list[Incident] = field(default_factory=list)
    faults: list[FaultMatch] | None = None
    false_alarms: list[Episode] | None = None


def select_signals(config: VigilConfig, names: Sequence[str] | None) -> list[SignalConfig]:
    """The signals to replay: all Prometheus ones (PromQL or metric specs) and joins of them that are
    scored, or those named."""
    known = {s.name: s for s in config.signals}

    def replayable(s: SignalConfig) -> bool:
        if s.inputs is None:
            return promql_of(s) is not None
        return all(i in known and promql_of(known[i]) is not None for i in s.inputs)

    if not names:
        return [s for s in config.signals if s.detect and replayable(s)]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown signal(s) {', '.join(unknown)}; the config has {', '.join(known)}")
    not_promql = [n for n in names if not replayable(known[n])]
    if not_promql:
        raise ValueError(
            "only signals Prometheus computes (PromQL, metric specs, and joins of them) can be replayed; "
            f"not {', '.join(not_promql)}"
        )
    return [known[n] for n in dict.fromkeys(names)]


def run_backtest(
    config: VigilConfig,
    client: PrometheusClient,
    signals: Sequence[SignalConfig],
    start: float,
    end: float,
    overrides: Overrides,
    faults: Sequence[Fault] | None = None,
    max_points: int = MAX_POINTS_PER_REQUEST,
    logs: RecordedLogs | None = None,
) -> Backtest:
    """Replay ``signals`` over [start, end] from ``client`` (and ``logs``, exported beside a recording:
    ``vigil.backtest_logs``), judged against ``faults`` when given."""
    known = {s.name: s for s in config.signals}
    queried = {name: known[name] for s in signals for name in (s.inputs or [s.name])}  # joins: their inputs
    replays: list[SignalReplay] = []
    series: dict[SeriesKey, list[Point]] = {}
    for signal in queried.values():
        read, found = read_history(client, signal, start, end, max_points)
        replays.append(read)
        series |= found
    episodes, incidents = replay(config, signals, series, (start, end), overrides, logs)
    result = Backtest(start, end, replays, episodes, incidents)
    if faults is not None:
        result.faults, result.false_alarms = match_faults(episodes, faults, overrides.grace, incidents)
    return result


def _episode_json(e: Episode) -> dict[str, Any]:
    times = {"pending_since": e.pending_since, "start": e.start, "end": e.end}
    about = {"signal": e.key.signal, "labels": e.key.label_dict(), "severity": e.severity}
    return {**about, **times, "peak": round(e.peak, 3)}


def _fault_json(m: FaultMatch) -> dict[str, Any]:
    first = str(m.alerts[0].key) if m.alerts else None
    found = {"detected": bool(m.alerts), "first_alert": m.first_alert, "lag": m.lag, "first_series": first}
    extra = {"new_lag": m.new_lag, "alerts": len(m.alerts), "likely_cause": m.likely_cause}
    return {**asdict(m.fault), **found, **extra}


def _incident_json(i: Incident) -> dict[str, Any]:
    times = {"opened_at": i.opened_at, "resolved_at": i.resolved_at}
    return {
        "id": i.id,
        **times,
        "likely_cause": i.likely_cause,
        "services": i.services,
        "alerts": len(i.alerts),
    }


def to_json(result: Backtest) -> dict[str, Any]:
    signals = [
        {
            **{k: getattr(s, k) for k in ("name", "step", "start", "end", "steps", "requests", "dropped")},
            "series": [{"labels": k.label_dict(), "points": len(t)} for k, t in sorted(s.times.items())],
        }
        for s in result.signals
    ]
    out: dict[str, Any] = {"from": result.start, "to": result.end, "signals": signals}
    out["episodes"] = [_episode_json(e) for e in result.episodes]
    out["incidents"] = [_incident_json(i) for i in result.incidents]
    if result.faults is not None:
        out["faults"] = [_fault_json(m) for m in result.faults]
        out["false_alarms"] = [_episode_json(e) for e in result.false_alarms or []]
    return out
