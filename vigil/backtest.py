"""Backtests: replay a config's PromQL signals from Prometheus history and see when vigil would have fired.

Each signal is read with the same collector ``vigil run`` uses (aligned steps, chunked range queries,
series keyed by ``keep_labels``) and every series goes through a fresh detector from
``detector_factory``, point by point in time order, score before learn, so no score sees its own or a
later point. Runs of scores above 1 become episodes the way an alert rule's ``for:`` turns pending
into firing; with ground truth, episodes are matched to the faults that were injected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from vigil.collectors.model import SeriesKey
from vigil.collectors.prometheus_api import (
    MAX_POINTS_PER_REQUEST,
    PrometheusClient,
    PrometheusCollector,
)
from vigil.config import SignalConfig, VigilConfig
from vigil.detectors.base import AnyDetector
from vigil.runtime.build import detector_factory, prom_signal, promql_of
from vigil.runtime.joins import Composite


class BacktestError(Exception):
    """The replay cannot go on: bad PromQL (named by signal) or Prometheus not answering."""


@dataclass
class SeriesReplay:
    key: SeriesKey
    times: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


@dataclass
class SignalReplay:
    name: str
    step: float
    start: float  # first aligned step of the range
    end: float  # last aligned step
    requests: int = 0
    dropped: int = 0  # non-finite or duplicate points, dropped exactly as the engine drops them
    series: list[SeriesReplay] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return max(0, round((self.end - self.start) / self.step) + 1)


def score_points(
    points: Iterable[tuple[float, Any]], detector: AnyDetector
) -> tuple[list[float], list[float]]:
    """Times and scores of ``(t, x)`` points, mirroring ``Engine._ingest``: sorted, finite, increasing.

    ``x`` is a number, or a composite's joined input (which ``Composite.assemble`` already cleaned).
    """
    times: list[float] = []
    scores: list[float] = []
    for t, x in sorted(points, key=lambda point: point[0]):
        if (isinstance(x, float) and not math.isfinite(x)) or (times and t <= times[-1]):
            continue
        scores.append(detector.score_one(x, t))  # score first: the point is not yet part of the past
        detector.learn_one(x, t)
        times.append(t)
    return times, scores


def replay_signal(
    client: PrometheusClient,
    signal: SignalConfig,
    start: float,
    end: float,
    detector_for: Callable[[SeriesKey], AnyDetector | None],
    max_points: int = MAX_POINTS_PER_REQUEST,
    inputs: Sequence[SignalConfig] = (),
) -> SignalReplay:
    """Replay one PromQL signal, or one composite from its ``inputs`` (the composite's input signals)."""
    queried = list(inputs) if signal.inputs is not None else [signal]
    proms = [prom_signal(s) for s in queried]
    # A first round at `end` reads [align_up(end - lookback), align_down(end)], the whole range, through the
    # collector `vigil run` uses: same steps, chunks, series keys and duplicate handling.
    collector = PrometheusCollector(
        "backtest", client, proms, initial_lookback=end - start, max_points_per_request=max_points
    )
    first, last = collector.window(proms[0], end)
    got = collector.collect(end)
    if got.errors:
        raise BacktestError(got.error)
    result = SignalReplay(signal.name, queried[0].step, first, last, got.requests)
    result.dropped = got.dropped_non_finite + got.dropped_out_of_order
    if signal.inputs is not None:
        composite = Composite(signal.name, signal.detector.input_kind, tuple(signal.inputs), tuple(signal.by))
        rows = composite.assemble(got.series)
        series = {key: [(t, x) for t, x, _ in found] for key, found in rows.items()}
    else:
        series = {key: [(p.timestamp, p.value) for p in points] for key, points in got.series.items()}
    for key in sorted(series):
        detector = detector_for(key)
        if detector is not None:
            result.series.append(SeriesReplay(key, *score_points(series[key], detector)))
    return result


@dataclass(frozen=True)
class Rules:
    hold: float = 0.0  # an alert rule's `for:`
    merge_gap: float = 0.0  # episodes closer than this are one (0: never merged)
    grace: float = 60.0  # an alert up to this long after a fault ended still detects it


@dataclass(frozen=True)
class Episode:
    key: SeriesKey
    pending_since: float  # first point of the run above 1, like an alert's activeAt
    start: float  # when it would have fired: the first point at least `for` after pending_since
    end: float  # last point above 1
    peak: float  # highest score of the run, pending part included


def find_episodes(series: SeriesReplay, step: float, rules: Rules) -> list[Episode]:
    """When one scored series would have fired, as an alert rule ``score > 1`` with ``for: rules.hold``.

    A missing step ends a run, as a series absent at an evaluation resets a pending alert.
    """
    key, times, scores = series.key, series.times, series.scores
    runs: list[tuple[int, int]] = []  # [i, j) index ranges of consecutive points above 1
    begin: int | None = None
    for i, (t, score) in enumerate(zip(times, scores, strict=True)):
        if begin is not None and (score <= 1 or t - times[i - 1] > 1.5 * step):
            runs.append((begin, i))
            begin = None
        if score > 1 and begin is None:
            begin = i
    if begin is not None:
        runs.append((begin, len(times)))
    found: list[Episode] = []
    for i, j in runs:
        # 1e-6: aligned timestamps carry float noise; `for: 30s` must fire on the step 30 s later.
        firing = next((k for k in range(i, j) if times[k] - times[i] >= rules.hold - 1e-6), None)
        if firing is None:
            continue  # resolved while still pending: never fired
        episode = Episode(key, times[i], times[firing], times[j - 1], max(scores[i:j]))
        if found and episode.start - found[-1].end <= rules.merge_gap:
            last = found.pop()
            episode = replace(last, end=episode.end, peak=max(last.peak, episode.peak))
        found.append(episode)
    return found


@dataclass(frozen=True)
class Fault:
    fault: str
    service: str
    start: float
    end: float
    params: dict[str, Any] = field(default_factory=dict, hash=False)


def load_ground_truth(path: Path, start: float, end: float) -> list[Fault]:
    """Faults recorded in ``path`` (JSON lines) that overlap [start, end]; an open fault ends at ``end``."""
    faults = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            until = float(raw["end"]) if raw.get("end") is not None else end
            fault = Fault(
                raw["fault"], raw.get("service", ""), float(raw["start"]), until, raw.get("params") or {}
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: not a ground-truth record: {error!r}") from error
        if fault.start <= end and fault.end >= start:
            faults.append(fault)
    return sorted(faults, key=lambda f: f.start)


@dataclass(frozen=True)
class FaultMatch:
    fault: Fault
    alerts: tuple[Episode, ...]  # episodes overlapping [fault.start, fault.end + grace], by firing time

    @property
    def first_alert(self) -> float | None:
        return self.alerts[0].start if self.alerts else None

    @property
    def lag(self) -> float | None:
        """Seconds from the fault's start to the first alert; negative is a lead."""
        return None if self.first_alert is None else self.first_alert - self.fault.start

    @property
    def new_lag(self) -> float | None:
        """Lag of the first alert that fired during the fault (or its grace), not already firing before it.

        Back-to-back faults (chaos) keep one episode going across several; its lead says little about them.
        """
        return next((e.start - self.fault.start for e in self.alerts if e.start >= self.fault.start), None)


def match_faults(
    episodes: Sequence[Episode], faults: Sequence[Fault], grace: float
) -> tuple[list[FaultMatch], list[Episode]]:
    """Per fault the episodes that detect it, and the false alarms (episodes overlapping no fault)."""
    matches = []
    matched: set[Episode] = set()
    for fault in faults:
        hits = sorted(
            (e for e in episodes if e.start <= fault.end + grace and e.end >= fault.start),
            key=lambda e: (e.start, e.key),
        )
        matched.update(hits)
        matches.append(FaultMatch(fault, tuple(hits)))
    return matches, [e for e in episodes if e not in matched]


@dataclass
class Backtest:
    start: float
    end: float
    signals: list[SignalReplay]
    episodes: list[Episode]
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
    rules: Rules,
    faults: Sequence[Fault] | None = None,
    max_points: int = MAX_POINTS_PER_REQUEST,
) -> Backtest:
    detector_for = detector_factory(config)  # the very detectors `vigil run` would start with
    known = {s.name: s for s in config.signals}
    replays = [
        replay_signal(client, s, start, end, detector_for, max_points, [known[i] for i in s.inputs or ()])
        for s in signals
    ]
    episodes = [e for r in replays for series in r.series for e in find_episodes(series, r.step, rules)]
    episodes.sort(key=lambda e: (e.start, e.key))
    result = Backtest(start, end, replays, episodes)
    if faults is not None:
        result.faults, result.false_alarms = match_faults(episodes, faults, rules.grace)
    return result


def _episode_json(e: Episode) -> dict[str, Any]:
    times = {"pending_since": e.pending_since, "start": e.start, "end": e.end}
    return {"signal": e.key.signal, "labels": e.key.label_dict(), **times, "peak": round(e.peak, 3)}


def _fault_json(m: FaultMatch) -> dict[str, Any]:
    first = str(m.alerts[0].key) if m.alerts else None
    found = {"detected": bool(m.alerts), "first_alert": m.first_alert, "lag": m.lag, "first_series": first}
    return {**asdict(m.fault), **found, "new_lag": m.new_lag, "alerts": len(m.alerts)}


def to_json(result: Backtest) -> dict[str, Any]:
    signals = [
        {
            **{k: getattr(s, k) for k in ("name", "step", "start", "end", "steps", "requests", "dropped")},
            "series": [{"labels": r.key.label_dict(), "points": len(r.times)} for r in s.series],
        }
        for s in result.signals
    ]
    out: dict[str, Any] = {"from": result.start, "to": result.end, "signals": signals}
    out["episodes"] = [_episode_json(e) for e in result.episodes]
    if result.faults is not None:
        out["faults"] = [_fault_json(m) for m in result.faults]
        out["false_alarms"] = [_episode_json(e) for e in result.false_alarms or []]
    return out
