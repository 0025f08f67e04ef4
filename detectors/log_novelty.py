"""New and surging log templates: each template's line count against its own recent rate.

A deploy that starts logging ``connection refused to payments``, a template that usually shows
twice a minute showing two hundred times, ``order placed`` going silent: each is one template's
count being improbable under its own history. Every template keeps an EWMA of its lines per
step and of its dispersion; the step's count is judged by its tail probability under a
quasi-Poisson model (a negative binomial with the same mean and variance ``dispersion * mean``,
so bursty templates are judged by their own burstiness).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import special, stats

from vigil.detectors.base import Band

TINY_P = 1e-300  # floor of the tail probability: keeps the score finite
DISPERSION_MEMORY = 3.0  # the dispersion's half-life, in half-lives of the mean


@dataclass(frozen=True)
class Finding:
    template: str
    kind: str  # "new", "spike" or "drop"
    count: float
    expected: float
    score: float


def upper_tail(count: np.ndarray, mean: np.ndarray, dispersion: np.ndarray) -> np.ndarray:
    """P(X >= count) for a mean-``mean``, variance ``dispersion * mean`` count (1 for count <= 0).

    Arrays of one shape; ``dispersion`` at least 1 (1 is Poisson).
    """
    p = np.ones(count.shape)
    positive = count > 0
    poisson = positive & (dispersion <= 1.0)
    p[poisson] = special.gammainc(count[poisson], mean[poisson])
    wide = positive & (dispersion > 1.0)
    size = mean[wide] / (dispersion[wide] - 1.0)  # negative binomial (n, p = 1 / dispersion)
    p[wide] = special.betainc(count[wide], size, 1.0 - 1.0 / dispersion[wide])
    return p


def lower_tail(count: np.ndarray, mean: np.ndarray, dispersion: np.ndarray) -> np.ndarray:
    """P(X <= count) for the same model."""
    p = np.empty(count.shape)
    poisson = dispersion <= 1.0
    p[poisson] = special.gammaincc(count[poisson] + 1.0, mean[poisson])
    wide = ~poisson
    size = mean[wide] / (dispersion[wide] - 1.0)
    p[wide] = special.betainc(size, count[wide] + 1.0, 1.0 / dispersion[wide])
    return p


class LogNovelty:
    """Scores a step's log template counts by the least probable template.

    Each template's expected lines per step is an EWMA (``half_life`` steps) with a dispersion
    estimate: the EWMA of ``(count - mean)^2 / mean`` over three half-lives (a variance needs
    more data than a mean), starting from 1 (Poisson) worth ``half_life`` steps so that one
    wild step does not set it, and used at least 1. A count's tail probability
    ``p`` (upper for ``direction="up"``, lower for ``"down"``, twice the smaller for ``"both"``)
    scores ``log(p) / log(alpha)``: ``p = alpha`` scores exactly 1. A template never seen (or
    evicted) is judged against the smallest rate ``floor_rate_``, chosen so that it scores above
    1 from ``min_count`` lines in a step; every rate is at least that floor, so a long-silent
    template coming back is as new as a new one. The step's score is the largest. Counts that
    score above 1 are learned clipped to the most probable unusual count, so an incident does
    not become the baseline in a few steps. At most ``max_templates`` are tracked; the least
    recently seen is forgotten first. The first ``warmup`` steps are learned and score 0.

    >>> rng = np.random.default_rng(2)
    >>> detector = LogNovelty(warmup=20)
    >>> for step in range(200):
    ...     x = {"GET /products <*>": rng.poisson(40), "cache miss <*>": rng.poisson(3)}
    ...     detector.learn_one(x, t=step)
    >>> detector.score_one({"GET /products <*>": 42, "cache miss <*>": 4}, t=200) < 1
    True
    >>> detector.score_one({"GET /products <*>": 41, "cache miss <*>": 30}, t=200) > 1
    True
    >>> [(f.template, f.kind) for f in detector.explain({"GET /products <*>": 5, "payment refused <*>": 3})]
    [('GET /products <*>', 'drop'), ('payment refused <*>', 'new')]
    """

    input_kind: ClassVar[str] = "counts"

    def __init__(
        self,
        alpha: float = 1e-4,
        min_count: float = 3.0,
        half_life: float = 60.0,
        warmup: int = 30,
        max_templates: int = 1000,
        direction: str = "both",
    ) -> None:
        if direction not in ("up", "down", "both"):
            raise ValueError(f"direction must be 'up', 'down' or 'both', got {direction!r}")
        if not 0.0 < alpha < 1.0 or min_count < 1:
            raise ValueError("alpha must be in (0, 1) and min_count at least 1")
        self.alpha = alpha
        self.min_count = min_count
        self.half_life = half_life
        self.warmup = warmup
        self.max_templates = max_templates
        self.direction = direction
        # One tail's level: "both" splits alpha between the two tails.
        self.level_ = alpha / 2 if direction == "both" else alpha
        # The rate under which min_count - 1/2 lines (the continuous tail) have probability level_.
        self.floor_rate_ = float(special.gammaincinv(min_count - 0.5, self.level_))
        self.smoothing_ = 1.0 - 0.5 ** (1.0 / half_life)
        self.dispersion_smoothing_ = 1.0 - 0.5 ** (1.0 / (DISPERSION_MEMORY * half_life))
        self.prior_weight_ = 1.0 - (1.0 - self.dispersion_smoothing_) ** half_life
        self.slot_: dict[str, int] = {}  # template -> index in the arrays below
        self.template_: list[str] = []  # index -> template
        # Arrays sized for max_templates up front; the first len(template_) entries are in use.
        self.mean_ = np.zeros(max_templates)
        # EWMA of (count - mean)^2 / mean, not normalized, and the weight it has gathered.
        self.variance_ratio_ = np.zeros(max_templates)
        self.variance_weight_ = np.zeros(max_templates)
        self.last_seen_ = np.zeros(max_templates, dtype=np.int64)
        self.n_ = 0

    def _dispersion(self) -> np.ndarray:
        """Each template's variance over mean; 1 (Poisson) for one not learned from yet."""
        n = len(self.template_)
        ratio, weight = self.variance_ratio_[:n], self.variance_weight_[:n]
        learned = weight > 0
        return np.where(learned, ratio / np.where(learned, weight, 1.0), 1.0)

    def _observed(self, x: Mapping[str, float]) -> tuple[np.ndarray, list[str], np.ndarray]:
        """(counts of the tracked templates, new templates, their counts); bad counts are 0."""
        tracked = np.zeros(len(self.template_))
        new, new_counts = [], []
        for template, value in x.items():
            count = float(value)
            if not (math.isfinite(count) and count > 0):
                continue
            slot = self.slot_.get(template)
            if slot is None:
                new.append(template)
                new_counts.append(count)
            else:
                tracked[slot] += count
        return tracked, new, np.array(new_counts)

    def _p(self, count: np.ndarray, mean: np.ndarray, dispersion: np.ndarray) -> np.ndarray:
        if self.direction == "up":
            return upper_tail(count, mean, dispersion)
        if self.direction == "down":
            return lower_tail(count, mean, dispersion)
        both = np.minimum(upper_tail(count, mean, dispersion), lower_tail(count, mean, dispersion))
        return np.minimum(2.0 * both, 1.0)

    def _scores(self, count: np.ndarray, mean: np.ndarray, dispersion: np.ndarray) -> np.ndarray:
        if not len(count):
            return np.zeros(0)
        p = self._p(count, np.maximum(mean, self.floor_rate_), np.maximum(dispersion, 1.0))
        return np.log(np.maximum(p, TINY_P)) / math.log(self.alpha)

    def _all_scores(self, x: Mapping[str, float]) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
        tracked, new, new_counts = self._observed(x)
        tracked_scores = self._scores(tracked, self.mean_[: len(tracked)], self._dispersion())
        return tracked, new, new_counts, tracked_scores

    def score_one(self, x: Mapping[str, float], t: float) -> float:
        if self.n_ < self.warmup:
            return 0.0
        _, _, new_counts, tracked_scores = self._all_scores(x)
        new_scores = self._scores(new_counts, np.zeros(len(new_counts)), np.ones(len(new_counts)))
        return float(max(tracked_scores.max(initial=0.0), new_scores.max(initial=0.0)))

    def explain(self, x: Mapping[str, float], min_score: float = 1.0) -> list[Finding]:
        """The templates scoring at least ``min_score`` in ``x``, the highest first."""
        if self.n_ < self.warmup:
            return []
        tracked, new, new_counts, tracked_scores = self._all_scores(x)
        new_scores = self._scores(new_counts, np.zeros(len(new_counts)), np.ones(len(new_counts)))
        findings = [
            Finding(template, "new", float(count), 0.0, float(score))
            for template, count, score in zip(new, new_counts, new_scores, strict=True)
        ]
        for slot in np.flatnonzero(tracked_scores >= min_score):
            kind = "spike" if tracked[slot] > self.mean_[slot] else "drop"
            findings.append(
                Finding(
                    self.template_[slot],
                    kind,
                    float(tracked[slot]),
                    float(self.mean_[slot]),
                    float(tracked_scores[slot]),
                )
            )
        findings = [f for f in findings if f.score >= min_score]
        return sorted(findings, key=lambda f: (-f.score, f.template))

    def _clipped(self, count: np.ndarray, mean: np.ndarray, dispersion: np.ndarray) -> np.ndarray:
        """The counts that scored above 1 pulled back to the edge of the usual range."""
        mean, dispersion = np.maximum(mean, self.floor_rate_), np.maximum(dispersion, 1.0)
        high = count > mean
        # scipy's frozen distributions are slow, but only the few unusual counts get here.
        poisson = dispersion <= 1.0
        size = np.where(poisson, 1.0, mean / np.where(poisson, 1.0, dispersion - 1.0))
        quantile = np.where(high, 1.0 - self.level_, self.level_)
        negbin = stats.nbinom.ppf(quantile, size, 1.0 / dispersion)
        edge = np.where(poisson, stats.poisson.ppf(quantile, mean), negbin)
        return np.where(high, np.minimum(count, edge), np.maximum(count, edge))

    def learn_one(self, x: Mapping[str, float], t: float) -> None:
        tracked, new, new_counts = self._observed(x)
        if self.n_ >= self.warmup:
            dispersion = self._dispersion()
            mean = self.mean_[: len(tracked)]
            unusual = self._scores(tracked, mean, dispersion) > 1.0
            if unusual.any():
                tracked[unusual] = self._clipped(tracked[unusual], mean[unusual], dispersion[unusual])
            new_unusual = self._scores(new_counts, np.zeros(len(new_counts)), np.ones(len(new_counts))) > 1.0
            if new_unusual.any():
                new_counts = new_counts.copy()
                new_counts[new_unusual] = self._clipped(
                    new_counts[new_unusual], np.zeros(new_unusual.sum()), np.ones(new_unusual.sum())
                )
        self.n_ += 1
        n = len(tracked)
        mean, ratio, weight = self.mean_[:n], self.variance_ratio_[:n], self.variance_weight_[:n]  # views
        residual = tracked - mean
        variance_ratio = residual**2 / np.maximum(mean, self.floor_rate_)
        mean += self.smoothing_ * residual
        ratio += self.dispersion_smoothing_ * (variance_ratio - ratio)
        weight += self.dispersion_smoothing_ * (1.0 - weight)
        self.last_seen_[:n][tracked > 0] = self.n_
        for template, count in zip(new, new_counts, strict=True):
            self._track(template, float(count))

    def _track(self, template: str, count: float) -> None:
        if len(self.template_) < self.max_templates:
            slot = len(self.template_)
            self.template_.append(template)
        else:  # forget the template seen least recently
            slot = int(np.argmin(self.last_seen_))
            del self.slot_[self.template_[slot]]
            self.template_[slot] = template
        self.slot_[template] = slot
        self.mean_[slot], self.last_seen_[slot] = count, self.n_
        # Start from Poisson, worth half_life steps: one wild first step does not set the dispersion.
        self.variance_ratio_[slot] = self.variance_weight_[slot] = self.prior_weight_

    def expected(self, t: float) -> Band | None:
        """The step's total lines: the sum of the templates' rates, with their quasi-Poisson spread."""
        if self.n_ < self.warmup:
            return None
        mean = self.mean_[: len(self.template_)]
        total = float(mean.sum())
        spread = math.sqrt(float((np.maximum(self._dispersion(), 1.0) * mean).sum()))
        z = float(stats.norm.isf(self.level_))
        return Band(total, max(total - z * spread, 0.0), total + z * spread)
