"""Robust seasonal baseline for latency-like signals: a time-of-day (and day-of-week) profile."""

from __future__ import annotations

import math
from collections import deque
from typing import Literal

from vigil.detectors.base import Band

MEAN_ABS_TO_SIGMA = math.sqrt(math.pi / 2)  # mean absolute deviation of a normal, in sigmas
Direction = Literal["up", "down", "both"]


class SeasonalBaseline:
    """Scores a point against the usual value for its time of day, in robust sigmas.

    The day (``period`` seconds, shifted by ``offset`` for the local time zone) is cut into
    buckets of ``bucket`` seconds, and with ``weekly`` each day of the week has its own. Each
    bucket keeps a robust location and spread: exponentially weighted (``alpha``) M-estimates of
    the median and mean absolute deviation in which a point pulls at most ``clip`` sigmas, so
    they barely react to outliers. Until a bucket has ``min_bucket_points`` points from at least
    ``min_bucket_periods`` different days (weeks, with ``weekly``) the profile of all buckets
    together stands in for it: a time of day seen on one day only is no pattern yet, and a fresh
    bucket's location would carry the level of the moment it was learned in (counted twice with
    the level below, it put the expected value far off on a new detector's first bucket change).

    On top of the profile, ``expected = bucket location + level``, where ``level`` is the median
    of the last ``level_window`` residuals (value minus bucket location). A level shift lasting
    more than half that window is thus accepted; a shorter incident cannot move the median.

    ``threshold`` sigmas map to score 1, but never less than ``min_abs`` or ``min_rel`` times the
    expected value, so tiny absolute changes never alarm. ``direction`` picks which side alarms
    (latency: ``"up"``). Points scoring above 1 are not learned into the profile (declared incident
    and deploy windows are kept out by :class:`vigil.detectors.exclusion.Excluding`).

    >>> import math, random
    >>> rng = random.Random(3)
    >>> detector = SeasonalBaseline(period=100.0, bucket=10.0, alpha=0.05, level_window=20)
    >>> def latency(t):
    ...     return 0.2 + 0.1 * math.sin(2 * math.pi * t / 100) + rng.gauss(0, 0.005)
    >>> for t in range(2000):
    ...     detector.learn_one(latency(t), t)
    >>> round(detector.expected(2025).expected, 2), round(detector.expected(2075).expected, 2)
    (0.3, 0.1)
    >>> detector.score_one(0.30, 2025) < 1 < detector.score_one(0.30, 2075)
    True
    >>> detector.score_one(0.01, 2025)  # latency only alarms upwards
    0.0
    """

    def __init__(
        self,
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
        # Learned state; index -1 of the profile lists is all buckets together.
        self.center_: list[float] = []
        self.spread_: list[float] = []
        self.count_: list[int] = []
        self.periods_: list[int] = []  # different periods (days or weeks) each bucket was learned in
        self.last_period_: list[int] = []
        self.residuals_: deque[float] = deque(maxlen=level_window)
        self.level_ = 0.0
        self.n_ = 0

    @property
    def n_buckets(self) -> int:
        return n_buckets(self.period, self.bucket, self.weekly)

    def bucket_of(self, t: float) -> int:
        return bucket_of(t, self.period, self.bucket, self.weekly, self.offset)

    def _profile(self, t: float) -> tuple[int, float, float] | None:
        """(bucket used, its location, its sigma); bucket -1 stands for all buckets."""
        if self.n_ < max(self.warmup, 1):  # no profile before the first point, even with warmup=0
            return None
        index = self.bucket_of(t)
        if self.count_[index] < self.min_bucket_points or self.periods_[index] < self.min_bucket_periods:
            index = -1
        sigma = MEAN_ABS_TO_SIGMA * self.spread_[index]
        return index, self.center_[index], sigma

    def _allowed(self, expected: float, sigma: float) -> float:
        """The deviation that scores exactly 1."""
        sigma = max(sigma, 0.01 * abs(expected), 1e-9)
        return max(self.threshold * sigma, self.min_abs, self.min_rel * abs(expected))

    def score_one(self, x: float, t: float) -> float:
        profile = self._profile(t)
        if profile is None:
            return 0.0
        _, center, sigma = profile
        expected = center + self.level_
        deviation = x - expected
        if self.direction == "up":
            deviation = max(deviation, 0.0)
        elif self.direction == "down":
            deviation = max(-deviation, 0.0)
        return abs(deviation) / self._allowed(expected, sigma)

    def learn_one(self, x: float, t: float) -> None:
        if not self.count_:
            size = self.n_buckets + 1
            self.center_, self.spread_, self.count_ = [0.0] * size, [0.0] * size, [0] * size
            self.periods_, self.last_period_ = [0] * size, [-1] * size
        anomalous = self.score_one(x, t) > 1.0
        profile = self._profile(t)
        if profile is not None:
            self.residuals_.append(x - profile[1])
            self.level_ = _median(self.residuals_)
        self.n_ += 1
        if not anomalous:
            index = self.bucket_of(t)
            cycle = period_of(t, self.period, self.weekly, self.offset)
            if self.last_period_[index] != cycle:
                self.periods_[index] += 1
                self.last_period_[index] = cycle
            for i in (index, -1):
                self._update(i, x)

    def _update(self, i: int, x: float) -> None:
        count = self.count_[i]
        if count == 0:
            self.center_[i], self.count_[i] = x, 1
            return
        rate = max(self.alpha, 1.0 / (count + 1))
        deviation = x - self.center_[i]
        if count >= self.min_bucket_points:
            bound = self.clip * max(MEAN_ABS_TO_SIGMA * self.spread_[i], 1e-12)
            deviation = min(max(deviation, -bound), bound)
        self.center_[i] += rate * deviation
        self.spread_[i] += rate * (abs(deviation) - self.spread_[i])
        self.count_[i] = count + 1

    def expected(self, t: float) -> Band | None:
        profile = self._profile(t)
        if profile is None:
            return None
        _, center, sigma = profile
        expected = center + self.level_
        allowed = self._allowed(expected, sigma)
        return Band(expected, expected - allowed, expected + allowed)


def n_buckets(period: float, bucket: float, weekly: bool) -> int:
    return math.ceil(period / bucket) * (7 if weekly else 1)


def bucket_of(t: float, period: float, bucket: float, weekly: bool, offset: float) -> int:
    local = t + offset
    index = int((local % period) // bucket)
    if weekly:
        index += int(local // period) % 7 * math.ceil(period / bucket)
    return index


def period_of(t: float, period: float, weekly: bool, offset: float) -> int:
    """Which day (week, with ``weekly``) ``t`` falls in: buckets count the different ones they saw."""
    return int((t + offset) // (period * (7 if weekly else 1)))


def _median(values: deque[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
