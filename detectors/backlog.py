"""Queue backlog early warning: how soon, at the current growth, does the depth reach a limit?"""

from __future__ import annotations

import math
from collections import deque
from functools import lru_cache

import numpy as np

from vigil.detectors.base import Band
from vigil.detectors.rings import Rings, median_ignoring_nan


@lru_cache(maxsize=64)
def pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``i < j`` of ``n`` points (Theil-Sen's slopes)."""
    first, second = np.triu_indices(n, 1)
    return first, second


def theil_sen(times: np.ndarray, values: np.ndarray) -> float:
    """Median of the slopes between every two points: robust to a third of them being outliers."""
    first, second = pairs(len(times))
    dt = times[second] - times[first]
    keep = dt > 0
    if not keep.any():
        return 0.0
    return float(np.median((values[second] - values[first])[keep] / dt[keep]))


class QueueBacklog:
    """Scores queue depth by how soon it reaches ``threshold`` messages: ``horizon / time-to-threshold``.

    The growth rate is the Theil-Sen slope (messages per second) of the last ``window`` depths,
    so a single spike or a drained burst does not count as growth. :meth:`observe_rates` adds
    the publish and consume rates: when publishing outpaces consuming for most of the last
    ``rates_window`` observations, their median imbalance is a growth rate too (the larger
    wins). Score 1 means the limit is ``horizon`` seconds away; a depth at or over the limit
    scores ``max_score``. :meth:`time_to_threshold` gives the estimate for alert annotations.

    >>> import random
    >>> rng = random.Random(5)
    >>> detector = QueueBacklog(threshold=1000, horizon=600, window=10)
    >>> for i in range(30):  # steady: about 20 messages waiting
    ...     detector.learn_one(20 + rng.randint(-3, 3), t=15.0 * i)
    >>> detector.score_one(22, t=450.0) < 1
    True
    >>> for i in range(30, 40):  # consumers stall: +3 messages per second
    ...     detector.learn_one(20 + 45 * (i - 29), t=15.0 * i)
    >>> round(detector.time_to_threshold(t=585.0))  # (1000 - 470) / 3
    177
    >>> detector.score_one(500, t=600.0) > 1
    True
    """

    def __init__(
        self,
        threshold: float = 1000.0,
        horizon: float = 900.0,
        window: int = 20,
        warmup: int = 5,
        rates_window: int = 20,
        max_score: float = 10.0,
        min_growth: float = 1e-6,
    ) -> None:
        self.threshold = threshold
        self.horizon = horizon
        self.window = window
        self.warmup = warmup
        self.rates_window = rates_window
        self.max_score = max_score
        self.min_growth = min_growth
        self.times_: deque[float] = deque(maxlen=window)
        self.depths_: deque[float] = deque(maxlen=window)
        self.imbalance_: deque[float] = deque(maxlen=rates_window)
        self.slope_ = 0.0
        self.rate_growth_ = 0.0

    @property
    def growth(self) -> float:
        """Messages per second the backlog grows by, from depth and (if observed) rates."""
        return max(self.slope_, self.rate_growth_)

    def _time_to(self, depth: float) -> float:
        if depth >= self.threshold:
            return 0.0
        growth = self.growth
        return (self.threshold - depth) / growth if growth > self.min_growth else math.inf

    def score_one(self, x: float, t: float) -> float:
        if len(self.depths_) < max(self.warmup, 1):
            return 0.0
        remaining = self._time_to(x)
        if remaining <= 0:
            return self.max_score
        return min(self.horizon / remaining, self.max_score)

    def learn_one(self, x: float, t: float) -> None:
        self.times_.append(t)
        self.depths_.append(x)
        if len(self.depths_) >= self.warmup:
            self.slope_ = theil_sen(np.array(self.times_), np.array(self.depths_))

    def observe_rates(self, publish: float, consume: float, t: float) -> None:
        """Publish and consume rates (messages per second) of the queue at ``t``."""
        self.imbalance_.append(publish - consume)
        if len(self.imbalance_) >= self.warmup:
            self.rate_growth_ = float(np.median(np.array(self.imbalance_)))

    def _projected(self, t: float) -> float:
        return self.depths_[-1] + self.growth * max(t - self.times_[-1], 0.0)

    def time_to_threshold(self, t: float) -> float | None:
        """Seconds from ``t`` until the depth reaches ``threshold`` (inf: not growing), or None."""
        if len(self.depths_) < max(self.warmup, 1):  # no depth to project from, even with warmup=0
            return None
        return self._time_to(self._projected(t))

    def expected(self, t: float) -> Band | None:
        """Projected depth; upper is the depth from which the limit is less than ``horizon`` away."""
        if len(self.depths_) < max(self.warmup, 1):
            return None
        upper = min(max(self.threshold - self.growth * self.horizon, 0.0), self.threshold)
        return Band(self._projected(t), 0.0, upper)


class QueueBacklogBatch:
    """:class:`QueueBacklog` for ``n`` aligned queues at once (a ``VectorDetector``).

    ``x[i]`` is queue ``i``'s depth at ``t``; NaN means no point for that queue (its score is NaN
    and nothing is learned). Each queue's last ``window`` times and depths are rows of 2-D rings;
    Theil-Sen runs on all queues together through the same pair indices, in blocks of rows to
    bound memory. Scores and ``expected_many`` bands are, bit for bit, those of one
    :class:`QueueBacklog` per queue.

    >>> detector = QueueBacklogBatch(2, threshold=1000, horizon=600, window=10)
    >>> for i in range(20):  # queue 0 is steady, queue 1's consumers stall (+3 messages per second)
    ...     detector.learn_many(np.array([20.0, 20.0 + 45 * i]), t=15.0 * i)
    >>> detector.score_many(np.array([20.0, 900.0]), t=300.0).round(2).tolist()
    [0.0, 10.0]
    """

    input_kind = "scalar"
    block_rows = 4096  # rows per Theil-Sen block: window 20 gives 190 slopes, 6 MB per array

    def __init__(
        self,
        n: int,
        threshold: float = 1000.0,
        horizon: float = 900.0,
        window: int = 20,
        warmup: int = 5,
        rates_window: int = 20,
        max_score: float = 10.0,
        min_growth: float = 1e-6,
    ) -> None:
        self.n = n
        self.threshold = threshold
        self.horizon = horizon
        self.window = window
        self.warmup = warmup
        self.rates_window = rates_window
        self.max_score = max_score
        self.min_growth = min_growth
        self.times_ = Rings(n, window)
        self.depths_ = Rings(n, window)
        self.imbalance_ = Rings(n, rates_window)
        self.slope_ = np.zeros(n)
        self.rate_growth_ = np.zeros(n)

    def score_many(self, x: np.ndarray, t: float) -> np.ndarray:
        scores = np.where(np.isnan(x), np.nan, 0.0)
        rows = np.flatnonzero((self.depths_.lengths() >= max(self.warmup, 1)) & ~np.isnan(x))
        depth = x[rows]
        growth = np.maximum(self.slope_[rows], self.rate_growth_[rows])
        with np.errstate(divide="ignore"):
            remaining = np.where(growth > self.min_growth, (self.threshold - depth) / growth, np.inf)
            scores[rows] = np.minimum(self.horizon / remaining, self.max_score)
        scores[rows[depth >= self.threshold]] = self.max_score
        return scores

    def learn_many(self, x: np.ndarray, t: float) -> None:
        rows = np.flatnonzero(~np.isnan(x))
        self.times_.push(rows, np.full(len(rows), float(t)))
        self.depths_.push(rows, x[rows])
        ready = rows[self.depths_.lengths()[rows] >= self.warmup]
        for start in range(0, len(ready), self.block_rows):
            block = ready[start : start + self.block_rows]
            self.slope_[block] = self._theil_sen(block)

    def _theil_sen(self, rows: np.ndarray) -> np.ndarray:
        """:func:`theil_sen` of each row's points, grouped by how many points the row holds."""
        times, depths = self.times_.chronological(rows), self.depths_.chronological(rows)
        lengths = self.depths_.lengths()[rows]
        slopes = np.zeros(len(rows))
        distinct = np.unique(lengths)
        for length in distinct:
            group = slice(None) if len(distinct) == 1 else lengths == length
            first, second = pairs(int(length))
            dt = times[group][:, second] - times[group][:, first]
            dv = depths[group][:, second] - depths[group][:, first]
            pair_slopes = np.divide(dv, dt, out=np.full(dv.shape, np.nan), where=dt > 0)
            # A row without any pair with dt > 0 has slope 0, as in the scalar theil_sen.
            slopes[group] = np.nan_to_num(median_ignoring_nan(pair_slopes), nan=0.0)
        return slopes

    def expected_many(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every queue's band at ``t`` as (expected, lower, upper) arrays; NaN while a queue warms up."""
        bands = np.full((3, self.n), np.nan)
        rows = np.flatnonzero(self.depths_.lengths() >= max(self.warmup, 1))
        last = (self.depths_.count[rows] - 1) % self.window
        growth = np.maximum(self.slope_[rows], self.rate_growth_[rows])
        elapsed = np.maximum(t - self.times_.values[rows, last], 0.0)
        upper = np.minimum(np.maximum(self.threshold - growth * self.horizon, 0.0), self.threshold)
        expected, lower = bands[0], bands[1]
        expected[rows], lower[rows], bands[2, rows] = (
            self.depths_.values[rows, last] + growth * elapsed,
            0.0,
            upper,
        )
        return expected, lower, bands[2]

    def observe_rates_many(self, publish: np.ndarray, consume: np.ndarray, t: float) -> None:
        """Publish and consume rates of every queue at ``t`` (NaN: none for that queue)."""
        rows = np.flatnonzero(~np.isnan(publish) & ~np.isnan(consume))
        self.imbalance_.push(rows, publish[rows] - consume[rows])
        ready = rows[self.imbalance_.lengths()[rows] >= self.warmup]
        self.rate_growth_[ready] = self.imbalance_.medians(ready)
