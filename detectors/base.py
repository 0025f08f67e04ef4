"""The detector contract, in the spirit of river's anomaly detectors.

A detector sees one series, one point at a time: ``score_one`` first (how unusual is this
point, given the past?), then ``learn_one`` (make it part of the past). Scores are on one
scale for every detector (vmanomaly's): below 1 is normal, above 1 anomalous, 0 is neutral,
and warm-up returns 0. ``expected`` gives the band the detector considers normal right now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


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
