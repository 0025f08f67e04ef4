"""Ring buffers and row medians for many series at once: the state behind the batch detectors.

The batch (``VectorDetector``) versions of the window-based detectors keep one row per series in a
2-D array instead of one ``deque`` per series. Their medians must equal the scalar detectors' to the
last bit, so every median here is ``np.median`` of exactly the values the scalar version would see
(the median of a set does not depend on the order its values are stored in).
"""

from __future__ import annotations

import numpy as np


class Rings:
    """``n`` ring buffers of the last ``size`` values, one per series, each filled at its own pace.

    Until row ``i`` is full its values sit in its first slots in arrival order; after that the
    next value overwrites slot ``count[i] % size``, the oldest one, as a full ``deque`` drops it.

    >>> rings = Rings(n=2, size=3)
    >>> for value in (1.0, 2.0, 3.0, 4.0):
    ...     rings.push(np.array([0]), np.array([value]))
    >>> rings.push(np.array([1]), np.array([7.0]))
    >>> rings.lengths().tolist(), rings.chronological(np.array([0, 1]))[:, :2].tolist()
    ([3, 1], [[2.0, 3.0], [7.0, 0.0]])
    >>> rings.medians(np.array([0, 1])).tolist()
    [3.0, 7.0]
    """

    def __init__(self, n: int, size: int) -> None:
        self.size = size
        self.values = np.zeros((n, size))
        self.count = np.zeros(n, dtype=np.int64)  # values ever pushed, so count % size is the next slot

    def lengths(self) -> np.ndarray:
        return np.minimum(self.count, self.size)

    def push(self, rows: np.ndarray, x: np.ndarray) -> None:
        """Append ``x[k]`` to ring ``rows[k]`` (``rows``: distinct row indices)."""
        self.values[rows, self.count[rows] % self.size] = x
        self.count[rows] += 1

    def put(self, row: int, values: list[float]) -> None:
        """Make ring ``row`` hold ``values`` (oldest first, at most ``size``), as if pushed one by one."""
        self.values[row] = 0.0
        self.values[row, : len(values)] = values
        self.count[row] = len(values)

    def row(self, row: int) -> list[float]:
        """Ring ``row``'s values, oldest first."""
        return self.chronological(np.array([row]))[0, : self.lengths()[row]].tolist()

    def chronological(self, rows: np.ndarray) -> np.ndarray:
        """The rows' values oldest first (a row that is not full yet has them in its first slots)."""
        count = self.count[rows]
        start = np.where(count >= self.size, count % self.size, 0)
        index = (start[:, None] + np.arange(self.size)) % self.size
        return np.take_along_axis(self.values[rows], index, axis=1)

    def medians(self, rows: np.ndarray) -> np.ndarray:
        """Median of each of the rows' values (NaN for an empty row)."""
        return median_of_first(self.values[rows], self.lengths()[rows])


def median_of_first(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``np.median(values[i, :lengths[i]])`` for every row ``i``; NaN where the length is 0.

    Rows are grouped by length, so the usual case (every row equally full) is one sort.
    """
    distinct = np.unique(lengths)
    if len(distinct) == 1 and distinct[0] > 0:
        return sorted_median(np.sort(values[:, : distinct[0]], axis=1), lengths)
    medians = np.full(len(values), np.nan)
    for length in distinct[distinct > 0]:
        rows = lengths == length
        medians[rows] = sorted_median(np.sort(values[rows, :length], axis=1), lengths[rows])
    return medians


def median_ignoring_nan(values: np.ndarray) -> np.ndarray:
    """Median of each row's non-NaN values (NaN for a row without any); equal to ``np.median`` of them."""
    counts = values.shape[1] - np.isnan(values).sum(axis=1)
    return sorted_median(np.sort(values, axis=1), counts)  # NaN sorts last


def sorted_median(ordered: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median of the first ``counts[i]`` values of each sorted row (NaN where the count is 0).

    The middle value, or the two middle ones averaged as ``(a + b) / 2``: exactly what ``np.median``
    computes. numpy sorts rows with SIMD, several times faster than the partition ``np.median`` uses.
    """
    if ordered.shape[1] == 0:
        return np.full(len(ordered), np.nan)
    low = np.take_along_axis(ordered, np.maximum((counts - 1) // 2, 0)[:, None], axis=1)[:, 0]
    high = np.take_along_axis(ordered, np.minimum(counts // 2, ordered.shape[1] - 1)[:, None], axis=1)[:, 0]
    return np.where(counts > 0, (low + high) / 2, np.nan)
