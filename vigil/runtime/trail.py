"""Series' recent points with what their detector made of them, in compact rings.

Rows are ``(t, observed, score, expected, lower, upper)``, NaN where unknown: what incident summaries
and plots draw. A ``Trails`` block keeps many series' rings in one float64 array (48 bytes a point),
so a batch of series appends a round's points in one numpy step; a ``Trail`` is one series' ring,
alone in its own block or a row of a shared one. A deque of tuples would take about 200 bytes a point:
at 100k series the difference is gigabytes.
"""

from __future__ import annotations

import math

import numpy as np

COLUMNS = ("t", "observed", "score", "expected", "lower", "upper")


class Trails:
    """``n`` rings of the last ``size`` rows each."""

    __slots__ = ("count", "rows", "size")

    def __init__(self, n: int, size: int) -> None:
        self.size = size
        self.rows = np.full((n, size, len(COLUMNS)), math.nan)
        self.count = np.zeros(n, dtype=np.int64)  # rows ever appended: count % size is the next slot

    def append_many(self, rings: np.ndarray, columns: np.ndarray) -> None:
        """Append ``columns[:, k]`` (one value per column) to ring ``rings[k]`` (distinct rings)."""
        self.rows[rings, self.count[rings] % self.size] = columns.T
        self.count[rings] += 1

    def last_observed(self, rings: np.ndarray) -> np.ndarray:
        """Each ring's latest observed value (NaN for an empty ring)."""
        latest = self.rows[rings, (self.count[rings] - 1) % self.size, 1]
        return np.where(self.count[rings] > 0, latest, math.nan)

    def clear(self, ring: int) -> None:
        self.rows[ring] = math.nan
        self.count[ring] = 0


class Trail:
    """One series' ring: the last ``size`` rows appended, oldest first when read.

    >>> trail = Trail(size=2)
    >>> for t in (1.0, 2.0, 3.0):
    ...     trail.append(t, 10 * t)
    >>> len(trail), trail.array()[:, 0].tolist(), trail.last()[:2]
    (2, [2.0, 3.0], (3.0, 30.0))
    """

    __slots__ = ("block", "ring")

    def __init__(self, size: int, block: Trails | None = None, ring: int = 0) -> None:
        self.block = block if block is not None else Trails(1, size)
        self.ring = ring

    @property
    def size(self) -> int:
        return self.block.size

    @property
    def count(self) -> int:
        return int(self.block.count[self.ring])

    def append(
        self,
        t: float,
        observed: float,
        score: float = math.nan,
        expected: float = math.nan,
        lower: float = math.nan,
        upper: float = math.nan,
    ) -> None:
        block, ring = self.block, self.ring
        block.rows[ring, block.count[ring] % block.size] = (t, observed, score, expected, lower, upper)
        block.count[ring] += 1

    def __len__(self) -> int:
        return min(self.count, self.size)

    def last(self) -> tuple[float, ...] | None:
        count = self.count
        if not count:
            return None
        return tuple(float(v) for v in self.block.rows[self.ring, (count - 1) % self.size])

    def array(self) -> np.ndarray:
        """The rows, oldest first (a copy)."""
        rows, count, size = self.block.rows[self.ring], self.count, self.size
        if count <= size:
            return rows[:count].copy()
        start = count % size
        return np.concatenate([rows[start:], rows[:start]])

    def move_to(self, block: Trails, ring: int) -> None:
        """Carry this trail's rows into ``block``'s ring ``ring`` and live there from now on."""
        rows = self.array()
        block.clear(ring)
        block.rows[ring, : len(rows)] = rows
        block.count[ring] = len(rows)
        self.block, self.ring = block, ring
