"""The detector contract, in the spirit of river's anomaly detectors.

A detector sees one series, one point at a time: ``score_one`` first (how unusual is this
point, given the past?), then ``learn_one`` (make it part of the past). Scores are on one
scale for every detector (vmanomaly's): below 1 is normal, above 1 anomalous, 0 is neutral,
and warm-up returns 0. ``expected`` gives the band the detector considers normal right now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Band:
    expected: float
    lower: float
    upper: float


@runtime_checkable
class Detector(Protocol):
    def score_one(self, x: float, t: float) -> float:
        """Anomaly score of ``x`` observed at unix time ``t``; must not change the detector."""
        ...

    def learn_one(self, x: float, t: float) -> None:
        """Take ``x`` into account for the points that follow."""
        ...

    def expected(self, t: float) -> Band | None:
        """The normal band at time ``t``, or None while warming up."""
        ...


@runtime_checkable
class AnyDetector(Protocol):
    """A detector whose points are not plain floats (vectors, log template counts).

    Same contract as ``Detector``; the engine drives both the same way. ``Detector`` is an
    ``AnyDetector`` and, because ``x`` is ``Any`` here, the reverse also type-checks.
    """

    def score_one(self, x: Any, t: float) -> float: ...

    def learn_one(self, x: Any, t: float) -> None: ...

    def expected(self, t: float) -> Band | None: ...


@runtime_checkable
class VectorDetector(Protocol):
    """Many aligned series at once: ``x[i]`` is series ``i``'s value at ``t`` (NaN: no point).

    Scores are those the per-series detector would give each series on its own.
    """

    def score_many(self, x: np.ndarray, t: float) -> np.ndarray: ...

    def learn_many(self, x: np.ndarray, t: float) -> None: ...


class ManyFromRows:
    """Whole-array ``score_many``/``learn_many``/``expected_many`` for a batch that works on rows.

    A batch defines ``n`` and the row methods (``score_rows``, ``learn_rows``, ``expected_rows``);
    NaN in ``x`` means "no point for this series this round" and leaves its row alone.
    """

    n: int

    def score_rows(self, rows: np.ndarray, x: np.ndarray, t: float) -> np.ndarray:
        raise NotImplementedError

    def learn_rows(self, rows: np.ndarray, x: np.ndarray, t: float) -> None:
        raise NotImplementedError

    def expected_rows(self, rows: np.ndarray, t: float) -> np.ndarray:
        raise NotImplementedError

    def score_many(self, x: np.ndarray, t: float) -> np.ndarray:
        scores = np.full(self.n, np.nan)
        rows = np.flatnonzero(~np.isnan(x))
        scores[rows] = self.score_rows(rows, x[rows], t)
        return scores

    def learn_many(self, x: np.ndarray, t: float) -> None:
        rows = np.flatnonzero(~np.isnan(x))
        self.learn_rows(rows, x[rows], t)

    def expected_many(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every series' band at ``t`` as (expected, lower, upper) arrays; NaN while a series warms up."""
        expected, lower, upper = self.expected_rows(np.arange(self.n), t)
        return expected, lower, upper
