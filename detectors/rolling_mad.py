"""Robust rolling baseline: median and MAD of the recent window."""

from __future__ import annotations

from collections import deque

import numpy as np

from vigil.detectors.base import Band

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution, in standard deviations


class RollingMAD:
    """Scores a point by its distance from the window's median in robust standard deviations.

    ``threshold`` robust sigmas map to score 1; ``min_deviation`` keeps a flat series from
    turning noise into alarms.

    >>> detector = RollingMAD(window=20, warmup=5)
    >>> for i in range(20):
    ...     detector.learn_one(10.0 + (i % 3) * 0.1, t=i)
    >>> detector.score_one(10.1, t=20) < 1 < detector.score_one(25.0, t=20)
    True
    """

    def __init__(
        self, window: int = 120, warmup: int = 10, threshold: float = 4.0, min_deviation: float = 0.0
    ) -> None:
        self.window = window
        self.warmup = warmup
        self.threshold = threshold
        self.min_deviation = min_deviation
        self.values: deque[float] = deque(maxlen=window)

    def _center_spread(self) -> tuple[float, float] | None:
        if len(self.values) < self.warmup:
            return None
        data = np.fromiter(self.values, dtype=float, count=len(self.values))
        median = float(np.median(data))
        spread = MAD_TO_SIGMA * float(np.median(np.abs(data - median)))
        # A constant series has MAD 0: fall back to a small share of its level, and the floor.
        spread = max(spread, 0.01 * abs(median), self.min_deviation / self.threshold, 1e-9)
        return median, spread

    def score_one(self, x: float, t: float) -> float:
        estimate = self._center_spread()
        if estimate is None:
            return 0.0
        median, spread = estimate
        return abs(x - median) / spread / self.threshold

    def learn_one(self, x: float, t: float) -> None:
        self.values.append(x)

    def expected(self, t: float) -> Band | None:
        estimate = self._center_spread()
        if estimate is None:
            return None
        median, spread = estimate
        return Band(median, median - self.threshold * spread, median + self.threshold * spread)
