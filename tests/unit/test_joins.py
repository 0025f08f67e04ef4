"""Composite signals: inputs joined by labels and time into one detector input, through the engine."""

from __future__ import annotations

import math
from typing import Any

import pytest

from vigil.collectors.model import Collection, Point, SeriesKey
from vigil.detectors.base import Band
from vigil.runtime.engine import Engine, owns
from vigil.runtime.joins import Composite


def key(signal: str, **labels: str) -> SeriesKey:
    return SeriesKey(signal, tuple(sorted(labels.items())))


def test_events_pair_bad_with_total_and_treat_a_missing_bad_series_as_zero() -> None:
    burn = Composite("burn", "events", ("bad", "total"), ("service",))
    rows = burn.assemble(
        {
            key("bad", service="orders"): [Point(15, 2.0)],
            key("total", service="orders"): [Point(15, 40.0), Point(30, 50.0)],
            key("total", service="catalog"): [Point(15, 10.0)],
            key("bad", service="cart"): [Point(15, 1.0)],  # no total: nothing to judge
        }
    )
    assert rows == {
        key("burn", service="orders"): [(15, (2.0, 40.0), 0.05), (30, (0.0, 50.0), 0.0)],
        key("burn", service="catalog"): [(15, (0.0, 10.0), 0.0)],
    }


def test_vectors_take_the_worst_series_per_input_and_nan_for_a_missing_one() -> None:
    health = Composite("health", "vector", ("rate", "p99", "db_p99"), ("service",))
    rows = health.assemble(
        {
            key("rate", service="catalog"): [Point(15, 12.0)],
            key("p99", service="catalog", route="/a"): [Point(15, 0.1)],
            key("p99", service="catalog", route="/b"): [Point(15, 0.4), Point(30, math.nan)],
            key("other", service="catalog"): [Point(15, 99.0)],
        }
    )
    ((t, vector, shown),) = rows[key("health", service="catalog")]
    assert (t, vector[:2], math.isnan(vector[2]), shown) == (15, [12.0, 0.4], True, None)


def test_counts_are_keyed_by_the_labels_not_joined_on() -> None:
    logs = Composite("novelty", "counts", ("log_template_lines",), ("service",))
    rows = logs.assemble(
        {
            key("log_template_lines", service="orders", template_id="1"): [Point(60, 10.0)],
            key("log_template_lines", service="orders", template_id="2"): [Point(60, 3.0)],
        }
    )
    assert rows == {key("novelty", service="orders"): [(60, {"1": 10.0, "2": 3.0}, 13.0)]}


def test_a_composite_refuses_the_wrong_number_of_inputs() -> None:
    with pytest.raises(ValueError, match="takes 2 input"):
        Composite("burn", "events", ("bad",), ("service",))
    with pytest.raises(ValueError, match="take one signal"):
        Composite("x", "scalar", ("a", "b"), ())


class Recording:
    """Keeps what the engine fed it (the composite's joined input), scores its first element."""

    input_kind = "events"

    def __init__(self) -> None:
        self.seen: list[tuple[float, Any]] = []

    def score_one(self, x: Any, t: float) -> float:
        return float(x[0])

    def learn_one(self, x: Any, t: float) -> None:
        self.seen.append((t, x))

    def expected(self, t: float) -> Band | None:
        return None


class Rounds:
    name = "scripted"

    def __init__(self, rounds: list[Collection]) -> None:
        self.rounds = rounds

    def collect(self, now: float) -> Collection:
        return self.rounds.pop(0) if self.rounds else Collection(self.name)


def test_the_engine_scores_composites_and_skips_input_only_signals() -> None:
    detectors: dict[SeriesKey, Recording] = {}

    def detector_for(series: SeriesKey) -> Recording | None:
        if series.signal != "burn":
            return None  # inputs only
        return detectors.setdefault(series, Recording())

    first = Collection(
        "scripted",
        {
            key("bad", service="orders"): [Point(15, 1.0), Point(30, 3.0)],
            key("total", service="orders"): [Point(15, 10.0), Point(30, 10.0)],
        },
    )
    replayed = Collection("scripted", {key("total", service="orders"): [Point(30, 10.0), Point(45, 20.0)]})
    engine = Engine(
        [Rounds([first, replayed])],
        detector_for,
        composites=[Composite("burn", "events", ("bad", "total"), ("service",))],
    )
    engine.tick()
    engine.tick()
    (state,) = engine.series()
    assert state.key == key("burn", service="orders")
    assert detectors[state.key].seen == [(15, (1.0, 10.0)), (30, (3.0, 10.0)), (45, (0.0, 20.0))]
    assert engine.counters.out_of_order == 1  # t=30 came again in the second round
    assert (state.score, state.observed) == (0.0, 0.0)


def test_replicas_split_the_series_between_them_without_overlap() -> None:
    keys = [key("latency", service=f"s{i}", route=f"/r{i % 7}") for i in range(3000)]
    owners = [[k for k in keys if owns((index, 3), k)] for index in range(3)]
    assert sorted(k for share in owners for k in share) == sorted(keys)  # each series exactly once
    assert all(900 < len(share) < 1100 for share in owners)  # and evenly
    assert owners[1] == [k for k in keys if owns((1, 3), k)]  # the same answer every time
