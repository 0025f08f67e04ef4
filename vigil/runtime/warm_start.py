"""Warm start: series that know nothing yet learn their history from Prometheus before they score.

Without it a first start, a new replica or a checkpoint taken under other detector settings leaves
every detector cold: a seasonal baseline would need days of live traffic before its time-of-day
buckets count. Like vmanomaly's ``fit_window``, each Prometheus signal's ``training_window`` of
history is read (one ``query_range`` per chunk, all of a signal's series at once), ending just before
the window the collector's first round reads, so no point is learned twice. The series this replica
owns and has no learned state for are fitted with ``fit_many`` (vectorised across series, exactly
what streaming the same points would learn). Left out: the declared ``exclude`` windows (the
detectors' own ``Excluding`` skips them) and the windows of incidents vigil recorded, so past
trouble is not learned as normal. Series restored from a checkpoint are left as they are.

A Prometheus that cannot answer is logged and the series start cold: never a crash.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vigil.collectors.model import SeriesKey
from vigil.collectors.prometheus_api import PrometheusCollector, PromSignal, align_up, chunks
from vigil.collectors.prometheus_client import PrometheusError, Series
from vigil.detectors.fitting import fit_many
from vigil.runtime.engine import Engine
from vigil.runtime.series import SeriesState

log = logging.getLogger(__name__)
CHUNK_POINTS = 1440  # steps per query: 6 hours at 15 s, a bounded slice of every series in memory


@dataclass(frozen=True)
class WarmStart:
    series: int = 0  # series fitted from history
    points: int = 0  # points learned
    seconds: float = 0.0
    errors: tuple[str, ...] = ()


def warm_start(
    engine: Engine, training_window: float, skip: Sequence[tuple[float, float]], now: float
) -> WarmStart:
    """Fit the engine's unknown series of every Prometheus signal on ``training_window`` of history."""
    began = time.perf_counter()
    history = _History(engine, training_window, skip, now)
    errors = []
    for collector in engine.collectors:
        if not isinstance(collector, PrometheusCollector):
            continue
        for signal in collector.signals:
            try:
                history.fit(collector, signal)
            except PrometheusError as error:  # down, or this signal's PromQL: the rest still start warm
                errors.append(f"{signal.name}: {error}")
                log.warning("warm start of %s failed, its series start cold: %s", signal.name, error)
    for key, (t, x) in history.latest.items():
        state = history.fitted[key]
        state.last_timestamp = t  # the collector's first round goes on from here
        state.trail.append(t, x)
    result = WarmStart(len(history.latest), history.points, time.perf_counter() - began, tuple(errors))
    log.info(
        "warm start: %d series fitted on %d points of history (%.0f s back) in %.1f s",
        result.series,
        result.points,
        training_window,
        result.seconds,
    )
    return result


class _History:
    def __init__(
        self, engine: Engine, training_window: float, skip: Sequence[tuple[float, float]], now: float
    ) -> None:
        self.engine, self.training_window, self.skip, self.now = engine, training_window, skip, now
        self.known = {state.key for state in engine.series()}  # restored from a checkpoint: left alone
        self.fitted: dict[SeriesKey, SeriesState] = {}
        self.latest: dict[SeriesKey, tuple[float, float]] = {}  # each fitted series' last point
        self.points = 0

    def fit(self, collector: PrometheusCollector, signal: PromSignal) -> None:
        first_round_start, _ = collector.window(signal, self.now)
        start = align_up(self.now - self.training_window, signal.step)
        end = first_round_start - signal.step
        for chunk_start, chunk_end in chunks(start, end, signal.step, CHUNK_POINTS):
            found = collector.client.query_range(
                signal.query, chunk_start, chunk_end, signal.step, name=signal.name
            )
            steps = round((chunk_end - chunk_start) / signal.step) + 1
            self._fit_chunk(collector.name, signal, found, chunk_start + signal.step * np.arange(steps))

    def _fit_chunk(self, source: str, signal: PromSignal, found: list[Series], times: np.ndarray) -> None:
        states, rows = [], []
        for series in found:
            key = signal.key(series.metric)
            state = self.fitted.get(key)
            if state is None and key not in self.known:
                state = self.engine.fresh_state(key, source)
            if state is None:
                continue  # restored from a checkpoint, another replica's, or not scored
            self.fitted[key] = state
            row = np.full(len(times), math.nan)
            for t, x in series.values:
                row[round((t - times[0]) / signal.step)] = x
            states.append(state)
            rows.append(row)
        if not states:
            return
        grid = np.array(rows)
        grid[~np.isfinite(grid)] = math.nan
        for skip_start, skip_end in self.skip:
            grid[:, (times >= skip_start) & (times < skip_end)] = math.nan
        fit_many([s.detector for s in states], times, grid)
        for state, row in zip(states, grid, strict=True):
            present = np.flatnonzero(~np.isnan(row))
            if len(present):
                self.latest[state.key] = float(times[present[-1]]), float(row[present[-1]])
                self.points += len(present)
