"""The wrappers around detectors: calibration to the common scale and excluded training windows."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.detectors.calibration import Calibrated
from vigil.detectors.exclusion import Excluding
from vigil.detectors.rolling_mad import RollingMAD
from vigil.detectors.seasonal_baseline import SeasonalBaseline


def stream_scores(detector: Calibrated, values: np.ndarray) -> np.ndarray:
    scores = np.empty(len(values))
    for t, x in enumerate(values.tolist()):
        scores[t] = detector.score_one(x, t)
        detector.learn_one(x, t)
    return scores


@pytest.mark.parametrize("quantile", [0.99, 0.995])
def test_calibration_makes_the_alarm_rate_on_normal_data_what_the_quantile_promises(quantile: float) -> None:
    # Heavy-tailed noise: RollingMAD's normal-theory threshold would alarm far too often on it.
    values = np.random.default_rng(11).standard_t(df=2, size=15_000)
    raw = RollingMAD(window=200, threshold=4.0)
    uncalibrated = np.empty(len(values))
    for t, x in enumerate(values.tolist()):
        uncalibrated[t] = raw.score_one(x, t)
        raw.learn_one(x, t)
    calibrated = stream_scores(
        Calibrated(RollingMAD(window=200, threshold=4.0), quantile=quantile, warmup=2000, window=3000), values
    )
    after_warmup = calibrated[5000:]
    assert np.mean(uncalibrated[5000:] > 1) > 2 * (1 - quantile)  # the native scale over-alarms
    assert np.mean(after_warmup > 1) == pytest.approx(1 - quantile, rel=0.5)


def test_an_incident_does_not_teach_the_calibration_that_incidents_are_normal() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(10, 1, 3000), rng.normal(40, 1, 300), rng.normal(10, 1, 100)])
    detector = Calibrated(RollingMAD(window=2000, threshold=3.0), quantile=0.99, warmup=1000, refresh=10)
    scores = stream_scores(detector, values)
    assert np.mean(scores[3000:3300] > 1) > 0.9  # the incident keeps scoring high to its end


def test_excluded_windows_are_scored_but_not_learned() -> None:
    detector = Excluding(SeasonalBaseline(period=100.0, bucket=10.0, alpha=0.2, level_window=10, warmup=5))
    for t in range(300):
        detector.learn_one(1.0 + 0.01 * (t % 3), t)
    detector.exclude(300, 400)  # a deploy we know about: latency doubles for a while
    for t in range(300, 400):
        assert detector.score_one(2.0, t) > 1
        detector.learn_one(2.0, t)
    band = detector.expected(400)
    assert band is not None
    assert band.expected == pytest.approx(1.01, abs=0.02)
    detector.learn_one(1.0, 400)
    assert detector.pending_ == []  # windows that are over are forgotten


def test_an_unlearned_detector_differs_from_one_that_learned_the_incident() -> None:
    plain = RollingMAD(window=50, warmup=5)
    excluding = Excluding(RollingMAD(window=50, warmup=5), windows=[(50, 90)])
    for t in range(90):
        x = 5.0 + (t % 2) * 0.1 if t < 50 else 9.0
        plain.learn_one(x, t)
        excluding.learn_one(x, t)
    assert plain.score_one(9.0, 90) < 1 < excluding.score_one(9.0, 90)


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="must start before it ends"):
        Excluding(RollingMAD(), windows=[(10, 5)])
