"""The batched engine path gives, bit for bit, what scoring each series point by point gives.

Series whose detectors share kind and parameters are scored and learned together through the batch
twins (``vigil.runtime.cohorts``); the engine with ``batch=False`` runs every series through its own
scalar detector. Fed the same untidy rounds (many points a series, timestamps that differ between
series, NaN, repeats, points out of order, more series than ``max_series``, detectors without a
twin), both must end with equal scores, bands, trails, counters and learned state, and export the
same /metrics.
"""

from __future__ import annotations

import math
import pickle
import random

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vigil.collectors.model import Collection, Point, SeriesKey
from vigil.detectors.backlog import QueueBacklog
from vigil.detectors.base import AnyDetector
from vigil.detectors.batches import batch_key
from vigil.detectors.rolling_mad import RollingMAD
from vigil.detectors.seasonal_baseline import SeasonalBaseline
from vigil.runtime.engine import Engine
from vigil.runtime.exporter import series_exposition


def detector_for(key: SeriesKey) -> AnyDetector | None:
    kind = key.signal
    if kind == "mad":
        return RollingMAD(window=20, warmup=3)
    if kind == "mad_wide":  # same kind, other parameters: another cohort
        return RollingMAD(window=40, warmup=5, min_deviation=0.1)
    if kind == "seasonal":
        return SeasonalBaseline(period=600.0, bucket=60.0, alpha=0.05, level_window=15, warmup=4)
    if kind == "queue":  # no batch twin in the engine: stays scalar beside the others
        return QueueBacklog(threshold=50.0)
    return None  # an input nobody scores


class Rounds:
    name = "rounds"

    def __init__(self, rounds: list[Collection]) -> None:
        self.rounds = rounds

    def collect(self, now: float) -> Collection:
        return self.rounds.pop(0) if self.rounds else Collection(self.name)


def untidy_rounds(seed: int, rounds: int = 40, series: int = 30) -> list[Collection]:
    rng = random.Random(seed)
    signals = ["mad", "mad_wide", "seasonal", "queue", "input"]
    keys = [SeriesKey(rng.choice(signals), (("service", f"s{i}"), ("zone", 'a"b\\c'))) for i in range(series)]
    t = 0.0
    collections = []
    for _ in range(rounds):
        found: dict[SeriesKey, list[Point]] = {}
        for n, key in enumerate(rng.sample(keys, rng.randint(1, series))):
            points = []
            for _ in range(rng.choice([1, 1, 1, 2, 5])):  # catch-up rounds bring several points
                jitter = rng.choice([0.0, 0.0, 0.0, rng.uniform(-30, 5)])  # late, repeated, own clock
                value = 10 + 3 * math.sin((t + n) / 50) + rng.gauss(0, 0.5) + rng.choice([0] * 30 + [25])
                value = rng.choice([value] * 40 + [math.nan, math.inf])
                points.append(Point(t + jitter, value))
                t += 15.0
            found[key] = points
        collections.append(Collection("rounds", found))
    return collections


def run(seed: int, batch: bool, max_series: int = 1000) -> Engine:
    engine = Engine(
        [Rounds(untidy_rounds(seed))], detector_for, batch=batch, max_series=max_series, window_points=25
    )
    for _ in range(40):
        engine.tick()
    return engine


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("max_series", [1000, 12])  # 12: series are evicted and rows reused
def test_the_batched_path_equals_point_by_point(seed: int, max_series: int) -> None:
    batched, alone = run(seed, True, max_series), run(seed, False, max_series)
    assert batched.chunks(), "the rounds must exercise the batched path"
    assert all(s.chunk is None for s in alone.series())
    b_counters, a_counters = vars(batched.counters), vars(alone.counters)
    assert {**b_counters, "last_tick_seconds": 0} == {**a_counters, "last_tick_seconds": 0}
    assert [s.key for s in batched.series()] == [s.key for s in alone.series()]
    for b, a in zip(batched.series(), alone.series(), strict=True):
        assert (b.score, b.band, b.last_timestamp, b.observed) == (
            a.score,
            a.band,
            a.last_timestamp,
            a.observed,
        )
        assert b.trail.array().tobytes() == a.trail.array().tobytes()
        assert pickle.dumps(b.detector) == pickle.dumps(a.detector), b.key
    # The same samples (a family's lines may come in another order: a cohort's series are written together).
    assert sorted(series_exposition(batched).splitlines()) == sorted(series_exposition(alone).splitlines())


def test_series_of_one_kind_and_parameters_share_a_cohort_and_others_stay_scalar() -> None:
    engine = run(1, True)
    for state in engine.series():
        batchable = batch_key(detector_for(state.key)) is not None  # type: ignore[arg-type]
        assert (state.chunk is not None) == batchable, state.key
    kinds = {type(chunk.batch).__name__ for chunk in engine.chunks()}
    assert kinds == {"RollingMADBatch", "SeasonalBaselineBatch"}
    assert len({id(s.chunk) for s in engine.series() if s.key.signal.startswith("mad")}) >= 2


def test_an_evicted_series_keeps_what_it_learned_and_its_row_starts_fresh_for_the_next() -> None:
    first = SeriesKey("mad", (("service", "first"),))
    second = SeriesKey("mad", (("service", "second"),))
    points = [Point(15.0 * i, 10.0 + (i % 3)) for i in range(10)]
    engine = Engine([Rounds([Collection("rounds", {first: points})])], detector_for, max_series=1)
    engine.tick()
    (state,) = engine.series()
    chunk, row = state.chunk, state.row
    assert chunk is not None
    engine.collectors = [Rounds([Collection("rounds", {second: [Point(200.0, 50.0)]})])]
    engine.tick()
    assert state.chunk is None
    assert list(state.detector.values_) == [p.value for p in points]  # type: ignore[attr-defined]
    assert len(state.trail) == 10
    assert state.score is not None
    (newcomer,) = engine.series()
    assert (newcomer.chunk, newcomer.row) == (chunk, row)  # the freed row, reused
    assert list(newcomer.detector.values_) == [50.0]  # type: ignore[attr-defined]
    assert len(newcomer.trail) == 1


def test_the_exposition_is_valid_text_format_with_escaped_labels_and_infinities() -> None:
    key = SeriesKey("mad", (("path", 'say "hi"\\now\n'),))
    engine = Engine(
        [Rounds([Collection("rounds", {key: [Point(1.0, 1e308), Point(2.0, 1e308)]})])], detector_for
    )
    engine.tick()
    (state,) = engine.series()
    state.chunk.score[state.row] = math.inf  # type: ignore[union-attr]
    families = {f.name: f for f in text_string_to_metric_families(series_exposition(engine))}
    (sample,) = families["vigil_anomaly_score"].samples
    assert sample.labels == {"path": 'say "hi"\\now\n', "signal": "mad"}
    assert sample.value == math.inf
    assert families["vigil_observed"].samples[0].value == 1e308
    assert not families["vigil_expected"].samples  # warming up: no band yet


def test_only_the_exported_families_are_written() -> None:
    engine = run(2, True)
    everything = {f.name for f in text_string_to_metric_families(series_exposition(engine))}
    assert everything == {
        "vigil_anomaly_score",
        "vigil_observed",
        "vigil_expected",
        "vigil_expected_lower",
        "vigil_expected_upper",
    }
    scores = [f for f in text_string_to_metric_families(series_exposition(engine, ["score"]))]
    assert [f.name for f in scores] == ["vigil_anomaly_score"]
    assert len(scores[0].samples) == sum(s.score is not None for s in engine.series())
