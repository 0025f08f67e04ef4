"""Calibration: one alert rule, ``score > 1``, for every detector.

Every detector in this package already scores on the common scale (vmanomaly's: 0 neutral,
0-1 normal, >1 anomalous) *by construction*, but the construction rests on an assumption
about the data. How far each native scale can be trusted:

================== ======================================================== ==================
detector           native score (1 = ...)                                   calibrated?
================== ======================================================== ==================
rolling_mad        ``threshold`` robust sigmas from the window median       if roughly normal
seasonal_baseline  ``threshold`` robust sigmas from the time-of-day         if residuals are
                   baseline, and beyond ``min_abs`` and ``min_rel``         roughly normal
backlog            projected time to ``threshold`` equals ``horizon``       yes (a physical
                                                                            quantity, no noise
                                                                            model)
burn_rate          an SRE multi-window burn-rate rule fires                 yes, exactly: do
                                                                            not wrap
isolation_forest   forest anomaly, or largest robust abs(z) over features   yes (against its
                   and principal directions, ``margin`` times the way       training window)
                   from its training median to its training ``quantile``
log_novelty        tail probability ``alpha`` of the count (quasi-Poisson:  if counts are
                   a negative binomial with the template's own              (over-dispersed)
                   dispersion); a new template with ``min_count`` lines     Poisson
                   scores above 1
================== ======================================================== ==================

Where the assumption fails (heavy tails, discrete values, strong autocorrelation) the rate of
scores above 1 is not what ``threshold`` promises. :class:`Calibrated` then rescales a
detector's raw score by the ``quantile`` of its own recent raw scores, so that on the series'
normal behaviour about ``1 - quantile`` of the points score above 1 (a ``margin`` above 1 trades
some of those for fewer alerts).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vigil.detectors.base import AnyDetector, Band


class Calibrated:
    """Maps a detector's raw score to the common scale with the quantile of its past raw scores.

    ``score = raw / (margin * q)``, where ``q`` is the ``quantile`` of the last ``window`` raw
    scores, refreshed every ``refresh`` learned points once ``warmup`` points were seen (0 until
    then). Raw scores far above ``q`` are stored clipped at ``growth * q``, so an incident
    raises ``q`` only slowly instead of teaching the wrapper that incidents are normal.

    >>> import random
    >>> from vigil.detectors.rolling_mad import RollingMAD
    >>> rng = random.Random(7)
    >>> detector = Calibrated(RollingMAD(window=50, threshold=1.0), quantile=0.99, warmup=200)
    >>> for i in range(1000):
    ...     detector.learn_one(rng.expovariate(1.0), t=i)
    >>> round(detector.quantile_, 1)  # RollingMAD(threshold=1) on exponential noise: 1 is far too low
    6.7
    >>> detector.score_one(1.0, t=1000) < 1 < detector.score_one(20.0, t=1000)
    True
    """

    def __init__(
        self,
        detector: AnyDetector,
        quantile: float = 0.999,
        window: int = 5000,
        warmup: int = 500,
        margin: float = 1.0,
        refresh: int = 50,
        growth: float = 1.05,
        min_scale: float = 1e-9,
    ) -> None:
        self.detector = detector
        self.quantile = quantile
        self.window = window
        self.warmup = warmup
        self.margin = margin
        self.refresh = refresh
        self.growth = growth
        self.min_scale = min_scale
        self.scores_: np.ndarray | None = None
        self.n_ = 0
        self.quantile_: float | None = None

    def score_one(self, x: Any, t: float) -> float:
        raw = self.detector.score_one(x, t)
        if self.quantile_ is None:
            return 0.0
        return raw / max(self.margin * self.quantile_, self.min_scale)

    def learn_one(self, x: Any, t: float) -> None:
        raw = self.detector.score_one(x, t)
        if self.scores_ is None:
            self.scores_ = np.zeros(self.window)
        if self.quantile_ is not None:
            raw = min(raw, self.growth * max(self.quantile_, self.min_scale))
        self.scores_[self.n_ % self.window] = raw
        self.n_ += 1
        self.detector.learn_one(x, t)
        if self.n_ >= self.warmup and (self.quantile_ is None or self.n_ % self.refresh == 0):
            filled = self.scores_[: min(self.n_, self.window)]
            self.quantile_ = float(np.quantile(filled, self.quantile))

    def expected(self, t: float) -> Band | None:
        return self.detector.expected(t)
