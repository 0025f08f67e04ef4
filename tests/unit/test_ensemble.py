"""The default ensemble detector on synthetic streams: catches spikes and shifts, quiet on noise."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.detectors.anomaly_likelihood import RawScoreLikelihood
from vigil.detectors.ensemble import Ensemble
from vigil.detectors.registry import make


def run(values: np.ndarray, detector: Ensemble | None = None) -> np.ndarray:
    detector = detector or Ensemble()
    scores = np.empty(len(values))
    for t, x in enumerate(values.tolist()):
        scores[t] = detector.score_one(x, float(t))
        detector.learn_one(x, float(t))
    return scores


def noise(n: int, seed: int = 0) -> np.ndarray:
    return 10.0 + np.random.default_rng(seed).normal(0.0, 1.0, n)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rarely_alarms_on_gaussian_noise(seed: int) -> None:
    # A per-point tail of 1e-4 for the most surprised of four views: rare, but not impossible.
    scores = run(noise(5000, seed))
    assert (scores > 1.0).sum() <= 1
    assert np.median(scores[200:]) < 0.2


def test_quiet_on_a_daily_cycle() -> None:
    t = np.arange(4000)
    values = 50 + 20 * np.sin(2 * np.pi * t / 288) + np.random.default_rng(3).normal(0, 1, len(t))
    assert run(values)[500:].max() < 1.0


def test_catches_a_spike() -> None:
    values = noise(2000)
    values[1500] += 12.0
    scores = run(values)
    assert scores[1500] > 1.0
    assert scores[:1500].max() < 1.0


def test_catches_a_spike_hidden_in_a_daily_cycle() -> None:
    # One day of one-minute points; the spike stays inside the cycle's range, so only its distance
    # from the local level gives it away.
    t = np.arange(4000)
    values = 50 + 20 * np.sin(2 * np.pi * t / 1440) + np.random.default_rng(4).normal(0, 1, len(t))
    values[3500] += 20.0
    scores = run(values)
    assert scores[3500] > 1.0
    assert scores[500:3500].max() < 1.0


def test_catches_a_level_shift_within_a_few_points() -> None:
    values = noise(2500)
    values[2000:] += 6.0
    scores = run(values)
    assert scores[:2000].max() < 1.0
    assert scores[2000:2005].max() > 1.0


def test_one_alarm_per_incident() -> None:
    values = noise(2000)
    values[1500:1520] += 15.0  # a short outage plateau
    scores = run(values)
    assert (scores[1500:1600] > 1.0).sum() == 1
    # The held points still show they are unusual, just below the alarm threshold.
    assert scores[1501:1520].max() == pytest.approx(Ensemble().hold_cap)


def test_warm_up_scores_zero_and_has_no_band() -> None:
    detector = Ensemble(warmup=30)
    assert detector.expected(0.0) is None
    scores = run(noise(30), detector)
    assert (scores == 0.0).all()
    band = detector.expected(30.0)
    assert band is not None
    assert band.lower < band.expected < band.upper


def test_score_one_does_not_change_the_detector() -> None:
    a, b = Ensemble(), Ensemble()
    values = noise(400)
    for t, x in enumerate(values.tolist()):
        a.score_one(x + 100.0, float(t))  # probing with other values must not matter
        a.score_one(x, float(t))
        a.learn_one(x, float(t))
        b.learn_one(x, float(t))
    assert a.score_one(10.0, 400.0) == b.score_one(10.0, 400.0)


def test_registered_and_deterministic() -> None:
    values = noise(800, seed=5)
    first = run(values, make("ensemble", seed=1))
    second = run(values, make("ensemble", seed=1))
    assert np.array_equal(first, second)


def test_likelihood_learns_a_noisy_raw_score_as_normal() -> None:
    likelihood = RawScoreLikelihood(short=5, history=1000, warmup=100)
    rng = np.random.default_rng(0)
    for raw in rng.exponential(1.0, 1000).tolist():
        likelihood.learn(raw)
    # A typical raw score is unremarkable; a sustained run of high ones is not.
    assert likelihood.tail(1.0) > 0.1
    for _ in range(4):
        likelihood.learn(8.0)
    assert likelihood.tail(8.0) < 1e-4


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_coarse_look_catches_a_small_shift_in_noise(seed: int) -> None:
    # A shift of 0.8 noise sigmas hides in the point noise but not in the means of 4 points.
    values = noise(2000, seed)
    values[1500:] += 0.8
    with_coarse = run(values)
    without = run(values, Ensemble(coarse_scale=0))
    assert with_coarse[:1500].max() < 1
    assert with_coarse[1500:1560].max() > 1
    assert without[1500:].max() < 1  # the raw points' views never see it


def test_spike_counts_only_when_context_agrees() -> None:
    # With an unreachable gate the spike view never decides: the same scores as without it.
    values = noise(1500)
    values[[700, 900]] += 8.0
    gated = run(values, Ensemble(spike_gate=float("inf")))
    without_spike = run(values, Ensemble(views=("level", "change", "context", "distribution")))
    np.testing.assert_array_equal(gated, without_spike)
    # Spikes of 8 sigmas on plain noise are new shapes too: the gate lets them through.
    assert (run(values)[[700, 900]] > 1.0).all()
