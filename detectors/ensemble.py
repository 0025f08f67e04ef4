"""vigil's default detector for a metric without a model of its own: several cheap views, one scale.

Each point is looked at in five ways ("views"), each giving a raw "how surprising" number:

- ``level``: distance of the value from the median of the last ``window`` values, in robust
  standard deviations (level shifts, values out of the usual range);
- ``change``: the same for the first difference (sudden jumps on a trending or drifting series);
- ``context``: distance from the last ``embed`` values (a short shape) to its nearest neighbour
  among the shapes of the last ``window`` points (new patterns whose values are each ordinary);
- ``distribution``: relative entropy of the last ``recent`` values' histogram against the
  window's, over ``bins`` equal-frequency bins (the mix of values changed: noise, plateaus, drift);
- ``spike``: distance of the value from the median of the last ``local`` values, in units of
  point-to-point noise (a lone spike on a series whose daily cycle hides it from ``level``).

A second, coarser look: the means of each ``coarse_scale`` consecutive points feed an inner
ensemble of ``coarse_views`` (over ``coarse_window`` means); its score counts at every
``coarse_scale``-th point. A slow drift or a change in a noisy series stands out more clearly in
the means, where the point noise is averaged away, than in any view of the raw points.

No raw number is comparable across series, so each view's raw score goes through a
:class:`RawScoreLikelihood` (Numenta's "anomaly likelihood"): its recent average against its own
long-run history gives a Gaussian ``z``. The most surprised view decides: the score is
``-log10(tail) / decades`` for the largest ``z`` of the first four views, so ``score > 1`` means
a tail below ``10**-decades`` (measured on Gaussian noise: about one alarm per 20k points);
``spike`` judges single points, noisier evidence, and needs a tail below ``10**-spike_decades``;
it counts only when ``context`` is also surprised (``z >= spike_gate``): a spike that recurs at
the same place of a daily cycle is a shape the window has seen, not an anomaly.
After an alarm, scores are capped at ``hold_cap`` (below 1) for ``hold`` points: one incident is
one alarm, not a stream of them, while the score still shows how unusual each point is.

What is learned: the median of a window is robust to a few anomalous values, and the likelihood
history stores raw scores clipped, so an incident neither moves the band nor teaches the views
that incidents are normal. The shapes and histograms do learn whatever happened, on purpose: a
pattern seen once is less novel the second time, and a lasting change becomes the new normal
within ``window`` points instead of alarming forever.

Defaults were chosen on NAB (``bench/nab.py``), one set for its whole corpus.

>>> import random
>>> rng = random.Random(1)
>>> detector = Ensemble(seed=1)
>>> scores = []
>>> for t in range(1500):
...     x = 10.0 + rng.gauss(0.0, 1.0) + (25.0 if t == 1200 else 0.0)
...     scores.append(detector.score_one(x, t))
...     detector.learn_one(x, t)
>>> max(scores[:1200]) < 1 < scores[1200]
True
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import log_ndtr

from vigil.detectors.anomaly_likelihood import RawScoreLikelihood
from vigil.detectors.base import Band

MAD_TO_SIGMA = 1.4826
LN10 = math.log(10.0)
VIEWS = ("level", "change", "context", "distribution", "spike")


class Ensemble:
    """Five views of a scalar stream, each judged against its own history; the most surprised decides."""

    input_kind = "scalar"

    def __init__(
        self,
        window: int = 1000,
        embed: int = 8,
        recent: int = 48,
        bins: int = 8,
        local: int = 16,
        views: tuple[str, ...] = VIEWS,
        short: int = 10,
        context_short: int = 1,
        history: int = 2000,
        warmup: int = 30,
        likelihood_warmup: int = 150,
        refresh: int = 5,
        decades: float = 4.0,
        spike_decades: float = 8.0,
        hold: int = 100,
        hold_cap: float = 0.99,
        band: float = 4.0,
        coarse_scale: int = 4,
        coarse_views: tuple[str, ...] = ("context", "distribution"),
        coarse_window: int = 1000,
        spike_gate: float = 2.5,
        seed: int = 0,
    ) -> None:
        unknown = set(views) - set(VIEWS)
        if unknown or not views:
            raise ValueError(f"views must be a non-empty subset of {VIEWS}, got {views}")
        self.window = window
        self.embed = embed
        self.recent = recent
        self.bins = bins
        self.local = local
        self.views = tuple(views)
        self.short = short
        self.context_short = context_short
        self.history = history
        self.warmup = warmup
        self.likelihood_warmup = likelihood_warmup
        self.refresh = refresh
        self.decades = decades
        self.spike_decades = spike_decades
        self.hold = hold
        self.hold_cap = hold_cap
        self.band = band
        self.coarse_scale = coarse_scale  # 0 or 1: no coarse look
        self.coarse_views = tuple(coarse_views)
        self.coarse_window = coarse_window
        self.spike_gate = spike_gate
        self.seed = seed  # nothing is random; kept so that every detector takes a seed
        # Fixed-size ring buffers: memory does not grow with the stream.
        self.values_ = np.zeros(window)
        self.diffs_ = np.zeros(window)
        self.shapes_ = np.zeros((window, embed))
        self.n_ = 0
        self.last_: float | None = None
        self.level_ = (0.0, 1.0)  # (median, spread) of the window's values
        self.change_ = (0.0, 1.0)  # (median, spread) of its first differences
        self.edges_ = np.zeros(0)  # inner edges of equal-frequency bins of the window's values
        self.bin_share_ = np.ones(bins) / bins
        # Level and change are noisy point by point: a longer average; context and distribution
        # are already about many points (a shape, a histogram); a spike is one point.
        shorts = {"level": short, "change": short, "context": context_short, "distribution": context_short}
        self.likelihoods_ = {
            view: RawScoreLikelihood(
                short=shorts.get(view, 1),
                history=history,
                warmup=likelihood_warmup,
                min_std=0.1,
            )
            for view in self.views
        }
        # The coarse look is an ensemble of its own on the means; it never holds (this one does).
        self.coarse_: Ensemble | None = None
        if coarse_scale > 1:
            self.coarse_ = Ensemble(
                window=coarse_window,
                views=self.coarse_views,
                likelihood_warmup=100,
                hold=0,
                coarse_scale=0,
            )
        self.coarse_sum_ = 0.0  # sum of the values since the last mean was fed to coarse_
        self.coarse_count_ = 0
        self.since_alarm_ = hold  # points since the last alarm (>= hold: not holding)
        # score_one's result for (x, t), so that learn_one of the same point does not recompute it.
        # A memo, not state: cleared by learn_one and left out of pickles (see __getstate__).
        self.cache_: tuple[float, float, dict[str, float], float] | None = None

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "cache_": None}

    # --- the views ----------------------------------------------------------------------------

    def _shape(self, x: float) -> np.ndarray:
        """The last ``embed`` values ending with ``x``, as a row."""
        k = self.embed - 1
        idx = (self.n_ - k + np.arange(k)) % self.window
        return np.append(self.values_[idx], x)

    def _raw(self, x: float) -> dict[str, float]:
        """Each view's raw score for ``x``, log1p-compressed."""
        median, spread = self.level_
        raw: dict[str, float] = {}
        if "level" in self.views:
            raw["level"] = abs(x - median) / spread
        if "change" in self.views:
            change_median, change_spread = self.change_
            diff = 0.0 if self.last_ is None else x - self.last_
            raw["change"] = abs(diff - change_median) / change_spread
        if "context" in self.views:
            raw["context"] = self._nearest_shape(x) / spread
        if "distribution" in self.views:
            raw["distribution"] = self._divergence(x)
        if "spike" in self.views:
            raw["spike"] = self._local_residual(x)
        # log1p tames heavy tails so that the likelihood's Gaussian fits the raw history better.
        return {view: math.log1p(value) for view, value in raw.items()}

    def _nearest_shape(self, x: float) -> float:
        """RMS distance from the shape ending with ``x`` to the closest earlier one in the window."""
        # Shapes that overlap the current one are trivially close: compare with older ones only.
        usable = min(self.n_, self.window) - self.embed
        if usable <= 0:
            return 0.0
        rows = (self.n_ - self.embed - np.arange(usable)) % self.window
        nearest = float(np.min(np.sum((self.shapes_[rows] - self._shape(x)) ** 2, axis=1)))
        return math.sqrt(nearest / self.embed)

    def _local_residual(self, x: float) -> float:
        """Distance of ``x`` from the median of the last ``local`` values, in noise units."""
        count = min(self.n_, self.local)
        idx = (self.n_ - count + np.arange(count)) % self.window
        # Point-to-point noise is the differences' spread over sqrt(2); a daily cycle or a trend,
        # which inflate the level's spread, do not enter it.
        return abs(x - float(np.median(self.values_[idx]))) / (self.change_[1] / math.sqrt(2.0))

    def _divergence(self, x: float) -> float:
        """Relative entropy of the last ``recent`` values' histogram against the window's."""
        count = min(self.n_, self.recent - 1)
        idx = (self.n_ - count + np.arange(count)) % self.window
        recent = np.append(self.values_[idx], x)
        share = np.bincount(np.searchsorted(self.edges_, recent), minlength=self.bins) / len(recent)
        seen = share > 0
        return float(np.sum(share[seen] * np.log(share[seen] / self.bin_share_[seen])))

    def _evaluate(self, x: float, t: float) -> tuple[dict[str, float], float]:
        if self.cache_ is not None and self.cache_[0] == x and self.cache_[1] == t:
            return self.cache_[2], self.cache_[3]
        if self.n_ < self.warmup:
            raw: dict[str, float] = {}
            score = 0.0
        else:
            raw = self._raw(x)
            z = {view: self.likelihoods_[view].z(value) for view, value in raw.items()}
            spike = z.pop("spike", None)
            score = _decades(max(z.values())) / self.decades if z else 0.0
            # Without a context view there is nothing to gate the spike with.
            if spike is not None and z.get("context", math.inf) >= self.spike_gate:
                # One point, judged alone, is noisier evidence than a sustained change: a stricter bar.
                score = max(score, _decades(spike) / self.spike_decades)
            if self.coarse_ is not None and self.coarse_count_ + 1 == self.coarse_scale:
                mean = (self.coarse_sum_ + x) / self.coarse_scale
                score = max(score, self.coarse_.score_one(mean, t))
            if self.since_alarm_ < self.hold:
                # Already alarmed: still ranked (a high score stays high), but no new alarm.
                score = min(score, self.hold_cap)
        self.cache_ = (x, t, raw, score)
        return raw, score

    # --- the contract -------------------------------------------------------------------------

    def score_one(self, x: float, t: float) -> float:
        return self._evaluate(x, t)[1]

    def learn_one(self, x: float, t: float) -> None:
        raw, score = self._evaluate(x, t)
        for view, value in raw.items():
            self.likelihoods_[view].learn(value)
        self.since_alarm_ = 0 if score > 1.0 else self.since_alarm_ + 1
        slot = self.n_ % self.window
        if self.n_ >= self.embed - 1:
            self.shapes_[slot] = self._shape(x)
        self.values_[slot] = x
        self.diffs_[slot] = 0.0 if self.last_ is None else x - self.last_
        self.last_ = x
        self.n_ += 1
        self.cache_ = None
        if self.coarse_ is not None:
            self.coarse_sum_ += x
            self.coarse_count_ += 1
            if self.coarse_count_ == self.coarse_scale:
                self.coarse_.learn_one(self.coarse_sum_ / self.coarse_scale, t)
                self.coarse_sum_ = 0.0
                self.coarse_count_ = 0
        if self.n_ >= self.warmup and (self.n_ == self.warmup or self.n_ % self.refresh == 0):
            self.level_ = _median_spread(self.values_[: min(self.n_, self.window)])
            self.change_ = _median_spread(self.diffs_[: min(self.n_, self.window)])
            if "distribution" in self.views:
                self._rebin(self.values_[: min(self.n_, self.window)])

    def _rebin(self, data: np.ndarray) -> None:
        # Equal-frequency bins: every bin matters, whatever the value distribution's shape.
        self.edges_ = np.unique(np.quantile(data, np.linspace(0, 1, self.bins + 1)[1:-1]))
        counts = np.bincount(np.searchsorted(self.edges_, data), minlength=self.bins)
        # A small floor keeps a value range the window never saw finite but very surprising.
        self.bin_share_ = np.asarray((counts + 0.5) / (len(data) + 0.5 * self.bins), dtype=np.float64)

    def expected(self, t: float) -> Band | None:
        if self.n_ < self.warmup:
            return None
        median, spread = self.level_
        return Band(median, median - self.band * spread, median + self.band * spread)


def _decades(z: float) -> float:
    """-log10 of the Gaussian upper tail beyond ``z``, accurate far into the tail."""
    return float(-log_ndtr(-z)) / LN10


def _median_spread(data: np.ndarray) -> tuple[float, float]:
    """Median and a robust spread that never collapses to 0 on flat or discrete series."""
    median = float(np.median(data))
    mad = MAD_TO_SIGMA * float(np.median(np.abs(data - median)))
    spread = max(mad, 0.1 * float(data.std()), 1e-3 * abs(median), 1e-9)
    return median, spread
