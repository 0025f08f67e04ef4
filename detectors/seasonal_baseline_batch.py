""":class:`SeasonalBaseline` for many aligned series at once, with numpy (a ``VectorDetector``)."""

from __future__ import annotations

from collections import deque

import numpy as np

from vigil.detectors.base import ManyFromRows
from vigil.detectors.rings import Rings
from vigil.detectors.seasonal_baseline import (
    MEAN_ABS_TO_SIGMA,
    Direction,
    SeasonalBaseline,
    bucket_of,
    n_buckets,
    period_of,
)


class SeasonalBaselineBatch(ManyFromRows):
    """``n`` :class:`~vigil.detectors.seasonal_baseline.SeasonalBaseline` detectors in arrays.

    ``x[i]`` is series ``i``'s value at ``t``; NaN means no point for that series (its score is NaN
    and nothing is learned). The series share ``t``, hence the time-of-day bucket, so the per-bucket
    M-estimates of all series are one column of a ``(n, buckets + 1)`` array each, updated in one
    step; the level is the median of a 2-D ring of residuals. Scores and ``expected_many`` bands
    are, bit for bit, those of one scalar detector per series fed only that series' points.

    >>> rng = np.random.default_rng(3)
    >>> detector = SeasonalBaselineBatch(2, period=100.0, bucket=10.0, alpha=0.05, level_window=20)
    >>> for t in range(2000):
    ...     detector.learn_many(0.2 + 0.1 * np.sin(2 * np.pi * t / 100) + rng.normal(0, 0.005, 2), t)
    >>> scores = detector.score_many(np.array([0.30, 0.30]), 2075)  # 0.3 is usual at 25, not at 75
    >>> bool((scores > 1).all()), float(detector.score_many(np.array([0.30, np.nan]), 2025)[0]) < 1
    (True, True)
    """

    input_kind = "scalar"

    def __init__(
        self,
        n: int,
        period: float = 86_400.0,
        bucket: float = 900.0,
        weekly: bool = False,
        offset: float = 0.0,
        alpha: float = 0.01,
        threshold: float = 4.0,
        direction: Direction = "up",
        min_abs: float = 0.0,
        min_rel: float = 0.0,
        level_window: int = 120,
        min_bucket_points: int = 3,
        min_bucket_periods: int = 2,
        warmup: int = 10,
        clip: float = 3.0,
    ) -> None:
        if direction not in ("up", "down", "both"):
            raise ValueError(f"direction must be 'up', 'down' or 'both', not {direction!r}")
        self.n = n
        self.period = period
        self.bucket = bucket
        self.weekly = weekly
        self.offset = offset
        self.alpha = alpha
        self.threshold = threshold
        self.direction = direction
        self.min_abs = min_abs
        self.min_rel = min_rel
        self.level_window = level_window
        self.min_bucket_points = min_bucket_points
        self.min_bucket_periods = min_bucket_periods
        self.warmup = warmup
        self.clip = clip
        # Column -1 of the profile arrays is all buckets together, as in the scalar detector.
        columns = n_buckets(period, bucket, weekly) + 1
        self.center_ = np.zeros((n, columns))
        self.spread_ = np.zeros((n, columns))
        self.count_ = np.zeros((n, columns), dtype=np.int32)
        self.periods_ = np.zeros((n, columns), dtype=np.int32)
        self.last_period_ = np.full((n, columns), -1, dtype=np.int64)
        self.residuals_ = Rings(n, level_window)
        self.level_ = np.zeros(n)
        self.n_ = np.zeros(n, dtype=np.int64)

    def _profile(self, rows: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Location and sigma of ``t``'s bucket for ``rows`` (all buckets where it has too few points)."""
        index = bucket_of(t, self.period, self.bucket, self.weekly, self.offset)
        own = (self.count_[rows, index] >= self.min_bucket_points) & (
            self.periods_[rows, index] >= self.min_bucket_periods
        )
        center = np.where(own, self.center_[rows, index], self.center_[rows, -1])
        spread = np.where(own, self.spread_[rows, index], self.spread_[rows, -1])
        return center, MEAN_ABS_TO_SIGMA * spread

    def _scores(self, rows: np.ndarray, x: np.ndarray, center: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        expected = center + self.level_[rows]
        deviation = x - expected
        if self.direction == "up":
            deviation = np.maximum(deviation, 0.0)
        elif self.direction == "down":
            deviation = np.maximum(-deviation, 0.0)
        return np.abs(deviation) / self._allowed(expected, sigma)

    def _allowed(self, expected: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """The deviation that scores exactly 1."""
        sigma = np.maximum(np.maximum(sigma, 0.01 * np.abs(expected)), 1e-9)
        return np.maximum(np.maximum(self.threshold * sigma, self.min_abs), self.min_rel * np.abs(expected))

    def score_rows(self, rows: np.ndarray, x: np.ndarray, t: float) -> np.ndarray:
        """Scores of ``x[k]``, a point of series ``rows[k]`` at ``t`` (0 while a series warms up)."""
        scores = np.zeros(len(rows))
        ready = self.n_[rows] >= max(self.warmup, 1)
        if ready.any():
            scores[ready] = self._scores(rows[ready], x[ready], *self._profile(rows[ready], t))
        return scores

    def learn_rows(self, rows: np.ndarray, x: np.ndarray, t: float) -> None:
        """Learn ``x[k]`` into series ``rows[k]`` (distinct rows), as ``learn_one`` on each."""
        anomalous = self.score_rows(rows, x, t) > 1.0
        ready = self.n_[rows] >= max(self.warmup, 1)
        if ready.any():
            center, _ = self._profile(rows[ready], t)
            self.residuals_.push(rows[ready], x[ready] - center)
            self.level_[rows[ready]] = self.residuals_.medians(rows[ready])
        self.n_[rows] += 1
        normal, x = rows[~anomalous], x[~anomalous]
        index = bucket_of(t, self.period, self.bucket, self.weekly, self.offset)
        cycle = period_of(t, self.period, self.weekly, self.offset)
        new = normal[self.last_period_[normal, index] != cycle]
        self.periods_[new, index] += 1
        self.last_period_[new, index] = cycle
        for column in (index, -1):
            self._update(normal, column, x)

    def expected_rows(self, rows: np.ndarray, t: float) -> np.ndarray:
        """Bands of ``rows`` at ``t``: a ``(3, len(rows))`` array of expected, lower, upper (NaN: warm-up)."""
        bands = np.full((3, len(rows)), np.nan)
        ready = self.n_[rows] >= max(self.warmup, 1)
        if ready.any():
            center, sigma = self._profile(rows[ready], t)
            expected = center + self.level_[rows[ready]]
            allowed = self._allowed(expected, sigma)
            bands[:, ready] = expected, expected - allowed, expected + allowed
        return bands

    def put(self, k: int, detector: SeasonalBaseline) -> None:
        """Make row ``k`` hold ``detector``'s learned state (whatever the row held before)."""
        fresh = not detector.count_  # nothing learned yet: its profile lists are empty
        self.center_[k] = 0.0 if fresh else detector.center_
        self.spread_[k] = 0.0 if fresh else detector.spread_
        self.count_[k] = 0 if fresh else detector.count_
        self.periods_[k] = 0 if fresh else detector.periods_
        self.last_period_[k] = -1 if fresh else detector.last_period_
        self.residuals_.put(k, list(detector.residuals_))
        self.level_[k], self.n_[k] = detector.level_, detector.n_

    def take(self, k: int, detector: SeasonalBaseline) -> SeasonalBaseline:
        """Give ``detector`` row ``k``'s learned state; returns it."""
        if self.n_[k] == 0:
            return detector  # nothing learned: the detector stays as it was
        detector.center_, detector.spread_ = self.center_[k].tolist(), self.spread_[k].tolist()
        detector.count_, detector.periods_ = self.count_[k].tolist(), self.periods_[k].tolist()
        detector.last_period_ = self.last_period_[k].tolist()
        detector.residuals_ = deque(self.residuals_.row(k), maxlen=detector.level_window)
        detector.level_, detector.n_ = float(self.level_[k]), int(self.n_[k])
        return detector

    def _update(self, rows: np.ndarray, column: int, x: np.ndarray) -> None:
        """One M-estimation step of the profile's ``column`` for ``rows``, as the scalar ``_update``."""
        count = self.count_[rows, column]
        center, spread = self.center_[rows, column], self.spread_[rows, column]
        rate = np.maximum(self.alpha, 1.0 / (count + 1))
        deviation = x - center
        bound = self.clip * np.maximum(MEAN_ABS_TO_SIGMA * spread, 1e-12)
        deviation = np.where(count >= self.min_bucket_points, np.clip(deviation, -bound, bound), deviation)
        first = count == 0  # the first point is the location, the spread stays 0
        self.center_[rows, column] = np.where(first, x, center + rate * deviation)
        self.spread_[rows, column] = np.where(first, spread, spread + rate * (np.abs(deviation) - spread))
        self.count_[rows, column] = count + 1
