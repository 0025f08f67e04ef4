"""NAB's reference detectors, re-implemented to reproduce its published baselines.

Each function takes one file's values in row order and returns NAB anomaly scores in [0, 1], one per
row, computed causally (row ``i`` only sees rows ``< i``), as NAB's detectors do:

- ``null``: the constant 0.5 that defines a normalised score of 0;
- ``random``: NAB's ``RandomDetector``, which seeds Python's ``random`` with 42 when it starts on a file
  and draws ``random.uniform(0, 1)`` per row, so every file gets the same sequence;
- ``windowedGaussian``: NAB's ``WindowedGaussianDetector``: ``1 - Q((x - mean) / std)`` (two-sided via
  reflection about the mean) against a window of the last up-to-6400 values, which grows a value at a
  time until full and then slides forward in steps of 100.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def null_scores(values: FloatArray) -> FloatArray:
    return np.full(len(values), 0.5)


def random_scores(values: FloatArray, seed: int = 42) -> FloatArray:
    # A private generator seeded like NAB's global one gives the same draws without touching global state.
    rng = random.Random(seed)
    return np.array([rng.uniform(0, 1) for _ in range(len(values))], dtype=np.float64)


def normal_tail(x: float, mean: float, std: float) -> float:
    """NAB's ``normalProbability``: the Q-function, P(X > x), reflected so that x < mean mirrors x > mean."""
    if x < mean:
        x = 2 * mean - x
    z = (x - mean) / std
    return 0.5 * math.erfc(z / math.sqrt(2))


def windowed_gaussian_scores(values: FloatArray, window: int = 6400, step: int = 100) -> FloatArray:
    """NAB's windowed Gaussian, with its float arithmetic.

    Mean and standard deviation are recomputed with ``numpy.mean``/``numpy.std`` over the window's
    values in the same order as NAB (after every value while the window fills, after every ``step``
    values once full) so that scores saturating at exactly 1.0 (the ties NAB's threshold lands on)
    come out identical.
    """
    scores = np.zeros(len(values), dtype=np.float64)
    data: list[float] = []
    buffer: list[float] = []
    prefix = np.asarray(values, dtype=np.float64)
    mean, std = 0.0, 1.0

    def update(current: FloatArray) -> tuple[float, float]:
        m, s = float(np.mean(current)), float(np.std(current))
        return m, (s if s != 0.0 else 0.000001)

    for i, x in enumerate(prefix.tolist()):
        if data:
            scores[i] = 1 - normal_tail(x, mean, std)
        if len(data) < window:
            data.append(x)
            # While filling, the window is exactly the first i + 1 values: a slice avoids a list copy.
            mean, std = update(prefix[: i + 1])
        else:
            buffer.append(x)
            if len(buffer) == step:
                data = data[step:] + buffer
                buffer = []
                mean, std = update(np.array(data, dtype=np.float64))
    return scores


BASELINES: dict[str, Callable[[FloatArray], FloatArray]] = {
    "null": null_scores,
    "random": random_scores,
    "windowedGaussian": windowed_gaussian_scores,
}
