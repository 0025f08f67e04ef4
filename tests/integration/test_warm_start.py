"""A series with nothing learned is fitted from Prometheus history at start (a warm start).

A private, real Prometheus is backfilled with two days of a daily latency pattern for two services,
with an incident in the middle of it. The warm-started detectors must hold exactly what streaming the
same points (minus the incident) would have learned, know the time of day at once, and leave series
restored from a checkpoint alone. A Prometheus that does not answer leaves the series cold, no crash.
"""

from __future__ import annotations

import math
import pickle
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.private_prometheus import History, prometheus_with_history
from vigil.collectors.model import SeriesKey
from vigil.collectors.prometheus_api import PrometheusClient, PrometheusCollector, PromSignal
from vigil.detectors.seasonal_baseline import SeasonalBaseline
from vigil.runtime.engine import Engine
from vigil.runtime.warm_start import warm_start
from vigil.stack.private_prometheus import free_port

pytestmark = pytest.mark.integration

STEP = 60.0
DAYS = 2
SERVICES = ("cart", "search", "billing")


def latency(t: float, service: str) -> float:
    """A daily pattern (busy afternoons) with a little noise that depends on the time only."""
    base = 0.1 + 0.05 * math.sin(2 * math.pi * t / 86_400) + 0.002 * ((t // STEP) % 5)
    return base * (2 if service == "billing" else 1)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float, tuple[float, float]]]:
    """(Prometheus URL, the end of its history, the incident window in it)."""
    end = (time.time() - 3600) // 3600 * 3600
    start = end - DAYS * 86_400
    incident = (end - 30 * 3600, end - 29 * 3600)  # an hour at ten times the usual latency
    histories = []
    for service in SERVICES:
        samples = []
        t = start
        while t <= end:
            slow = 10 if incident[0] <= t < incident[1] else 1
            samples.append((t, slow * latency(t, service)))
            t += STEP
        histories.append(History("latency_seconds", {"service": service}, samples))
    with prometheus_with_history(tmp_path_factory.mktemp("prometheus"), histories) as url:
        yield url, end, incident


def detector(_key: SeriesKey) -> SeasonalBaseline:
    return SeasonalBaseline(bucket=3600.0, min_bucket_periods=2, level_window=30, warmup=10)


def engine_on(url: str, now: float) -> Engine:
    client = PrometheusClient(url, timeout=10, attempts=2)
    signal = PromSignal("latency", "latency_seconds", STEP, keep_labels=("service",))
    collector = PrometheusCollector("prometheus", client, [signal], clock=lambda: now)
    return Engine([collector], detector, clock=lambda: now)


def test_history_is_learned_as_streaming_would_and_the_incident_is_not(
    history: tuple[str, float, tuple[float, float]],
) -> None:
    url, end, incident = history
    now = end + 300  # the first round reads the last ten minutes; everything before is history
    engine = engine_on(url, now)
    restored = SeriesKey("latency", (("service", "search"),))
    (search,) = [s for s in [engine.fresh_state(restored, "prometheus")] if s is not None]  # a checkpoint's

    result = warm_start(engine, DAYS * 86_400, [incident], now)
    assert result.errors == ()
    assert result.series == 2  # cart and billing; search was restored and is left alone
    assert search.detector.n_ == 0  # type: ignore[attr-defined]

    first_round = (now - 600) // STEP * STEP
    for state in engine.series():
        if state.key == restored:
            continue
        service = state.key.label_dict()["service"]
        streamed = detector(state.key)
        for k in range(DAYS * 1440 + 1):
            t = end - DAYS * 86_400 + k * STEP
            if now - DAYS * 86_400 <= t < first_round and not incident[0] <= t < incident[1]:
                streamed.learn_one(latency(t, service), t)
        assert pickle.dumps(state.detector) == pickle.dumps(streamed), service
        assert state.last_timestamp == first_round - STEP

    engine.tick()  # the first round goes on from the history: the time of day is known at once
    for state in engine.series():
        if state.key == restored:
            continue
        service = state.key.label_dict()["service"]
        assert state.band is not None
        assert state.band.expected == pytest.approx(latency(end, service), rel=0.15)
        assert state.score is not None
        assert state.score < 1  # the incident was not learned as normal, the usual is not anomalous


def test_a_prometheus_that_does_not_answer_leaves_the_series_cold(tmp_path: Path) -> None:
    now = time.time()
    engine = engine_on(f"http://127.0.0.1:{free_port()}", now)  # nothing listens there
    result = warm_start(engine, 86_400, [], now)
    assert result.series == 0
    assert result.errors
    assert "latency" in result.errors[0]
