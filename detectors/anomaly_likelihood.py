"""Anomaly likelihood: how unusual is a raw anomaly score, judged against that score's own history.

Numenta's HTM detector popularised the idea: a raw score (any "how surprising is this point"
number) is not comparable across series, but its *recent average* compared with the long-run
distribution of the same raw score is. The short average turns a burst of moderately high raw
scores (a change in behaviour) into a strong signal, while a series whose raw score is always
noisy learns that noise is its normal. The result is a Gaussian tail probability, so scores from
unrelated views and series share one scale.
"""

from __future__ import annotations

import math

import numpy as np

SQRT2 = math.sqrt(2.0)


class RawScoreLikelihood:
    """Tail probability of the last ``short`` raw scores' mean against the last ``history`` raw scores.

    The history's mean and standard deviation are re-estimated every ``refresh`` scores once
    ``warmup`` scores were seen (until then the tail is 1: nothing is unusual). A raw score far
    above the history is stored clipped at ``clip`` standard deviations, so one incident does not
    teach the history that incidents are normal. Memory is fixed: two ring buffers.

    >>> import random
    >>> rng = random.Random(3)
    >>> likelihood = RawScoreLikelihood(short=3, history=500, warmup=100)
    >>> for _ in range(500):
    ...     likelihood.learn(rng.random())
    >>> likelihood.tail(0.5) > 0.05, likelihood.tail(5.0) < 1e-6
    (True, True)
    """

    def __init__(
        self,
        short: int = 5,
        history: int = 2000,
        warmup: int = 150,
        refresh: int = 20,
        clip: float = 6.0,
        min_std: float = 1e-6,
    ) -> None:
        self.short = short
        self.history = history
        self.warmup = warmup
        self.refresh = refresh
        self.clip = clip
        self.min_std = min_std
        self.recent_ = np.zeros(short)
        self.past_ = np.zeros(history)
        self.n_ = 0
        self.mean_: float | None = None
        self.std_ = 1.0

    def average(self, raw: float) -> float:
        """Mean of the last ``short - 1`` learned raw scores and ``raw``."""
        if self.short == 1:
            return raw
        count = min(self.n_, self.short - 1)
        if count == 0:
            return raw
        # recent_ holds the last short raw scores; drop the oldest of them.
        last = [self.recent_[(self.n_ - 1 - k) % self.short] for k in range(count)]
        return (raw + sum(last)) / (count + 1)

    def z(self, raw: float) -> float:
        """Standardised short average; 0 while warming up."""
        if self.mean_ is None:
            return 0.0
        return (self.average(raw) - self.mean_) / self.std_

    def tail(self, raw: float) -> float:
        """P(a normal short average is at least this high): Gaussian upper tail of ``z``."""
        return 0.5 * math.erfc(self.z(raw) / SQRT2)

    def learn(self, raw: float) -> None:
        self.recent_[self.n_ % self.short] = raw
        if self.mean_ is not None:
            raw = min(raw, self.mean_ + self.clip * self.std_)
        self.past_[self.n_ % self.history] = raw
        self.n_ += 1
        if self.n_ >= self.warmup and (self.mean_ is None or self.n_ % self.refresh == 0):
            filled = self.past_[: min(self.n_, self.history)]
            self.mean_ = float(filled.mean())
            self.std_ = max(float(filled.std()), self.min_std)
