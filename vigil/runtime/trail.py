"""A series' recent points with what its detector made of them, in one compact ring.

Rows are ``(t, observed, score, expected, lower, upper)``, NaN where unknown: what incident summaries
and plots draw. One float64 array per series (48 bytes a point) instead of a deque of tuples (about
200 bytes a point): at 100k series the difference is gigabytes.
"""

from __future__ import annotations

import math

import numpy as np

COLUMNS = ("t", "observed", "score", "expected", "lower", "upper")


class Trail:
    """The last ``size`` rows appended, oldest first when read.

    >>> trail = Trail(size=2)
    >>> for t in (1.0, 2.0, 3.0):
    ...     trail.append(t, 10 * t)
    >>> len(trail), trail.array()[:, 0].tolist(), trail.last()[:2]
    (2, [2.0, 3.0], (3.0, 30.0))
    """

    __slots__ = ("count", "rows", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.rows = np.full((size, len(COLUMNS)), math.nan)
        self.count = 0  # rows ever appended: count % size is the next slot

    def append(
        self,
        t: float,
        observed: float,
        score: float = math.nan,
        expected: float = math.nan,
        lower: float = math.nan,
        upper: float = math.nan,
    ) -> None:
        self.rows[self.count % self.size] = (t, observed, score, expected, lower, upper)
        self.count += 1

    def __len__(self) -> int:
        return min(self.count, self.size)

    def last(self) -> tuple[float, ...] | None:
        if not self.count:
            return None
        return tuple(float(v) for v in self.rows[(self.count - 1) % self.size])

    def array(self) -> np.ndarray:
        """The rows, oldest first (a copy)."""
        if self.count <= self.size:
            return self.rows[: self.count].copy()
        start = self.count % self.size
        return np.concatenate([self.rows[start:], self.rows[:start]])
