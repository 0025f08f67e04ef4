"""The fault matrix's replay end to end: a recording's TSDB served by a real Prometheus, every case run
through vigil's engine, alert rule and incidents, judged, and summed up per seed group.

The recording is made here, not on the marketplace: series written as OpenMetrics and turned into TSDB
blocks by ``promtool`` (what a snapshot holds too), with a manifest of two cases: a fault in the
catalog, and a fault-free stretch. Every answer is known.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from bench.detection_replay import replay_recording
from tests.integration.private_prometheus import History, openmetrics

pytestmark = pytest.mark.integration

STEP = 5.0


def _latency(service: str, start: float, end: float, fault: tuple[float, float] | None) -> History:
    samples = []
    for k in range(round((end - start) / STEP) + 1):
        t = start + k * STEP
        value = 0.1 + 0.01 * math.sin(k * 1.7) + (0.005 if service == "cart" else 0.0)
        if fault is not None and fault[0] <= t < fault[1]:
            value = 1.0  # ten times its normal p99
        samples.append((t, value))
    return History("p99_seconds", {"service": service}, samples)


def _record(directory: Path, histories: list[History]) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed (`vigil stack install`)"
    source = directory / "history.om"
    source.write_text(openmetrics(histories))
    done = subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--quiet",
            str(source),
            str(directory / "prometheus"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _case(case_id: str, seed: int, started: float, ended: float, truth: dict | None) -> dict:
    fault = truth["fault"] if truth else None
    severity, phase = ("severe", "peak") if truth else ("", "")
    return {
        "id": case_id,
        "seed": seed,
        "fault": fault,
        "severity": severity,
        "phase": phase,
        "target": None,
        "params": {},
        "started": started,
        "ended": ended,
        "ground_truth": truth,
    }


def test_a_recording_is_replayed_through_vigil_and_judged(tmp_path: Path) -> None:
    t0 = math.floor(time.time() / 3600) * 3600 - 3 * 3600  # whole hours back: inside one TSDB block range
    fault = (t0 + 300, t0 + 420)
    quiet = (t0 + 700, t0 + 1300)
    histories = [
        _latency("catalog", t0, quiet[1], fault),
        _latency("cart", t0, quiet[1], None),
    ]
    _record(tmp_path, histories)
    truth = {"fault": "catalog-slow-sql", "service": "catalog", "start": fault[0], "end": fault[1]}
    manifest = {"cases": [_case("c-fault", 3, t0, t0 + 600, truth), _case("c-quiet", 4, *quiet, None)]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    config = tmp_path / "vigil.yaml"
    signal = {"name": "p99", "query": "max by (service) (p99_seconds)", "detector": {"kind": "rolling_mad"}}
    config.write_text(yaml.safe_dump({"signals": [signal], "sources": {"prometheus": {"url": "unused"}}}))

    report = replay_recording(tmp_path, config, report_seeds=[4], say=lambda _: None)

    faulty, calm = report["cases"]
    assert faulty["case"] == "c-fault"
    # at the demo's pace: 5 s rounds and `for: 20s`, so the alert fires 20-30 s after the jump
    assert 15 <= faulty["vigil_after_s"] <= 35, faulty
    assert (faulty["vigil_about"], faulty["likely_cause"], faulty["culprit_rank"]) == (
        "catalog",
        "catalog",
        1,
    )
    assert faulty["false_alerts"] == []
    assert faulty["breach_after_s"] is None  # the marketplace's SLO series are not in this recording
    assert (faulty["notifications"], faulty["resolutions"]) == (1, 1)  # told once, then resolved
    assert faulty["logs"] is None  # none exported beside this recording: Prometheus' signals alone
    assert calm["false_alerts"] == []
    assert report["summary"]["alerted"] == 1.0
    assert report["summary_report_seeds"]["faults"] == 0  # seed 4 holds only the quiet stretch
    assert report["summary_tuning_seeds"]["culprit_top1"] == 1.0
