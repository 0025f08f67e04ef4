"""Smoke test of bench/engine.py: a tiny run prints the figures the issue asks for, as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_engine_smoke() -> None:
    command = [sys.executable, "bench/engine.py", "--series", "50", "120", "--rounds", "2", "--history", "5"]
    command += ["--memory-series", "5", "--fit-series", "4", "--replay-series", "1"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    runs = [(r["series"], r["path"]) for r in report["results"]]
    assert runs == [(50, "batched"), (50, "point_by_point"), (120, "batched"), (120, "point_by_point")]
    assert all(r["speedup_vs_point_by_point"] > 0 for r in report["results"][::2])
    for figures in report["results"]:
        assert figures["points_per_s"] > 0
        assert figures["tick_s"] > 0
        assert figures["export_s"] > 0
    assert report["memory"]["bytes_per_series"] > 0
    assert report["fit"]["points_per_series"] == 7 * 86_400 / 15
    assert report["fit"]["fit_7d_10k_series_s"] > 0
    assert report["fit"]["replay_7d_10k_series_s"] > 0
