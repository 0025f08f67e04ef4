"""SeasonalBaseline's profile: a time of day is a pattern only once it was seen on more than one day."""

from __future__ import annotations

import random

import numpy as np

from vigil.detectors.seasonal_baseline import SeasonalBaseline
from vigil.detectors.seasonal_baseline_batch import SeasonalBaselineBatch


def young_detector_run(detector: SeasonalBaseline, rng: random.Random) -> list[float]:
    """A new detector's first minutes, 5 s apart, across a 15-minute bucket boundary (at t = 900):
    p99 estimated from few requests first (high), then the steady 0.2 s it really is."""
    scores = []
    for t in range(600, 1200, 5):
        value = (0.45 if t < 700 else 0.2) + rng.gauss(0, 0.002)
        scores.append(detector.score_one(value, t))
        detector.learn_one(value, t)
    return scores


def test_a_steady_value_is_not_anomalous_after_a_new_detectors_first_bucket_change() -> None:
    rng = random.Random(7)
    scores = young_detector_run(SeasonalBaseline(direction="up", min_abs=0.05, min_rel=0.5), rng)
    assert max(scores[30:]) < 1  # before the fix: about 2 once the new bucket had three points


def test_one_days_bucket_stands_in_for_the_time_of_day_only_from_the_second_day() -> None:
    detector = SeasonalBaseline(period=100.0, bucket=10.0, alpha=0.2, warmup=1, level_window=1)
    for t in range(100):  # day one: 1.0 at 20-30, 0.0 elsewhere
        detector.learn_one(1.0 if 20 <= t < 30 else 0.0, t)
    assert detector.expected(125) is not None
    assert detector.periods_[2] == 1
    for t in range(100, 200):  # day two, the same
        detector.learn_one(1.0 if 20 <= t % 100 < 30 else 0.0, t)
    assert detector.periods_[2] == 2
    day_three = detector.expected(225)
    assert day_three is not None
    assert round(day_three.expected, 1) == 1.0  # the bucket's own location (the level is ~0)


def test_the_batch_counts_days_per_bucket_like_the_scalar_detector() -> None:
    rng = np.random.default_rng(5)
    params = {"period": 100.0, "bucket": 10.0, "alpha": 0.1, "warmup": 2, "level_window": 5}
    scalars = [SeasonalBaseline(**params), SeasonalBaseline(**params)]
    batch = SeasonalBaselineBatch(2, **params)
    for t in range(350):
        x = np.sin(t / 16) + rng.normal(0, 0.1, 2)
        expected = [s.score_one(float(v), t) for s, v in zip(scalars, x, strict=True)]
        assert np.allclose(batch.score_many(x, t), expected)
        batch.learn_many(x, t)
        for detector, value in zip(scalars, x, strict=True):
            detector.learn_one(float(value), t)
    assert batch.periods_.tolist() == [scalars[0].periods_, scalars[1].periods_]
