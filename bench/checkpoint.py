"""Benchmark checkpoints (``vigil.runtime.checkpoint``): size and time per 10k series; prints JSON.

An engine learns ``--points`` points of every series (half rolling MAD, half seasonal baseline, the
derived signals' two most common detectors), then its checkpoint is written and restored into a fresh
engine, side by side for each series count in one run. Figures per 10k series: bytes on disk, write
seconds (pickle + fsync + rename) and restore seconds.

Usage: python bench/checkpoint.py [--series 10000 100000] [--points 200]. Needs no network and no stack.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from vigil.collectors.model import Collection, Point, SeriesKey
from vigil.config import VigilConfig
from vigil.runtime.build import detector_factory, detector_specs
from vigil.runtime.checkpoint import Checkpoint, spec_digest
from vigil.runtime.engine import Engine

STEP = 15.0


class Synthetic:
    name = "synthetic"

    def __init__(self, series: int, points: int) -> None:
        self.keys = [
            SeriesKey("latency" if i % 2 else "rate", (("service", f"s{i // 2}"),)) for i in range(series)
        ]
        self.points = points

    def collect(self, now: float) -> Collection:
        series = {
            key: [Point(STEP * t, 1.0 + 0.1 * math.sin(t / 9 + n)) for t in range(self.points)]
            for n, key in enumerate(self.keys)
        }
        return Collection(self.name, series)


def config() -> VigilConfig:
    return VigilConfig.model_validate(
        {
            "sources": {"prometheus": {"url": "http://127.0.0.1:9"}},
            "signals": [
                {"name": "latency", "query": "q", "detector": {"kind": "rolling_mad"}},
                {"name": "rate", "query": "q", "detector": {"kind": "seasonal_baseline"}},
            ],
            "max_series": 1_000_000,
        }
    )


def measure(series: int, points: int, folder: Path) -> dict[str, Any]:
    settings = config()
    specs = {name: spec_digest(spec) for name, spec in detector_specs(settings).items()}
    engine = Engine([Synthetic(series, points)], detector_factory(settings), max_series=settings.max_series)
    engine.tick()
    checkpoint = Checkpoint(folder / f"checkpoint-{series}.pickle", specs)
    written = checkpoint.save(engine, time.time())
    fresh = Engine([], detector_factory(settings), max_series=settings.max_series)
    began = time.perf_counter()
    restored = checkpoint.restore(fresh, time.time())
    restore_s = time.perf_counter() - began
    assert restored.series == series, restored
    per_10k = 10_000 / series
    return {
        "series": series,
        "points_per_series": points,
        "bytes": written.bytes,
        "write_s": round(written.seconds, 3),
        "restore_s": round(restore_s, 3),
        "bytes_per_10k_series": round(written.bytes * per_10k),
        "write_s_per_10k_series": round(written.seconds * per_10k, 3),
        "restore_s_per_10k_series": round(restore_s * per_10k, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--points", type=int, default=200, help="points learned per series before writing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = [measure(n, args.points, Path(folder)) for n in args.series]
    print(json.dumps({"benchmark": "checkpoint", "results": results}, indent=2))


if __name__ == "__main__":
    main()
