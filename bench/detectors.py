"""Detector throughput at 100k series: one instance per series vs the batch version; prints JSON.

For every registered detector (or each ``--detector``), side by side in one run:

- ``per_series``: one detector per series, ``score_one`` then ``learn_one`` for every point, as
  ``vigil.runtime.engine`` does today (its ``expected`` call is not included). 100k instances do
  not fit a time budget, so ``PILOT`` series are warmed up for real (``--series-warmup`` steps)
  and timed over ``--steps`` steps to estimate the cost per point; then as many series as fit
  ``--budget`` seconds of measured steps (at most ``--series``) get a clone of a warmed-up pilot
  detector and are timed over ``--steps`` steps of their own data. ``series`` and ``points`` in
  the JSON say how many were measured.
- ``batch``: where the detector has a ``VectorDetector`` version, ``score_many`` + ``learn_many``
  on all ``--series`` at once: ``--warmup`` untimed steps, then ``--steps`` timed ones.

``seconds_per_step`` is the time one step of all ``--series`` series takes at the measured rate.
Memory per series: ``traced_bytes`` is what tracemalloc sees allocated for ``MEMORY_SERIES``
warmed-up series (for the per-series path, clones of the warmed-up pilots), ``pickled_bytes`` the
size of their pickled state. The process is pinned to one CPU (``os.sched_setaffinity``), so
``points_per_s`` is per core. The machine may be shared: rates are noisy, compare them within a run.

Usage: python bench/detectors.py [--series 100000] [--steps 20] [--detector NAME ...] [--budget 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    # Run as `python bench/detectors.py`: make `bench` importable from the project root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vigil.detectors.backlog import QueueBacklog, QueueBacklogBatch
from vigil.detectors.base import AnyDetector, VectorDetector
from vigil.detectors.registry import DETECTORS, make
from vigil.detectors.rolling_mad import RollingMAD, RollingMADBatch
from vigil.detectors.seasonal_baseline import SeasonalBaseline
from vigil.detectors.seasonal_baseline_batch import SeasonalBaselineBatch

BATCH_VERSIONS: dict[type, Callable[..., VectorDetector]] = {
    RollingMAD: RollingMADBatch,
    SeasonalBaseline: SeasonalBaselineBatch,
    QueueBacklog: QueueBacklogBatch,
}
T0 = 1_700_000_000.0
STEP = 60.0  # seconds between points
PILOT = 50  # series warmed up for real; the measured per-series detectors are clones of them
MEMORY_SERIES = 500
SEED = 7
TEMPLATES = 20


def scalar_values(step: int, n: int) -> np.ndarray:
    """Latency-like: a daily cycle, noise and a few spikes; every series alike, so clones fit."""
    rng = np.random.default_rng([SEED, step])
    values = 100 + 10 * np.sin(2 * np.pi * step * STEP / 86_400) + rng.normal(0, 2, n)
    values[rng.random(n) < 0.001] += 30
    return values


def depth_values(step: int, n: int) -> np.ndarray:
    """Queue depths around 20 messages."""
    return 20 + np.random.default_rng([SEED, step]).integers(-3, 4, n).astype(float)


def points(kind: str, name: str, step: int, n: int) -> list[Any]:
    """One step's inputs for ``n`` series, in the form ``score_one`` takes."""
    rng = np.random.default_rng([SEED, step])
    if kind == "scalar":
        return (depth_values if name == "backlog" else scalar_values)(step, n).tolist()
    if kind == "vector":
        load = rng.normal(0, 1, (n, 1))
        z = load * np.array([1.0, 0.3, 0.6, 0.8]) + 0.6 * rng.normal(0, 1, (n, 4))
        return list(np.array([500.0, 0.01, 0.2, 0.5]) + np.array([50.0, 0.002, 0.02, 0.05]) * z)
    if kind == "counts":
        counts = rng.poisson(np.geomspace(1, 100, TEMPLATES), (n, TEMPLATES)).tolist()
        return [{f"T{k}": float(c) for k, c in enumerate(row) if c} for row in counts]
    if kind == "events":
        total = rng.poisson(300, n)
        bad = rng.binomial(total, 0.001)
        return [(float(b), float(t)) for b, t in zip(bad, total, strict=True)]
    raise ValueError(f"no input generator for input kind {kind!r}")


def feed(detectors: list[Any], kind: str, name: str, steps: range) -> float:
    """score_one + learn_one for every detector at every step; seconds spent in the detectors."""
    spent = 0.0
    for step in steps:
        xs, t = points(kind, name, step, len(detectors)), T0 + STEP * step
        started = time.perf_counter()
        for detector, x in zip(detectors, xs, strict=True):
            detector.score_one(x, t)
            detector.learn_one(x, t)
        spent += time.perf_counter() - started
    return spent


def traced_bytes(build: Callable[[], Any], count: int) -> float:
    """Bytes tracemalloc sees held by what ``build`` returns, per series (``count`` of them)."""
    gc.collect()
    tracemalloc.start()
    kept = build()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return held / count


def per_series(name: str, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    pilots = [make(name) for _ in range(min(PILOT, args.series))]
    feed(pilots, kind, name, range(args.series_warmup))
    measured = range(args.series_warmup, args.series_warmup + args.steps)
    blobs = [pickle.dumps(d) for d in pilots]
    cost = feed(pilots, kind, name, measured) / (len(pilots) * args.steps)
    series = int(min(args.series, max(len(pilots), args.budget / (cost * args.steps))))
    clones = [pickle.loads(blobs[i % len(blobs)]) for i in range(series)]
    seconds = feed(clones, kind, name, measured)
    del clones
    memory = min(MEMORY_SERIES, args.series)
    rate = series * args.steps / seconds
    return {
        "series": series,
        "points": series * args.steps,
        "seconds": round(seconds, 3),
        "points_per_s": round(rate),
        "seconds_per_step": round(args.series / rate, 3),
        "traced_bytes_per_series": round(
            traced_bytes(lambda: [pickle.loads(blobs[i % len(blobs)]) for i in range(memory)], memory)
        ),
        "pickled_bytes_per_series": round(float(np.mean([len(b) for b in blobs]))),
    }


def batch_values(name: str, step: int, n: int) -> np.ndarray:
    return (depth_values if name == "backlog" else scalar_values)(step, n)


def run_batch(detector: VectorDetector, name: str, steps: range, n: int) -> float:
    spent = 0.0
    for step in steps:
        x, t = batch_values(name, step, n), T0 + STEP * step
        started = time.perf_counter()
        detector.score_many(x, t)
        detector.learn_many(x, t)
        spent += time.perf_counter() - started
    return spent


def batch(name: str, factory: Callable[..., VectorDetector], args: argparse.Namespace) -> dict[str, Any]:
    n = args.series
    detector = factory(n)
    run_batch(detector, name, range(args.warmup), n)
    seconds = run_batch(detector, name, range(args.warmup, args.warmup + args.steps), n)
    pickled = len(pickle.dumps(detector)) / n
    del detector
    memory = min(MEMORY_SERIES, n)

    def warmed() -> VectorDetector:
        small = factory(memory)
        run_batch(small, name, range(args.warmup), memory)
        return small

    rate = n * args.steps / seconds
    return {
        "class": factory.__name__,
        "series": n,
        "points": n * args.steps,
        "seconds": round(seconds, 3),
        "points_per_s": round(rate),
        "seconds_per_step": round(n / rate, 3),
        "traced_bytes_per_series": round(traced_bytes(warmed, memory)),
        "pickled_bytes_per_series": round(pickled),
    }


def bench(name: str, args: argparse.Namespace) -> dict[str, Any]:
    detector: AnyDetector = make(name)
    kind = str(getattr(detector, "input_kind", "scalar"))
    result: dict[str, Any] = {"input_kind": kind, "per_series": per_series(name, kind, args)}
    factory = BATCH_VERSIONS.get(type(detector))
    if factory is not None:
        result["batch"] = batch(name, factory, args)
        result["batch_speedup"] = round(
            result["batch"]["points_per_s"] / result["per_series"]["points_per_s"], 1
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=100_000, help="series per detector")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per series")
    parser.add_argument("--warmup", type=int, default=120, help="untimed steps before, batch path")
    parser.add_argument(
        "--series-warmup", type=int, default=500, help="untimed steps before, per-series pilots"
    )
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of timed per-series steps")
    parser.add_argument("--detector", action="append", choices=sorted(DETECTORS), help="default: all")
    args = parser.parse_args()
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    started = time.perf_counter()
    results = {name: bench(name, args) for name in args.detector or sorted(DETECTORS)}
    report = {
        "series": args.series,
        "steps": args.steps,
        "warmup_steps": {"batch": args.warmup, "per_series": args.series_warmup},
        "cpu": f"pinned to CPU {cpu}: figures are per core",
        "detectors": results,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
