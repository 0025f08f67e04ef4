"""Robust rolling baseline: median and MAD of the recent window."""

from __future__ import annotations

from collections import deque

import numpy as np

from vigil.detectors.base import Band, ManyFromRows
from vigil.detectors.rings import Rings, median_of_first

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
        self.values_: deque[float] = deque(maxlen=window)

    # (median, spread) of the window as it stands: the engine asks for the band after learning a point
    # and for the score of the next one, both on the same window. ``learn_one`` clears it; it is left
    # out of pickles (checkpoints), and the class attribute makes an unpickled detector start with None.
    estimate_: tuple[float, float] | None = None

    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in vars(self).items() if k != "estimate_"}

    def _center_spread(self) -> tuple[float, float] | None:
        if len(self.values_) < max(self.warmup, 1):  # an empty window has no median, even with warmup=0
            return None
        if self.estimate_ is None:
            ordered = sorted(self.values_)  # a window of ~100 floats: sorted() beats np.median's overhead
            median = _middle(ordered)
            spread = MAD_TO_SIGMA * _middle(sorted([abs(v - median) for v in ordered]))
            # A constant series has MAD 0: fall back to a small share of its level, and the floor.
            spread = max(spread, 0.01 * abs(median), self.min_deviation / self.threshold, 1e-9)
            self.estimate_ = (median, spread)
        return self.estimate_

    def score_one(self, x: float, t: float) -> float:
        estimate = self._center_spread()
        if estimate is None:
            return 0.0
        median, spread = estimate
        return abs(x - median) / spread / self.threshold

    def learn_one(self, x: float, t: float) -> None:
        self.values_.append(x)
        self.estimate_ = None

    def fit(self, times: np.ndarray, values: np.ndarray) -> RollingMAD:
        """``learn_one`` on every point in order: only the last ``window`` values stay."""
        self.values_.extend(np.asarray(values, dtype=float)[-self.window :].tolist())
        self.estimate_ = None
        return self

    def expected(self, t: float) -> Band | None:
        estimate = self._center_spread()
        if estimate is None:
            return None
        median, spread = estimate
        return Band(median, median - self.threshold * spread, median + self.threshold * spread)


def _middle(ordered: list[float]) -> float:
    """The median of sorted values, bit for bit ``np.median``'s (the mean of the middle two)."""
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


class RollingMADBatch(ManyFromRows):
    """:class:`RollingMAD` for ``n`` aligned series at once (a ``VectorDetector``).

    ``x[i]`` is series ``i``'s value at ``t``; NaN means no point for that series (its score is NaN
    and nothing is learned). Each series' window is a row of a 2-D ring buffer, so scores (and the
    bands of ``expected_many``) are, bit for bit, those of one :class:`RollingMAD` per series fed
    only that series' points.

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> detector = RollingMADBatch(3, window=20, warmup=5)
    >>> for t in range(20):
    ...     detector.learn_many(10.0 + rng.normal(0, 0.1, size=3), t)
    >>> scores = detector.score_many(np.array([10.0, 25.0, np.nan]), t=20)
    >>> bool(scores[0] < 1 < scores[1]), bool(np.isnan(scores[2]))
    (True, True)
    """

    input_kind = "scalar"

    def __init__(
        self, n: int, window: int = 120, warmup: int = 10, threshold: float = 4.0, min_deviation: float = 0.0
    ) -> None:
        self.n = n
        self.window = window
        self.warmup = warmup
        self.threshold = threshold
        self.min_deviation = min_deviation
        self.values_ = Rings(n, window)
        # Each row's (median, spread) as its window stands, once asked for (``valid_``): the engine asks
        # for the band after learning a point and for the score of the next one, on the same window.
        self.median_, self.spread_ = np.zeros(n), np.zeros(n)
        self.valid_ = np.zeros(n, dtype=bool)

    def _center_spread(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Median and robust sigma of the windows of ``rows`` (all of them past warm-up)."""
        stale = rows[~self.valid_[rows]]
        if len(stale):
            data, lengths = self.values_.values[stale], self.values_.lengths()[stale]
            median = median_of_first(data, lengths)
            spread = MAD_TO_SIGMA * median_of_first(np.abs(data - median[:, None]), lengths)
            floor = max(self.min_deviation / self.threshold, 1e-9)
            self.median_[stale] = median
            self.spread_[stale] = np.maximum(np.maximum(spread, 0.01 * np.abs(median)), floor)
            self.valid_[stale] = True
        return self.median_[rows], self.spread_[rows]

    def _ready(self, rows: np.ndarray) -> np.ndarray:
        return self.values_.lengths()[rows] >= max(self.warmup, 1)

    def score_rows(self, rows: np.ndarray, x: np.ndarray, t: float) -> np.ndarray:
        """Scores of ``x[k]``, a point of series ``rows[k]`` (0 while a series warms up)."""
        scores = np.zeros(len(rows))
        ready = self._ready(rows)
        if ready.any():
            median, spread = self._center_spread(rows[ready])
            scores[ready] = np.abs(x[ready] - median) / spread / self.threshold
        return scores

    def learn_rows(self, rows: np.ndarray, x: np.ndarray, t: float) -> None:
        """Learn ``x[k]`` into series ``rows[k]`` (distinct rows)."""
        self.values_.push(rows, x)
        self.valid_[rows] = False

    def expected_rows(self, rows: np.ndarray, t: float) -> np.ndarray:
        """Bands of ``rows``: a ``(3, len(rows))`` array of expected, lower, upper (NaN: warming up)."""
        bands = np.full((3, len(rows)), np.nan)
        ready = self._ready(rows)
        if ready.any():
            median, spread = self._center_spread(rows[ready])
            bands[:, ready] = median, median - self.threshold * spread, median + self.threshold * spread
        return bands

    def put(self, k: int, detector: RollingMAD) -> None:
        """Make row ``k`` hold ``detector``'s window (whatever the row held before)."""
        self.values_.put(k, list(detector.values_))
        self.valid_[k] = False

    def take(self, k: int, detector: RollingMAD) -> RollingMAD:
        """Give ``detector`` row ``k``'s window; returns it."""
        detector.values_ = deque(self.values_.row(k), maxlen=detector.window)
        detector.estimate_ = None
        return detector
