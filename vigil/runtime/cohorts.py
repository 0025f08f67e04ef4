"""Series whose detectors agree on kind and parameters, scored and learned together with numpy.

A cohort is every series of one batch key (``vigil.detectors.batches``); it keeps them in chunks,
each with one batch detector (a row per series), one trails block and the latest score and band of
each row. The engine stages a round's points into their series' chunks and flushes each chunk once:
one ``score_rows`` / ``learn_rows`` / ``expected_rows`` per distinct timestamp instead of three
Python calls per point. Chunks start small and double up to ``MAX_CHUNK`` rows, so a handful of
series costs little and a hundred thousand never copy a large array to grow.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from vigil.detectors.base import AnyDetector
from vigil.detectors.batches import Batch, new_batch
from vigil.runtime.trail import Trails

if TYPE_CHECKING:
    from vigil.runtime.series import SeriesState

FIRST_CHUNK, MAX_CHUNK = 16, 4096


class Chunk:
    """Up to ``capacity`` series of one cohort: a batch detector row, a trail ring and a score each."""

    def __init__(self, like: AnyDetector, capacity: int, window_points: int) -> None:
        self.batch: Batch = new_batch(like, capacity)
        self.trails = Trails(capacity, window_points)
        self.score = np.full(capacity, math.nan)
        self.bands = np.full((3, capacity), math.nan)  # expected, lower, upper
        self.states: list[SeriesState | None] = [None] * capacity
        self.free = list(range(capacity - 1, -1, -1))  # pop() hands out low rows first
        self.version = 0  # changes whenever a series comes or goes (what caches of ``states`` check)
        self._staged: tuple[list[int], list[float], list[float], list[float]] = ([], [], [], [])

    def stage(self, row: int, t: float, x: float, shown: float) -> None:
        rows, times, xs, shown_values = self._staged
        rows.append(row)
        times.append(t)
        xs.append(x)
        shown_values.append(shown)

    def flush(self) -> int:
        """Score, then learn, every staged point, series by series in time order; how many."""
        if not self.staged:
            return 0  # flushed already (before one of its series was evicted)
        rows, times, xs, shown = (np.array(column) for column in self._staged)
        self._staged = ([], [], [], [])
        if len(np.unique(times)) == 1:  # the usual round: every series brings its point at one time
            self._feed(rows, float(times[0]), xs, shown)
            return len(rows)
        order = np.argsort(times, kind="stable")
        rows, times, xs, shown = rows[order], times[order], xs[order], shown[order]
        starts = np.flatnonzero(np.r_[True, np.diff(times) != 0])
        for start, end in zip(starts, np.r_[starts[1:], len(times)], strict=True):
            self._feed(rows[start:end], float(times[start]), xs[start:end], shown[start:end])
        return len(rows)

    def _feed(self, rows: np.ndarray, t: float, x: np.ndarray, shown: np.ndarray) -> None:
        scores = self.batch.score_rows(rows, x, t)
        self.batch.learn_rows(rows, x, t)
        bands = self.batch.expected_rows(rows, t)
        self.score[rows] = scores
        self.bands[:, rows] = bands
        self.trails.append_many(rows, np.vstack([np.full(len(rows), t), shown, scores, bands]))

    @property
    def staged(self) -> bool:
        return bool(self._staged[0])


class Cohort:
    """Every series of one batch key, in chunks."""

    def __init__(self, window_points: int) -> None:
        self.window_points = window_points
        self.chunks: list[Chunk] = []

    def place(self, state: SeriesState, detector: AnyDetector) -> tuple[Chunk, int]:
        """A free row for ``state``, loaded with ``detector``'s learned state."""
        chunk = next((c for c in self.chunks if c.free), None)
        if chunk is None:
            held = sum(len(c.states) for c in self.chunks)
            chunk = Chunk(detector, min(max(FIRST_CHUNK, held), MAX_CHUNK), self.window_points)
            self.chunks.append(chunk)
        row = chunk.free.pop()
        chunk.batch.put(row, detector)
        chunk.states[row] = state
        chunk.version += 1
        return chunk, row


def release(chunk: Chunk, row: int) -> None:
    """Free ``row`` for another series (its batch row is overwritten when it is placed)."""
    chunk.states[row] = None
    chunk.version += 1
    chunk.trails.clear(row)
    chunk.score[row] = math.nan
    chunk.bands[:, row] = math.nan
    chunk.free.append(row)
