"""Smoke test of bench/detectors.py: a tiny run prints JSON with both paths for every registered detector."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from vigil.detectors.registry import DETECTORS

ROOT = Path(__file__).resolve().parents[2]
BATCHED = {"rolling_mad", "seasonal_baseline", "backlog"}


def test_bench_detectors_smoke() -> None:
    command = [sys.executable, "bench/detectors.py", "--series", "100", "--steps", "30"]
    command += ["--warmup", "20", "--series-warmup", "20", "--budget", "0.05"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["series"] == 100
    assert set(report["detectors"]) == set(DETECTORS)
    for name, figures in report["detectors"].items():
        per_series = figures["per_series"]
        assert 0 < per_series["series"] <= 100
        assert per_series["points"] == 30 * per_series["series"]
        assert per_series["points_per_s"] > 0
        assert per_series["traced_bytes_per_series"] > 0
        if name in BATCHED:
            assert figures["batch"]["series"] == 100
            assert figures["batch"]["points_per_s"] > 0
            assert figures["batch_speedup"] > 0
        else:
            assert "batch" not in figures
