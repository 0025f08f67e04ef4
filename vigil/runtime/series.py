"""One series as the engine keeps it: its detector, its recent points and what the detector made of them."""

from __future__ import annotations

import math

from vigil.collectors.model import Point, SeriesKey
from vigil.detectors.base import AnyDetector, Band
from vigil.runtime.cohorts import Chunk, Cohort, release
from vigil.runtime.trail import Trail


class SeriesState:
    """One series: its detector, its recent points (``trail``) and what the detector made of the last.

    A series whose detector has a batch twin lives in a cohort's chunk once it is fed (``chunk`` and
    ``row``): its learned state, score, band and trail are then a row of the chunk's arrays, and
    ``detector`` hands out a scalar detector holding that row's state (for checkpoints and tests).
    """

    def __init__(
        self,
        key: SeriesKey,
        source: str,
        detector: AnyDetector,
        trail: Trail,
        last_timestamp: float = -math.inf,
        score: float | None = None,
        band: Band | None = None,
    ) -> None:
        self.key, self.source, self.trail, self.last_timestamp = key, source, trail, last_timestamp
        self._detector, self._score, self._band = detector, score, band
        self.chunk: Chunk | None = None
        self.row = -1
        self._exposition: str | None = None

    @property
    def detector(self) -> AnyDetector:
        if self.chunk is not None:
            return self.chunk.batch.take(self.row, self._detector)
        return self._detector

    @property
    def score(self) -> float | None:
        if self.chunk is None:
            return self._score
        score = float(self.chunk.score[self.row])
        return None if math.isnan(score) else score

    @score.setter
    def score(self, value: float | None) -> None:
        self._score = value

    @property
    def band(self) -> Band | None:
        if self.chunk is None:
            return self._band
        expected, lower, upper = self.chunk.bands[:, self.row].tolist()
        return None if math.isnan(expected) else Band(expected, lower, upper)

    @band.setter
    def band(self, value: Band | None) -> None:
        self._band = value

    @property
    def last_point(self) -> Point | None:
        last = self.trail.last()
        return Point(last[0], last[1]) if last is not None else None

    @property
    def observed(self) -> float | None:
        last = self.trail.last()
        return last[1] if last is not None and math.isfinite(last[1]) else None

    @property
    def exposition(self) -> str:
        """The series' labels as Prometheus' text format writes them, with ``signal`` (cached)."""
        if self._exposition is None:
            labels = {**self.key.label_dict(), "signal": self.key.signal}
            inner = ",".join(f'{name}="{escape(value)}"' for name, value in labels.items())
            self._exposition = f"{{{inner}}}"
        return self._exposition

    def join(self, cohort: Cohort) -> None:
        """Move into ``cohort``: the detector's state, score, band and trail become a chunk row."""
        chunk, row = cohort.place(self, self._detector)
        nan = math.nan
        chunk.score[row] = self._score if self._score is not None else nan
        band = self._band
        chunk.bands[:, row] = (band.expected, band.lower, band.upper) if band is not None else (nan,) * 3
        self.trail.move_to(chunk.trails, row)
        self.chunk, self.row = chunk, row

    def leave(self) -> None:
        """Out of its cohort (evicted): take back the detector, score, band and trail as scalars."""
        chunk = self.chunk
        if chunk is None:
            return
        self._detector, self._score, self._band = self.detector, self.score, self.band
        rows = self.trail.array()
        self.trail = Trail(chunk.trails.size)
        for values in rows.tolist():
            self.trail.append(*values)
        release(chunk, self.row)
        self.chunk, self.row = None, -1


def escape(value: str) -> str:
    """A label value as the text exposition format quotes it."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
