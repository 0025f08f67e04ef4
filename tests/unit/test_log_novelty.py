"""LogNovelty: new, surging and vanishing log templates against each template's own rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from vigil.detectors.base import Band
from vigil.detectors.log_novelty import LogNovelty, lower_tail, upper_tail
from vigil.detectors.registry import input_kind, make


def steady(detector: LogNovelty, steps: int, rates: dict[str, float], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for step in range(steps):
        detector.learn_one({name: float(rng.poisson(rate)) for name, rate in rates.items()}, t=float(step))


def test_tails_match_scipy_poisson_and_negative_binomial() -> None:
    count = np.array([0.0, 1.0, 4.0, 12.0, 40.0])
    mean = np.full(5, 6.0)
    poisson = np.ones(5)
    assert upper_tail(count, mean, poisson) == pytest.approx(stats.poisson.sf(count - 1, 6.0), abs=1e-15)
    assert lower_tail(count, mean, poisson) == pytest.approx(stats.poisson.cdf(count, 6.0), abs=1e-15)
    wide = np.full(5, 4.0)  # variance 4x the mean: negative binomial n = 6 / 3, p = 1 / 4
    assert upper_tail(count, mean, wide) == pytest.approx(stats.nbinom.sf(count - 1, 2.0, 0.25), abs=1e-15)
    assert lower_tail(count, mean, wide) == pytest.approx(stats.nbinom.cdf(count, 2.0, 0.25), abs=1e-15)


def test_a_count_at_tail_probability_alpha_scores_one() -> None:
    detector = LogNovelty(alpha=1e-3, direction="up", warmup=5)
    for step in range(50):  # exactly 10 lines every step: mean 10, no dispersion beyond Poisson
        detector.learn_one({"GET /cart": 10.0}, t=float(step))
    for count in (15.0, 21.0, 30.0):
        p = stats.poisson.sf(count - 1, 10.0)
        assert detector.score_one({"GET /cart": count}, t=50.0) == pytest.approx(math.log(p) / math.log(1e-3))
    # P(X >= 21) = 0.0016 and P(X >= 22) = 0.0007 for Poisson(10): the edge of alpha = 0.001.
    assert (
        detector.score_one({"GET /cart": 21.0}, t=50.0)
        < 1.0
        < detector.score_one({"GET /cart": 22.0}, t=50.0)
    )


def test_a_new_template_scores_above_one_from_min_count_lines() -> None:
    detector = LogNovelty(min_count=3, warmup=20)
    steady(detector, 19, {"GET /products": 30})
    assert detector.score_one({"GET /products": 30, "payment refused": 500}, t=19.0) == 0.0  # warm-up
    steady(detector, 100, {"GET /products": 30}, seed=1)
    assert detector.score_one({"GET /products": 30, "payment refused": 2}, t=200.0) < 1.0
    assert detector.score_one({"GET /products": 30, "payment refused": 3}, t=200.0) > 1.0
    [finding] = detector.explain({"GET /products": 30, "payment refused": 3})
    assert (finding.template, finding.kind, finding.count) == ("payment refused", "new", 3.0)


def test_a_spike_scores_high_and_does_not_become_the_baseline() -> None:
    detector = LogNovelty(warmup=20)
    steady(detector, 300, {"cache miss": 20, "GET /products": 100})
    before = detector.mean_[detector.slot_["cache miss"]]
    assert detector.score_one({"cache miss": 80, "GET /products": 100}, t=300.0) > 5.0
    assert detector.explain({"cache miss": 80, "GET /products": 100})[0].kind == "spike"
    for step in range(300, 305):  # five minutes of a cache outage
        detector.learn_one({"cache miss": 400, "GET /products": 100}, t=float(step))
    after = detector.mean_[detector.slot_["cache miss"]]
    assert after < before + 5.0  # unclipped, five steps of 400 would have added about 100
    assert detector.score_one({"cache miss": 400, "GET /products": 100}, t=305.0) > 5.0


def test_a_persistent_new_template_is_learned_after_a_few_alerts() -> None:
    detector = LogNovelty(warmup=20)
    steady(detector, 100, {"GET /products": 50})
    rng = np.random.default_rng(3)
    scores = []
    for step in range(100, 400):  # a deploy adds a steady new log line
        x = {"GET /products": float(rng.poisson(50)), "feature flag evaluated": float(rng.poisson(100))}
        scores.append(detector.score_one(x, t=float(step)))
        detector.learn_one(x, t=float(step))
    assert scores[0] > 1.0
    assert max(scores[50:]) < 1.0


def test_the_drop_of_a_busy_template_depends_on_direction() -> None:
    silent = {"GET /products": 100.0}  # "order placed" stopped
    usual = {"GET /products": 100.0, "order placed": 40.0}
    for direction, caught in (("both", True), ("down", True), ("up", False)):
        detector = LogNovelty(direction=direction, warmup=20)
        steady(detector, 200, {"GET /products": 100, "order placed": 40})
        assert (detector.score_one(silent, t=200.0) > 1.0) is caught
        assert detector.score_one(usual, t=200.0) < 1.0
    assert detector.explain(silent) == []
    both = LogNovelty(warmup=20)
    steady(both, 200, {"GET /products": 100, "order placed": 40})
    assert [(f.template, f.kind) for f in both.explain(silent)] == [("order placed", "drop")]


def test_steady_noise_stays_quiet() -> None:
    rates = {f"template {i}": rate for i, rate in enumerate([0.2, 1, 3, 10, 30, 100, 300, 1000])}
    detector = LogNovelty(warmup=50)
    steady(detector, 300, rates)
    rng = np.random.default_rng(9)
    scores = []
    for step in range(300, 3300):
        x = {name: float(rng.poisson(rate)) for name, rate in rates.items()}
        scores.append(detector.score_one(x, t=float(step)))
        detector.learn_one(x, t=float(step))
    assert np.mean(np.array(scores) > 1.0) < 0.005
    assert np.median(scores) < 0.5


def test_at_most_max_templates_are_tracked_and_the_least_recent_goes_first() -> None:
    detector = LogNovelty(max_templates=10, warmup=0)
    for step in range(100):
        detector.learn_one({"heartbeat": 1.0, f"request {step}": 1.0}, t=float(step))
    assert len(detector.slot_) == len(detector.template_) == 10
    assert len(detector.mean_) == 10  # preallocated for max_templates: the state never grows
    assert "heartbeat" in detector.slot_
    assert set(detector.slot_) == {"heartbeat"} | {f"request {step}" for step in range(91, 100)}
    assert all(detector.template_[slot] == name for name, slot in detector.slot_.items())


def test_input_is_not_changed_bad_counts_are_ignored_and_the_band_is_the_total() -> None:
    detector = make("log_novelty", warmup=5)
    assert isinstance(detector, LogNovelty)
    assert input_kind("log_novelty") == "counts"
    assert detector.expected(0.0) is None
    for step in range(30):
        detector.learn_one({"a": 10.0, "b": 30.0, "c": float("nan"), "d": -1.0}, t=float(step))
    assert set(detector.slot_) == {"a", "b"}
    x = {"a": 10.0, "b": 500.0}
    detector.score_one(x, t=30.0)
    detector.learn_one(x, t=30.0)
    assert x == {"a": 10.0, "b": 500.0}
    band = detector.expected(31.0)
    assert isinstance(band, Band)
    assert band.lower < band.expected < band.upper
    assert band.expected == pytest.approx(float(detector.mean_.sum()))
    with pytest.raises(ValueError, match="direction"):
        LogNovelty(direction="sideways")
