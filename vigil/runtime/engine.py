"""The detection engine: feeds each collected point through its series' detector.

Series whose detectors have a batch twin and share its parameters are fed together: their points
of a collection are staged in their cohort's chunk and scored and learned in one numpy step per
timestamp (``vigil.runtime.cohorts``), with the same results as point by point (``batch=False``).

Robustness rules: a source that fails is marked down (and the outage recorded as a gap)
while the others go on; non-finite values and points at or before a series' last timestamp
are counted and dropped; the number of series is bounded (least recently updated evicted).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vigil.collectors.model import Collection, Collector, Point, SeriesKey
from vigil.detectors.base import AnyDetector
from vigil.detectors.batches import batch_key
from vigil.runtime.cohorts import Chunk, Cohort
from vigil.runtime.joins import Composite
from vigil.runtime.series import SeriesState
from vigil.runtime.trail import Trail

log = logging.getLogger(__name__)
WINDOW_POINTS = 480  # two hours at a 15 s step


@dataclass
class SourceHealth:
    up: bool = True
    error: str | None = None
    last_attempt: float | None = None
    last_success: float | None = None
    down_since: float | None = None
    gaps: deque[tuple[float, float]] = field(
        default_factory=lambda: deque(maxlen=100)
    )  # (start, end) outages


@dataclass
class Counters:
    samples: int = 0
    non_finite: int = 0
    out_of_order: int = 0
    evicted: int = 0
    ticks: int = 0
    last_tick_seconds: float = 0.0


class Engine:
    def __init__(
        self,
        collectors: list[Collector],
        detector_for: Callable[[SeriesKey], AnyDetector | None],
        *,
        composites: Sequence[Composite] = (),
        shard: tuple[int, int] = (0, 1),
        window_points: int = WINDOW_POINTS,
        max_series: int = 100_000,
        batch: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.collectors = collectors
        self.detector_for = detector_for
        self.composites = list(composites)
        self.shard = shard
        self.window_points, self.max_series, self.clock = window_points, max_series, clock
        self.batch = batch  # False: every series its own detector, point by point (to compare)
        self._series: OrderedDict[SeriesKey, SeriesState] = OrderedDict()
        self._cohorts: dict[Any, Cohort] = {}
        self._staged: dict[int, Chunk] = {}  # chunks holding this collection's points, by id
        self.sources = {c.name: SourceHealth() for c in collectors}
        self.counters = Counters()
        self._lock = threading.Lock()

    def tick(self) -> None:
        """One round: collect from every source, then score and learn every new point."""
        started = time.perf_counter()
        now = self.clock()
        for collector in self.collectors:
            try:
                collection = collector.collect(now)
            except Exception as error:  # a collector bug must not stop the others
                log.exception("collector %s failed", collector.name)
                collection = Collection(
                    source=collector.name, up=False, error=f"{type(error).__name__}: {error}"
                )
            with self._lock:
                self._record_health(collector.name, collection, now)
                self._ingest(collection)
        with self._lock:
            self.counters.ticks += 1
            self.counters.last_tick_seconds = time.perf_counter() - started

    def _record_health(self, name: str, collection: Collection, now: float) -> None:
        health = self.sources[name]
        health.last_attempt, health.error = now, collection.error
        if collection.up:
            if health.down_since is not None:
                health.gaps.append((health.down_since, now))
                log.warning("source %s is back after %.0fs", name, now - health.down_since)
            health.up, health.down_since, health.last_success = True, None, now
        elif health.up:
            health.up, health.down_since = False, now
            log.warning("source %s is down: %s", name, collection.error)

    def _ingest(self, collection: Collection) -> None:
        known, staged = self._series, self._staged
        for key, points in collection.series.items():
            state = known.get(key)
            if state is None:
                state = self._state(key, collection.source)
            else:
                known.move_to_end(key)
            if len(points) > 1:
                points = sorted(points, key=timestamp_of)
            for point in points:
                t, x = point.timestamp, point.value
                if not math.isfinite(x):
                    self.counters.non_finite += 1
                elif state is None:
                    pass
                elif state.chunk is not None and t > state.last_timestamp:
                    # The usual point, inlined: ``_feed`` would stage it in its chunk as well.
                    state.last_timestamp = t
                    state.chunk.stage(state.row, t, x, x)
                    staged[id(state.chunk)] = state.chunk
                else:
                    self._feed(state, t, x, x)
        for composite in self.composites:
            for key, rows in composite.assemble(collection.series).items():
                state = self._state(key, collection.source)
                for timestamp, x, shown in rows:
                    if state is not None:
                        self._feed(state, timestamp, x, math.nan if shown is None else shown)
        for chunk in self._staged.values():
            self.counters.samples += chunk.flush()
        self._staged.clear()

    def _feed(self, state: SeriesState, timestamp: float, x: Any, shown: float) -> None:
        """Score, then learn, one point of one series (a batched series' point waits for its chunk)."""
        if timestamp <= state.last_timestamp:
            self.counters.out_of_order += 1
            return
        state.last_timestamp = timestamp
        if state.chunk is None and self.batch:
            self._join_cohort(state)
        chunk = state.chunk
        if chunk is not None:
            chunk.stage(state.row, timestamp, x, shown)
            self._staged[id(chunk)] = chunk
            return
        detector = state.detector
        state.score = score = detector.score_one(x, timestamp)
        detector.learn_one(x, timestamp)
        state.band = band = detector.expected(timestamp)
        if band is None:
            state.trail.append(timestamp, shown, score)
        else:
            state.trail.append(timestamp, shown, score, band.expected, band.lower, band.upper)
        self.counters.samples += 1

    def _join_cohort(self, state: SeriesState) -> None:
        key = batch_key(state.detector)
        if key is None:
            return
        cohort = self._cohorts.get(key)
        if cohort is None:
            cohort = self._cohorts[key] = Cohort(self.window_points)
        state.join(cohort)

    def _state(self, key: SeriesKey, source: str) -> SeriesState | None:
        """The series' state, created on first sight; None for series nobody scores (inputs only)."""
        state = self._series.get(key)
        if state is None:
            if not owns(self.shard, key):
                return None
            detector = self.detector_for(key)
            if detector is None:
                return None
            state = SeriesState(key, source, detector, Trail(self.window_points))
            self._series[key] = state
            while len(self._series) > self.max_series:
                _, evicted = self._series.popitem(last=False)
                if evicted.chunk is not None and evicted.chunk.staged:  # its row must not be fed later
                    self.counters.samples += evicted.chunk.flush()
                evicted.leave()
                self.counters.evicted += 1
        else:
            self._series.move_to_end(key)
        return state

    def series(self) -> list[SeriesState]:
        with self._lock:
            return list(self._series.values())

    def chunks(self) -> list[Chunk]:
        """The cohorts' chunks (read them holding ``locked()``)."""
        return [chunk for cohort in self._cohorts.values() for chunk in cohort.chunks]

    def locked(self) -> threading.Lock:
        """Hold while reading detectors in place (a checkpoint): no round changes them meanwhile."""
        return self._lock

    def series_unlocked(self) -> list[SeriesState]:
        """``series()`` for a caller already holding ``locked()``."""
        return list(self._series.values())

    def fresh_state(self, key: SeriesKey, source: str) -> SeriesState | None:
        """A new series with nothing learned (to fit on history); None if known, another's or unscored."""
        with self._lock:
            return None if key in self._series else self._state(key, source)

    def owns(self, key: SeriesKey) -> bool:
        return owns(self.shard, key)

    def adopt(self, states: Sequence[SeriesState]) -> None:
        """Series learned by an earlier run of this engine (a checkpoint), before the first round."""
        with self._lock:
            for state in states[-self.max_series :]:
                self._series[state.key] = state


def timestamp_of(point: Point) -> float:
    return point.timestamp


def owns(shard: tuple[int, int], key: SeriesKey) -> bool:
    """Whether replica ``index`` of ``count`` scores this series.

    A stable hash of the series (not Python's per-process ``hash``), so every replica, restart and
    machine agrees and N replicas split the series between them with no coordination.
    """
    index, count = shard
    if count == 1:
        return True
    digest = hashlib.blake2b(str(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count == index
