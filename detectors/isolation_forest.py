"""One service's RED+USE signals scored together with an isolation forest.

Rate, error ratio, latency and saturation are each fine alone in many incidents that are plain
to see jointly: traffic up while latency drops (requests failing fast), saturation up without
traffic. An isolation forest (Liu et al., 2008) isolates a point with random axis-parallel
splits; points off the shape of the data are isolated in fewer splits.

Two known blind spots of the forest are covered here. Its splits are parallel to the axes, so a
point off a strong correlation is isolated slowly: the forest also sees the data's principal
directions, where such a point lies far out on a minor one. And a split never falls outside the
training range, so a point ten sigmas out scores like the most extreme training point: a range
term scores the largest robust |z| over features and directions, calibrated the same way.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest

from vigil.detectors.base import Band

IQR_TO_SIGMA = 1.349  # interquartile range of a normal distribution, in standard deviations


def average_path_length(n: np.ndarray) -> np.ndarray:
    """Mean depth of an unsuccessful search in a binary search tree of ``n`` points (``c(n)``)."""
    n = np.asarray(n, dtype=float)
    inner = np.maximum(n, 3.0)
    length = 2.0 * (np.log(inner - 1.0) + np.euler_gamma) - 2.0 * (inner - 1.0) / inner
    return np.where(n <= 1, 0.0, np.where(n == 2, 1.0, length))


class FlatForest:
    """A fitted ``IsolationForest``'s trees in flat arrays, to score one point in microseconds.

    scikit-learn scores a single row in milliseconds (input checks and a joblib call per tree);
    walking all trees at once with numpy gives the same ``score_samples`` (negated) much faster,
    which a stream of points scored one at a time needs.
    """

    def __init__(self, forest: IsolationForest) -> None:
        features, thresholds, children, values, roots = [], [], [], [], []
        offset = 0
        for tree, columns in zip(forest.estimators_, forest.estimators_features_, strict=True):
            nodes = tree.tree_
            leaf = nodes.children_left == -1
            own = np.arange(nodes.node_count)
            # A leaf points at itself, so every walk can take the same number of steps.
            left = np.where(leaf, own, nodes.children_left) + offset
            right = np.where(leaf, own, nodes.children_right) + offset
            depth = np.zeros(nodes.node_count)
            for _ in range(nodes.max_depth + 1):  # each pass settles one more level
                depth[nodes.children_left[~leaf]] = depth[~leaf] + 1
                depth[nodes.children_right[~leaf]] = depth[~leaf] + 1
            features.append(np.asarray(columns)[np.where(leaf, 0, nodes.feature)])
            thresholds.append(np.where(leaf, np.inf, nodes.threshold))
            children.append(np.stack([left, right], axis=1))
            values.append(depth + average_path_length(nodes.n_node_samples))
            roots.append(offset)
            offset += nodes.node_count
        self.feature = np.concatenate(features).astype(np.int32)
        self.threshold = np.concatenate(thresholds)
        self.children = np.concatenate(children).astype(np.intp).reshape(-1)  # node n: 2n left, 2n+1 right
        self.value = np.concatenate(values)
        self.roots = np.array(roots, dtype=np.int32)
        self.steps = max(int(tree.tree_.max_depth) for tree in forest.estimators_)
        self.normalizer = float(average_path_length(np.array([forest.max_samples_]))[0])

    def anomaly(self, rows: np.ndarray) -> np.ndarray:
        """The paper's anomaly score ``2 ** (-E[h(x)] / c(max_samples))`` of each row, in (0, 1)."""
        rows = np.asarray(rows, dtype=np.float32)  # the trees split float32 values
        if len(rows) == 1:
            # One point: compare it at every node at once, then the walks are only lookups.
            right = (rows[0, self.feature] > self.threshold).astype(np.intp)
            nodes = self.roots.astype(np.intp)
            for _ in range(self.steps):
                nodes = self.children[2 * nodes + right[nodes]]
            depth = self.value[nodes].mean()[None]
        else:
            nodes = np.broadcast_to(self.roots, (len(rows), len(self.roots))).astype(np.intp)
            picked = np.arange(len(rows))[:, None]
            for _ in range(self.steps):
                goes_right = rows[picked, self.feature[nodes]] > self.threshold[nodes]
                nodes = self.children[2 * nodes + goes_right]
            depth = self.value[nodes].mean(axis=1)
        return np.asarray(2.0 ** (-depth / self.normalizer)) if self.normalizer > 0 else np.ones(len(rows))


class ServiceIsolationForest:
    """Scores a vector of one service's signals against its recent normal vectors.

    Features are robustly scaled (``log1p`` first for those in ``log_features``, e.g. request
    rates; then median and IQR, the spread at least ``min_scale``) into robust z; a missing one
    (NaN) takes the training median. The z are also projected on their principal directions
    (each robustly scaled too). An isolation forest is fitted on both, over the last ``window``
    points that scored at most 1: first after ``warmup`` points, then every ``refit_every``.

    Calibration, per term, against the training points' own values: a term ``v`` (the forest's
    anomaly; the largest |z| over features and directions) scores ``(v - m) / (margin * (q - m))``
    (0 below ``m``), with ``m`` its training median and ``q`` its training ``quantile``: about
    ``1 - quantile`` of training-like points per term exceed 1 before the margin. The score is
    the larger term. ``margin`` above 1
    keeps the tail that sets ``q`` in the training set (points above 1 are not learned), so the
    quantile does not shrink from one refit to the next. :meth:`explain` ranks the features.

    >>> rng = np.random.default_rng(3)
    >>> detector = ServiceIsolationForest(feature_names=["rps", "p99"], warmup=300, seed=3)
    >>> for i in range(300):  # latency follows traffic
    ...     rps = rng.normal(100, 10)
    ...     detector.learn_one([rps, 0.002 * rps + rng.normal(0, 0.005)], t=i)
    >>> detector.score_one([100.0, 0.2], t=300) < 1  # usual traffic, usual latency
    True
    >>> detector.score_one([115.0, 0.17], t=300) > 1  # busier but faster: each value alone is usual
    True
    >>> [(name, round(z)) for name, z in detector.explain([100.0, 0.5])]  # a latency spike
    [('p99', 14), ('rps', 0)]
    """

    input_kind: ClassVar[str] = "vector"

    def __init__(
        self,
        feature_names: Sequence[str] | None = None,
        log_features: Sequence[int | str] = (),
        min_scale: float = 0.0,
        window: int = 2000,
        warmup: int = 256,
        refit_every: int = 1000,
        n_estimators: int = 100,
        max_samples: int = 256,
        quantile: float = 0.995,
        margin: float = 1.5,
        seed: int = 0,
    ) -> None:
        self.feature_names = feature_names
        self.log_features = log_features
        self.min_scale = min_scale
        self.window = window
        self.warmup = warmup
        self.refit_every = refit_every
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.quantile = quantile
        self.margin = margin
        self.seed = seed
        names = list(feature_names or [])
        if any(isinstance(f, str) and f not in names for f in log_features):
            raise ValueError(f"log_features {list(log_features)} name features not in {names}")
        self.log_columns_ = sorted({names.index(f) if isinstance(f, str) else int(f) for f in log_features})
        self.buffer_: np.ndarray | None = None  # raw recent normal points, a ring of `window` rows
        self.buffered_ = 0
        self.n_ = 0
        self.since_fit_ = 0
        self.center_: np.ndarray | None = None  # per feature, after log1p
        self.scale_: np.ndarray | None = None
        self.directions_: np.ndarray | None = None  # principal directions of z, one per row
        self.direction_center_: np.ndarray | None = None
        self.direction_scale_: np.ndarray | None = None
        self.forest_: FlatForest | None = None
        self.median_anomaly_ = 0.0
        self.quantile_anomaly_ = 1.0
        self.median_extreme_ = 0.0
        self.quantile_extreme_ = 1.0

    def _vector(self, x: Sequence[float] | np.ndarray) -> np.ndarray:
        vector = np.array(x, dtype=float).reshape(-1)  # a copy: x is never changed
        if self.buffer_ is not None and len(vector) != self.buffer_.shape[1]:
            raise ValueError(f"expected {self.buffer_.shape[1]} features, got {len(vector)}")
        if self.log_columns_:
            columns = vector[self.log_columns_]
            vector[self.log_columns_] = np.sign(columns) * np.log1p(np.abs(columns))
        return vector

    def _z(self, rows: np.ndarray) -> np.ndarray:
        assert self.center_ is not None
        assert self.scale_ is not None
        z = (rows - self.center_) / self.scale_
        return np.where(np.isnan(z), 0.0, z)  # a missing signal sits at the median

    def _features(self, rows: np.ndarray) -> np.ndarray:
        """Robust z of the features, then of the principal directions: what the forest sees."""
        assert self.directions_ is not None
        z = self._z(rows)
        along = (z @ self.directions_.T - self.direction_center_) / self.direction_scale_
        return np.hstack([z, along])

    def _terms(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(forest anomaly, largest |z|) of each row."""
        assert self.forest_ is not None
        return self.forest_.anomaly(features), np.abs(features).max(axis=1)

    def _score(self, vector: np.ndarray) -> float:
        if self.forest_ is None:
            return 0.0
        anomalies, extremes = self._terms(self._features(vector[None, :]))
        forest = _centered(float(anomalies[0]), self.median_anomaly_, self.quantile_anomaly_, self.margin)
        extreme = _centered(float(extremes[0]), self.median_extreme_, self.quantile_extreme_, self.margin)
        return max(forest, extreme)

    def score_one(self, x: Sequence[float] | np.ndarray, t: float) -> float:
        return self._score(self._vector(x))

    def learn_one(self, x: Sequence[float] | np.ndarray, t: float) -> None:
        vector = self._vector(x)
        if self.buffer_ is None:
            self.buffer_ = np.full((self.window, len(vector)), np.nan)
        if self._score(vector) <= 1.0:  # an anomaly must not become part of "normal"
            self.buffer_[self.buffered_ % self.window] = vector
            self.buffered_ += 1
        self.n_ += 1
        self.since_fit_ += 1
        if self.n_ >= self.warmup and (self.forest_ is None or self.since_fit_ >= self.refit_every):
            self._fit()

    def _fit(self) -> None:
        assert self.buffer_ is not None
        rows = self.buffer_[: min(self.buffered_, self.window)]
        self.center_, self.scale_ = robust_center_scale(rows, floor=self.min_scale)
        z = self._z(rows)
        self.directions_ = PCA(svd_solver="full").fit(z).components_
        self.direction_center_, self.direction_scale_ = robust_center_scale(
            z @ self.directions_.T, floor=DIRECTION_FLOOR
        )
        features = self._features(rows)
        forest = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(features)),
            random_state=self.seed,
        ).fit(features)
        self.forest_ = FlatForest(forest)
        anomalies, extremes = self._terms(features)
        self.median_anomaly_ = float(np.median(anomalies))
        self.quantile_anomaly_ = float(np.quantile(anomalies, self.quantile))
        self.median_extreme_ = float(np.median(extremes))
        self.quantile_extreme_ = float(np.quantile(extremes, self.quantile))
        self.since_fit_ = 0

    def explain(self, x: Sequence[float] | np.ndarray) -> list[tuple[str | int, float]]:
        """(feature, robust z) pairs, the most unusual feature first; z is 0 for a missing one."""
        if self.center_ is None:
            return []
        z = self._z(self._vector(x)[None, :])[0]
        names: Sequence[str | int] = list(self.feature_names) if self.feature_names else range(len(z))
        order = np.argsort(-np.abs(z), kind="stable")
        return [(names[i], float(z[i])) for i in order]

    def expected(self, t: float) -> Band | None:
        """The score's own normal band, 0 to 1: a vector has no single value to put a band around.

        None until the first fit. Which features are off is :meth:`explain`'s job.
        """
        if self.forest_ is None:
            return None
        return Band(0.0, 0.0, 1.0)


# A principal direction that did not vary in training (a constant, two copies of one signal)
# measures deviations in thousandths of a robust sigma of the features: large, but finite.
DIRECTION_FLOOR = 1e-3


def robust_center_scale(rows: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-column median and IQR in sigmas, ignoring NaN; the scale at least ``floor``."""
    with warnings.catch_warnings():  # an all-missing column has no median: it centers at 0
        warnings.simplefilter("ignore", RuntimeWarning)
        center = np.nan_to_num(np.nanmedian(rows, axis=0))
        spread = np.nan_to_num(np.nanpercentile(rows, 75, axis=0) - np.nanpercentile(rows, 25, axis=0))
    # A constant column has no spread: fall back to a sliver of its level so z stays finite.
    scale = np.maximum(spread / IQR_TO_SIGMA, np.maximum(0.01 * np.abs(center), max(floor, 1e-9)))
    return center, scale


def _centered(value: float, median: float, quantile: float, margin: float) -> float:
    """0 at the training median, 1 at ``margin`` times the way from the median to the quantile."""
    return max(value - median, 0.0) / (margin * max(quantile - median, 1e-9))
