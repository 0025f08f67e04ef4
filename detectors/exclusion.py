"""Keep declared incident and deploy windows out of a detector's training.

A baseline that learns an incident learns that incidents are normal; one that learns a deploy's
restart spike alarms less at the next real spike. Users know when those windows were (their
incident tracker, their deploy log), so they declare them and the detector skips them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from vigil.detectors.base import AnyDetector, Band


class Excluding:
    """Scores every point, but does not learn those with ``start <= t < end`` for a declared window.

    Windows can be given up front or added while streaming with :meth:`exclude`; windows that
    ended before the last learned point are dropped, so the list stays as short as the windows
    still ahead.

    >>> from vigil.detectors.rolling_mad import RollingMAD
    >>> detector = Excluding(RollingMAD(window=30, warmup=5), windows=[(100, 110)])
    >>> for t in range(100):
    ...     detector.learn_one(10.0 + (t % 2) * 0.1, t)
    >>> for t in range(100, 110):  # an incident: 50.0 is learned nowhere
    ...     detector.learn_one(50.0, t)
    >>> detector.score_one(50.0, 110) > 1
    True
    """

    def __init__(self, detector: AnyDetector, windows: Iterable[tuple[float, float]] = ()) -> None:
        self.detector = detector
        self.windows = list(windows)
        for start, end in self.windows:
            _check(start, end)
        self.pending_ = sorted(self.windows)

    @property
    def input_kind(self) -> str:
        return str(getattr(self.detector, "input_kind", "scalar"))

    def exclude(self, start: float, end: float) -> None:
        """Declare one more window (an incident or a deploy) not to learn from."""
        _check(start, end)
        self.pending_ = sorted([*self.pending_, (start, end)])

    def excluded(self, t: float) -> bool:
        return any(start <= t < end for start, end in self.pending_)

    def score_one(self, x: Any, t: float) -> float:
        return self.detector.score_one(x, t)

    def learn_one(self, x: Any, t: float) -> None:
        self.pending_ = [(start, end) for start, end in self.pending_ if end > t]
        if not self.excluded(t):
            self.detector.learn_one(x, t)

    def expected(self, t: float) -> Band | None:
        return self.detector.expected(t)

    def fit(self, times: np.ndarray, values: np.ndarray) -> Excluding:
        """``learn_one`` on every point in order: the inner detector fits the points outside the windows."""
        from vigil.detectors.fitting import fit  # fitting knows the detectors; they need not know it

        outside = np.ones(len(times), dtype=bool)
        for start, end in self.pending_:
            outside &= (times < start) | (times >= end)
        fit(self.detector, times[outside], values[outside])
        if len(times):
            last = float(times[-1])
            self.pending_ = [(start, end) for start, end in self.pending_ if end > last]
        return self


def _check(start: float, end: float) -> None:
    if not start < end:
        raise ValueError(f"an excluded window must start before it ends, got ({start}, {end})")
