"""The engine survives what sources throw at it: NaN, disorder, empties, crashes, too many series."""

from __future__ import annotations

import math

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from vigil.collectors.model import Collection, Point, SeriesKey
from vigil.detectors.rolling_mad import RollingMAD
from vigil.runtime.engine import Engine
from vigil.runtime.server import create_app

KEY = SeriesKey("latency", (("service", "catalog"),))


class Scripted:
    """A collector that replays prepared rounds (a stand-in for a source, not for vigil's code)."""

    name = "scripted"

    def __init__(self, rounds: list[Collection | Exception]) -> None:
        self.rounds = rounds

    def collect(self, now: float) -> Collection:
        item = self.rounds.pop(0) if self.rounds else Collection("scripted")
        if isinstance(item, Exception):
            raise item
        return item


def batch(*values: tuple[float, float], key: SeriesKey = KEY) -> Collection:
    return Collection("scripted", {key: [Point(t, v) for t, v in values]})


def engine(rounds: list[Collection | Exception], **kwargs: int) -> Engine:
    return Engine([Scripted(rounds)], lambda _key: RollingMAD(window=50, warmup=3), **kwargs)


def test_non_finite_and_out_of_order_points_are_dropped_and_counted() -> None:
    e = engine([batch((1, 1.0), (2, math.nan), (3, math.inf), (4, 1.1)), batch((2, 5.0), (5, 1.2))])
    e.tick()
    e.tick()
    state = e.series()[0]
    assert state.trail.array()[:, 0].tolist() == [1, 4, 5]
    assert (e.counters.non_finite, e.counters.out_of_order, e.counters.samples) == (2, 1, 3)


def test_a_crashing_or_down_source_is_marked_and_the_outage_becomes_a_gap() -> None:
    e = engine([RuntimeError("boom"), Collection("scripted", up=False, error="refused"), batch((1, 1.0))])
    e.tick()
    assert not e.sources["scripted"].up
    assert "boom" in (e.sources["scripted"].error or "")
    e.tick()
    e.tick()
    assert e.sources["scripted"].up
    assert len(e.sources["scripted"].gaps) == 1


def test_series_are_bounded() -> None:
    keys = [SeriesKey("s", (("i", str(i)),)) for i in range(10)]
    e = engine([Collection("scripted", {k: [Point(1, 1.0)] for k in keys})], max_series=4)
    e.tick()
    assert len(e.series()) == 4
    assert e.counters.evicted == 6


def test_api_exports_scores_with_the_series_labels_and_health() -> None:
    values = [(t, 1.0 + 0.01 * (t % 3)) for t in range(1, 30)] + [(30, 50.0)]
    e = engine([batch(*values), Collection("scripted", up=False, error="refused")])
    e.tick()
    client = TestClient(create_app(e))
    samples = {
        (s.name, s.labels.get("signal"), s.labels.get("service")): s.value
        for f in text_string_to_metric_families(client.get("/metrics").text)
        for s in f.samples
    }
    assert samples[("vigil_anomaly_score", "latency", "catalog")] > 1
    assert samples[("vigil_observed", "latency", "catalog")] == 50.0
    assert (
        samples[("vigil_expected_lower", "latency", "catalog")]
        < 1.0
        < samples[("vigil_expected_upper", "latency", "catalog")]
    )
    anomalous = client.get("/api/v1/signals", params={"anomalous": True}).json()
    assert [(a["signal"], a["labels"]) for a in anomalous] == [("latency", {"service": "catalog"})]
    e.tick()
    health = client.get("/healthz").json()
    assert health["status"] == "degraded"
    assert health["sources"]["scripted"]["error"] == "refused"
    assert client.get("/openapi.json").status_code == 200
