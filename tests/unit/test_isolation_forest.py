"""ServiceIsolationForest: joint anomalies of a service's signals, calibrated on its own training points."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from vigil.detectors.base import Band
from vigil.detectors.isolation_forest import FlatForest, ServiceIsolationForest
from vigil.detectors.registry import input_kind, make


def service_signals(rng: np.random.Generator, n: int) -> np.ndarray:
    """(requests/s, p99 seconds, CPU share): latency and CPU follow traffic."""
    rate = rng.normal(200.0, 20.0, n)
    p99 = 0.001 * rate + rng.normal(0.0, 0.004, n)
    cpu = 0.002 * rate + rng.normal(0.0, 0.01, n)
    return np.column_stack([rate, p99, cpu])


def trained(n: int = 1500, **params: object) -> ServiceIsolationForest:
    detector = ServiceIsolationForest(feature_names=["rps", "p99", "cpu"], **params)
    for i, row in enumerate(service_signals(np.random.default_rng(11), n)):
        detector.learn_one(row, t=float(i))
    return detector


def test_the_flat_forest_scores_exactly_like_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(700, 5))
    forest = IsolationForest(n_estimators=30, max_samples=200, random_state=4).fit(train)
    probe = np.vstack([rng.normal(size=(200, 5)) * 3, train[:50]])
    flat = FlatForest(forest)
    assert flat.anomaly(probe) == pytest.approx(-forest.score_samples(probe), abs=1e-12)
    one_by_one = [flat.anomaly(row[None, :])[0] for row in probe]  # the streaming path
    assert one_by_one == pytest.approx(-forest.score_samples(probe), abs=1e-12)


def test_a_correlation_break_scores_above_one_though_each_feature_is_usual() -> None:
    detector = trained()
    # Busier than usual but with the latency and CPU of a quiet minute: requests failing fast.
    point = [230.0, 0.170, 0.400]
    assert all(abs(z) < 2.0 for _, z in detector.explain(point))
    assert detector.score_one(point, t=1500.0) > 1.0
    assert detector.score_one([230.0, 0.230, 0.460], t=1500.0) < 1.0  # the same traffic, coherent


def test_ordinary_noise_mostly_scores_below_one() -> None:
    detector = trained()
    fresh = service_signals(np.random.default_rng(12), 2000)
    scores = np.array([detector.score_one(row, t=2000.0) for row in fresh])
    assert np.mean(scores > 1.0) < 0.01
    assert np.median(scores) < 0.3


def test_a_spike_far_outside_the_training_range_scores_high_and_is_explained() -> None:
    detector = trained()
    spike = [200.0, 2.0, 0.4]  # p99 ten times its usual value
    assert detector.score_one(spike, t=1500.0) > 5.0
    assert detector.explain(spike)[0][0] == "p99"
    assert detector.explain(spike)[0][1] > 50.0


def test_warm_up_then_refits_every_refit_every_points() -> None:
    detector = ServiceIsolationForest(warmup=100, refit_every=50, n_estimators=10)
    rows = service_signals(np.random.default_rng(1), 260)
    forests = []
    for i, row in enumerate(rows):
        if i < 99:
            assert detector.score_one(row, t=float(i)) == 0.0
        detector.learn_one(row, t=float(i))
        forests.append(detector.forest_)
    assert forests[98] is None
    assert forests[99] is not None  # fitted at the 100th point
    changes = [i + 1 for i in range(1, len(forests)) if forests[i] is not forests[i - 1]]
    assert changes == [100, 150, 200, 250]


def test_anomalies_stay_out_of_the_training_buffer() -> None:
    detector = trained(n=600)
    before = detector.buffered_
    detector.learn_one([200.0, 2.0, 0.4], t=600.0)
    assert detector.buffered_ == before
    detector.learn_one([200.0, 0.2, 0.4], t=601.0)
    assert detector.buffered_ == before + 1


def test_missing_signals_take_the_training_median() -> None:
    detector = ServiceIsolationForest(warmup=200, n_estimators=20)
    rows = service_signals(np.random.default_rng(5), 400)
    rows[::7, 2] = np.nan  # CPU sometimes not scraped
    for i, row in enumerate(rows):
        detector.learn_one(row, t=float(i))
    assert detector.center_ is not None
    median = detector.center_.copy()
    missing = np.array([median[0], median[1], np.nan])
    assert detector.score_one(missing, t=400.0) == pytest.approx(detector.score_one(median, t=400.0))
    assert np.isnan(missing[2])  # the input is not changed
    assert dict(detector.explain(missing))[2] == 0.0
    assert np.isfinite(detector.score_one([np.nan, np.nan, np.nan], t=400.0))


def test_a_signal_missing_through_the_whole_training_window_does_not_crash() -> None:
    detector = ServiceIsolationForest(warmup=50, n_estimators=10)
    for i, row in enumerate(service_signals(np.random.default_rng(6), 80)):
        detector.learn_one([row[0], row[1], np.nan], t=float(i))
    assert np.isfinite(detector.score_one([200.0, 0.2, 0.5], t=80.0))


def test_log_features_by_name_registry_and_input_checks() -> None:
    detector = make("isolation_forest", feature_names=["rps", "p99"], log_features=["rps"], seed=1)
    assert isinstance(detector, ServiceIsolationForest)
    assert input_kind("isolation_forest") == "vector"
    assert detector.log_columns_ == [0]
    with pytest.raises(ValueError, match="log_features"):
        ServiceIsolationForest(feature_names=["rps"], log_features=["cpu"])
    detector.learn_one([1.0, 2.0], t=0.0)
    with pytest.raises(ValueError, match="expected 2 features"):
        detector.learn_one([1.0, 2.0, 3.0], t=1.0)
    assert detector.expected(1.0) is None  # not fitted yet
    assert trained(n=300).expected(300.0) == Band(0.0, 0.0, 1.0)


def test_the_same_seed_gives_the_same_scores() -> None:
    probe = service_signals(np.random.default_rng(9), 50)
    first, second = trained(n=400, warmup=300, seed=7), trained(n=400, warmup=300, seed=7)
    other = trained(n=400, warmup=300, seed=8)
    scores = [first.score_one(row, 0.0) for row in probe]
    assert scores == [second.score_one(row, 0.0) for row in probe]
    assert scores != [other.score_one(row, 0.0) for row in probe]
