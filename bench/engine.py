"""Benchmark ``Engine.tick`` end to end: ingest + score + learn + export, per core; prints JSON.

What production does each round, at 10k and 100k series: every series brings one new point; the
engine checks it, scores it, learns it and keeps it (recent points and trail), then Prometheus
scrapes vigil's /metrics (every series' score, value and band). Half the series use rolling MAD,
half the seasonal baseline (the derived signals' two most common detectors), as in
bench/checkpoint.py. One process, one thread: the figures are per core.

Each series count runs twice, side by side: ``batched`` (the engine's default: series sharing a
detector kind and parameters scored together, see vigil.runtime.cohorts) and ``point_by_point``
(``Engine(batch=False)``: each series through its own scalar detector). Figures per run:
- ``points_per_s``: new points / (tick + export) seconds, over ``--rounds`` steady rounds;
  ``tick_points_per_s`` the same without the export;
- ``tick_s`` and ``export_s`` per round (their sum must stay well under the round interval);
  ``export_score_only_s`` with ``exported: [score]``; ``export_prometheus_client_s`` the same five
  families through prometheus_client's ``generate_latest`` (how vigil exported before);
- ``catch_up_points_per_s``: the first round, ``--history`` points of every series at once (a
  restart's catch-up);
- ``bytes_per_series``: memory per series once its recent points and trail are full (the engine's
  ``window_points``), measured with tracemalloc on ``--memory-series`` series;
- ``fit_7d_10k_series_s``: learning 7 days at 15 s of 10k series from history (a warm start) with
  ``fit_many``, a day per call, beside ``replay_7d_10k_series_s``, the same by ``learn_one`` point by
  point (on ``--replay-series`` series, scaled up).

Usage: python bench/engine.py [--series 10000 100000] [--rounds 5] [--history 60]
Needs no network and no stack.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if __package__ in (None, ""):
    # Run as `python bench/engine.py`: make `bench` importable from the project root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.checkpoint import STEP, config
from vigil.collectors.model import Collection, Point, SeriesKey
from vigil.detectors.fitting import fit_many
from vigil.runtime.build import detector_factory
from vigil.runtime.engine import Engine
from vigil.runtime.exporter import SERIES_FAMILIES, EngineCollector, exposition

WEEK_POINTS = int(7 * 86_400 / STEP)


class Rounds:
    """A source whose every collection brings the next ``points`` points of each of its series.

    ``prepare`` makes the next collection ahead of time: the source's own work is not the engine's.
    """

    name = "synthetic"

    def __init__(self, series: int, points: int) -> None:
        self.keys = [
            SeriesKey("latency" if i % 2 else "rate", (("service", f"s{i // 2}"),)) for i in range(series)
        ]
        self.points, self.next_t = points, 0
        self.ready: Collection | None = None

    def prepare(self) -> None:
        start, self.next_t = self.next_t, self.next_t + self.points
        series = {
            key: [Point(STEP * t, 1.0 + 0.1 * math.sin(t / 9 + n)) for t in range(start, start + self.points)]
            for n, key in enumerate(self.keys)
        }
        self.ready = Collection(self.name, series)

    def collect(self, now: float) -> Collection:
        if self.ready is None:
            self.prepare()
        assert self.ready is not None
        collection, self.ready = self.ready, None
        return collection


def throughput(series: int, rounds: int, history: int, batch: bool = True) -> dict[str, Any]:
    settings = config()
    source = Rounds(series, history)
    engine = Engine([source], detector_factory(settings), max_series=settings.max_series, batch=batch)
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine))
    source.prepare()
    began = time.perf_counter()
    engine.tick()
    catch_up_s = time.perf_counter() - began
    source.points = 1
    tick_s = export_s = 0.0
    for _ in range(rounds):
        source.prepare()
        began = time.perf_counter()
        engine.tick()
        tick_s += time.perf_counter() - began
        began = time.perf_counter()
        exposition(engine, registry)
        export_s += time.perf_counter() - began
    return {
        "series": series,
        "path": "batched" if batch else "point_by_point",
        "rounds": rounds,
        "tick_s": round(tick_s / rounds, 4),
        "export_s": round(export_s / rounds, 4),
        "export_score_only_s": round(score_only_export_s(engine, registry), 4),
        "export_prometheus_client_s": round(prometheus_client_export_s(engine), 4),
        "points_per_s": round(series * rounds / (tick_s + export_s)),
        "tick_points_per_s": round(series * rounds / tick_s),
        "catch_up_points_per_s": round(series * history / catch_up_s),
    }


class ClientCollector(Collector):
    """The same five per-series families through ``prometheus_client`` (how vigil exported before)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        families = [
            GaugeMetricFamily(name, text, labels=["service", "signal"])
            for name, text in SERIES_FAMILIES.values()
        ]
        for state in self.engine.series():
            band = state.band
            values = (state.score, state.observed, *((band.expected, band.lower, band.upper) if band else ()))
            labels = [*state.key.label_dict().values(), state.key.signal]
            for family, value in zip(families, values, strict=False):
                if value is not None:
                    family.add_metric(labels, value)
        yield from families


def score_only_export_s(engine: Engine, registry: CollectorRegistry) -> float:
    """The export with ``exported: [score]`` (no value or band per series)."""
    began = time.perf_counter()
    exposition(engine, registry, ["score"])
    return time.perf_counter() - began


def prometheus_client_export_s(engine: Engine) -> float:
    registry = CollectorRegistry()
    registry.register(ClientCollector(engine))
    began = time.perf_counter()
    generate_latest(registry)
    return time.perf_counter() - began


def memory_per_series(series: int) -> int:
    """Bytes per series with full windows: every series has seen ``window_points`` points."""
    settings = config()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    engine = Engine([Rounds(series, settings.window_points)], detector_factory(settings))
    engine.tick()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert all(len(s.trail) == settings.window_points for s in engine.series())
    return round(used / series)


def fit_seconds(series: int, replayed: int) -> tuple[float, float]:
    """Seconds to learn a week of ``series`` series from history, as a warm start does
    (``fit_many``, a day per call), and of ``replayed`` series point by point (``learn_one``)."""
    factory = detector_factory(config())
    keys = [SeriesKey("latency" if i % 2 else "rate", (("service", f"s{i}"),)) for i in range(series)]
    detectors = [detector for detector in map(factory, keys) if detector is not None]
    assert len(detectors) == series
    day = int(86_400 / STEP)
    phase = np.arange(series)[:, None]
    began = time.perf_counter()
    for start in range(0, WEEK_POINTS, day):
        t = np.arange(start, start + day)
        fit_many(detectors, STEP * t, 1.0 + 0.1 * np.sin(t / 9 + phase))
    fitted = time.perf_counter() - began
    values = [1.0 + 0.1 * math.sin(t / 9) for t in range(WEEK_POINTS)]
    began = time.perf_counter()
    for key in keys[:replayed]:
        detector = factory(key)
        assert detector is not None
        for t, x in enumerate(values):
            detector.learn_one(x, STEP * t)
    return fitted, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=5, help="steady rounds timed per series count")
    parser.add_argument("--history", type=int, default=60, help="points per series in the first round")
    parser.add_argument("--memory-series", type=int, default=500)
    parser.add_argument("--fit-series", type=int, default=10_000)
    parser.add_argument("--replay-series", type=int, default=10, help="the point-by-point comparison")
    args = parser.parse_args()
    results = [
        throughput(n, args.rounds, args.history, batch) for n in args.series for batch in (True, False)
    ]
    for batched, alone in zip(results[::2], results[1::2], strict=True):
        batched["speedup_vs_point_by_point"] = round(batched["points_per_s"] / alone["points_per_s"], 1)
    per_series = memory_per_series(args.memory_series)
    fit, replay = fit_seconds(args.fit_series, args.replay_series)
    report = {
        "benchmark": "engine",
        "target_points_per_s_per_core": 1_000_000,
        "results": results,
        "memory": {
            "bytes_per_series": per_series,
            "measured_on_series": args.memory_series,
            "gib_per_100k_series": round(per_series * 100_000 / 2**30, 2),
        },
        "fit": {
            "points_per_series": WEEK_POINTS,
            "fit_many_series": args.fit_series,
            "fit_many_s": round(fit, 1),
            "fit_7d_10k_series_s": round(fit * 10_000 / args.fit_series, 1),
            "replay_series": args.replay_series,
            "replay_7d_10k_series_s": round(replay * 10_000 / args.replay_series),
            "speedup": round(replay / args.replay_series / (fit / args.fit_series), 1),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
