"""The batch (VectorDetector) detectors give, bit for bit, the scalar detectors' scores on every series.

Each case feeds the same aligned streams, with NaN gaps (scattered, a late start, a long outage, a
series that never reports), to one scalar detector per series (only that series' points, score
before learn, as the engine does) and to one batch detector; the score matrices must be equal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from vigil.detectors.backlog import QueueBacklog, QueueBacklogBatch
from vigil.detectors.base import VectorDetector
from vigil.detectors.rings import median_ignoring_nan, median_of_first
from vigil.detectors.rolling_mad import RollingMAD, RollingMADBatch
from vigil.detectors.seasonal_baseline import SeasonalBaseline
from vigil.detectors.seasonal_baseline_batch import SeasonalBaselineBatch

SERIES, STEPS = 24, 420


def with_gaps(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``values`` (steps x series) with 10% of points missing, a late start, an outage, a silent series."""
    values = values.copy()
    values[rng.random(values.shape) < 0.1] = np.nan
    values[:150, 3] = np.nan
    values[100:260, 4] = np.nan
    values[:, 5] = np.nan
    return values


def latency_streams(seed: int) -> np.ndarray:
    """Seasonal latency-like series with level shifts and spikes."""
    rng = np.random.default_rng(seed)
    steps = np.arange(STEPS)[:, None]
    level = rng.uniform(0.1, 2.0, SERIES)
    values = level * (1 + 0.3 * np.sin(2 * np.pi * steps / 37)) + rng.normal(0, 0.05, (STEPS, SERIES))
    values[250:, :8] += 0.5  # a lasting shift in a third of the series
    spikes = rng.random(values.shape) < 0.03
    values[spikes] += rng.choice([-3.0, 3.0], spikes.sum())
    values[:, 6] = 1.0  # a constant series: zero MAD and spread
    values[:, 7] = np.round(values[:, 7], 1)  # many ties
    return with_gaps(values, rng)


def depth_streams(seed: int) -> np.ndarray:
    """Queue depths: steady, growing then drained, and over the threshold."""
    rng = np.random.default_rng(seed)
    depths = 20 + rng.integers(-3, 4, (STEPS, SERIES)).astype(float)
    for series in range(0, SERIES, 2):
        start = int(rng.integers(30, STEPS - 80))
        growth = rng.uniform(0.5, 40.0) * np.arange(60)
        depths[start : start + 60, series] += growth
    depths[200:230, 1] = 1500.0  # over the threshold
    depths[:, 9] = 7.0  # constant: every slope 0
    return with_gaps(depths, rng)


Scores = tuple[np.ndarray, np.ndarray]  # (steps x series) scores, (3 x steps x series) bands


def scalar_scores(factory: Callable[[], Any], values: np.ndarray, times: np.ndarray) -> Scores:
    """Score then learn each series' points, and its band after learning (as the engine reads it)."""
    scores, bands = np.full(values.shape, np.nan), np.full((3, *values.shape), np.nan)
    for series in range(values.shape[1]):
        detector = factory()
        for step, (x, t) in enumerate(zip(values[:, series], times, strict=True)):
            if not np.isnan(x):
                scores[step, series] = detector.score_one(float(x), float(t))
                detector.learn_one(float(x), float(t))
            band = detector.expected(float(t))
            if band is not None:
                bands[:, step, series] = band.expected, band.lower, band.upper
    return scores, bands


def batch_scores(detector: Any, values: np.ndarray, times: np.ndarray) -> Scores:
    assert isinstance(detector, VectorDetector)
    scores, bands = np.full(values.shape, np.nan), np.full((3, *values.shape), np.nan)
    for step, t in enumerate(times):
        scores[step] = detector.score_many(values[step], float(t))
        detector.learn_many(values[step], float(t))
        bands[:, step] = detector.expected_many(float(t))
    return scores, bands


def assert_equal_with_nan(scalar: np.ndarray, batch: np.ndarray) -> None:
    differing = np.argwhere(~((scalar == batch) | (np.isnan(scalar) & np.isnan(batch))))
    assert len(differing) == 0, [(*map(int, i), scalar[tuple(i)], batch[tuple(i)]) for i in differing[:5]]


def assert_same_scores(scalar: Scores, batch: Scores) -> None:
    assert np.isnan(batch[0]).sum() == np.isnan(scalar[0]).sum() > 0
    assert (scalar[0][~np.isnan(scalar[0])] > 1).any(), "the streams should contain anomalies"
    assert_equal_with_nan(scalar[0], batch[0])
    assert not np.isnan(scalar[1][:, -1, 0]).any(), "warm-up should be over at the end"
    assert_equal_with_nan(scalar[1], batch[1])


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"window": 25, "warmup": 5, "min_deviation": 0.5},
        {"window": 4, "warmup": 1, "threshold": 2.0},
        {"window": 9, "warmup": 0},
    ],
)
def test_rolling_mad_batch_equals_scalar(params: dict[str, Any]) -> None:
    values, times = latency_streams(1), 60.0 * np.arange(STEPS)
    batch = RollingMADBatch(SERIES, **params)
    assert_same_scores(
        scalar_scores(lambda: RollingMAD(**params), values, times), batch_scores(batch, values, times)
    )


@pytest.mark.parametrize(
    "params",
    [
        {"period": 259.0, "bucket": 20.0, "alpha": 0.05, "level_window": 20},
        {"period": 259.0, "bucket": 20.0, "level_window": 21, "direction": "both", "min_rel": 0.05},
        {"period": 70.0, "bucket": 10.0, "weekly": True, "offset": 35.0, "direction": "down", "min_abs": 0.1},
        {"period": 500.0, "bucket": 30.0, "min_bucket_points": 1, "warmup": 1, "clip": 1.5, "threshold": 2.0},
        {"period": 500.0, "bucket": 30.0, "warmup": 0, "level_window": 1},
    ],
)
def test_seasonal_baseline_batch_equals_scalar(params: dict[str, Any]) -> None:
    values, times = latency_streams(2), 7.0 * np.arange(STEPS)
    batch = SeasonalBaselineBatch(SERIES, **params)
    scalar = scalar_scores(lambda: SeasonalBaseline(**params), values, times)
    assert_same_scores(scalar, batch_scores(batch, values, times))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"window": 7, "warmup": 3, "horizon": 300.0},
        {"window": 30, "warmup": 1, "threshold": 400.0},
        {"window": 5, "warmup": 0},
    ],
)
def test_backlog_batch_equals_scalar(params: dict[str, Any]) -> None:
    values, times = depth_streams(3), 15.0 * np.arange(STEPS)
    batch = QueueBacklogBatch(SERIES, **params)
    assert_same_scores(
        scalar_scores(lambda: QueueBacklog(**params), values, times), batch_scores(batch, values, times)
    )


def test_backlog_batch_rates_equal_scalar() -> None:
    """Publish/consume imbalance as a second growth estimate, with gaps in the rates too."""
    rng = np.random.default_rng(4)
    depths, times = depth_streams(5), 15.0 * np.arange(STEPS)
    publish = rng.uniform(10, 20, (STEPS, SERIES))
    consume = publish - np.where(np.arange(SERIES) % 3 == 0, rng.uniform(0, 4, (STEPS, SERIES)), 0.0)
    consume[rng.random(consume.shape) < 0.2] = np.nan
    batch = QueueBacklogBatch(SERIES, warmup=4, rates_window=9)
    scalar = [QueueBacklog(warmup=4, rates_window=9) for _ in range(SERIES)]
    for step, t in enumerate(times):
        scores = batch.score_many(depths[step], t)
        batch.learn_many(depths[step], t)
        batch.observe_rates_many(publish[step], consume[step], t)
        for i, detector in enumerate(scalar):
            if not np.isnan(depths[step, i]):
                assert scores[i] == detector.score_one(depths[step, i], t), (step, i)
                detector.learn_one(depths[step, i], t)
            if not np.isnan(consume[step, i]):
                detector.observe_rates(publish[step, i], consume[step, i], t)
    assert (batch.rate_growth_ > 1).any()
    assert batch.rate_growth_.tolist() == [d.rate_growth_ for d in scalar]


def test_backlog_batch_repeated_time_has_no_slope() -> None:
    """Points learned at the same ``t`` give no pair (dt = 0), as in the scalar Theil-Sen."""
    batch, scalar = QueueBacklogBatch(1, warmup=2), QueueBacklog(warmup=2)
    for t, x in [(0.0, 5.0), (0.0, 50.0), (15.0, 60.0), (15.0, 10.0), (30.0, 80.0)]:
        batch.learn_many(np.array([x]), t)
        scalar.learn_one(x, t)
        assert batch.slope_[0] == scalar.slope_


def test_row_medians_equal_numpy() -> None:
    rng = np.random.default_rng(6)
    values = rng.normal(size=(200, 9)).round(1)  # rounding makes ties
    values[rng.random(values.shape) < 0.3] = np.nan
    values[0] = np.nan
    expected = [np.median(row[~np.isnan(row)]) if (~np.isnan(row)).any() else np.nan for row in values]
    np.testing.assert_array_equal(median_ignoring_nan(values), expected)
    lengths = rng.integers(0, 10, 200)
    filled = np.nan_to_num(values)
    expected = [np.median(row[:k]) if k else np.nan for row, k in zip(filled, lengths, strict=True)]
    np.testing.assert_array_equal(median_of_first(filled, lengths), expected)


@pytest.mark.parametrize("detector_class", [RollingMAD, SeasonalBaseline, QueueBacklog])
def test_without_warmup_the_first_point_still_starts_cold(detector_class: type) -> None:
    """warmup=0 used to give NaN (RollingMAD) or raise IndexError (the others) before the first point."""
    detector = detector_class(warmup=0)
    assert detector.score_one(5.0, 0.0) == 0.0
    assert detector.expected(0.0) is None
    detector.learn_one(5.0, 0.0)
    band = detector.expected(60.0)
    assert band is not None
    assert band.expected == 5.0
