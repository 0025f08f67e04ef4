"""Replay a recorded fault matrix through vigil and sum it up.

The recording's TSDB snapshot is copied to a temporary directory and served by a private ``prometheus``
(scraping nothing, on a free loopback port). Every case is replayed from its own start, as a fresh
``vigil run`` at the demo's pace would have watched it (detectors learn normal in the case's steady
phase), through ``vigil.backtest`` (the engine, the config's alert rule and incident tracker), then
judged (``bench/detection_judge.py``). A case with its logs exported beside the recording replays the
log signals too (``vigil.backtest_logs``: its documents answer the log collector's reads); a case
without them is replayed from Prometheus alone, and its row says so (``logs: null``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.detection_judge import judge
from bench.detection_record import logs_of, read_manifest
from vigil.backtest import Overrides, run_backtest, select_signals
from vigil.backtest_faults import Fault
from vigil.backtest_logs import RecordedLogs
from vigil.collectors.prometheus_client import PrometheusClient
from vigil.config import VigilConfig, read_config
from vigil.demo.vigil_process import demo_config
from vigil.stack.private_prometheus import serve_tsdb
from vigil.stack.settings import StackSettings


@contextmanager
def served_tsdb(snapshot: Path, timeout: float = 120.0, port: int = 0) -> Iterator[str]:
    """A private Prometheus over a copy of ``snapshot`` (the recording stays untouched); yields its URL."""
    if not snapshot.is_dir():
        raise FileNotFoundError(f"{snapshot}: no TSDB snapshot (the recording did not finish)")
    with tempfile.TemporaryDirectory(prefix="vigil-replay-") as home:
        data = Path(home) / "data"
        shutil.copytree(snapshot, data)
        with serve_tsdb(data, Path(home), port=port, timeout=timeout) as url:
            yield url


def ground_truth_lines(manifest: dict[str, Any]) -> str:
    """The recording's faults as ``vigil backtest --ground-truth`` reads them (JSON lines)."""
    records = [c["ground_truth"] for c in manifest["cases"] if c.get("ground_truth")]
    return "".join(json.dumps(r) + "\n" for r in records)


def paced_config(path: Path, workdir: Path) -> VigilConfig:
    """``path`` at the demo's pace, exactly as ``vigil demo`` runs it (fresh detectors, 5 s steps)."""
    return VigilConfig.model_validate(
        demo_config(read_config(path), workdir=workdir, settings=StackSettings())
    )


def replay_recording(
    directory: Path,
    config_path: Path,
    *,
    report_seeds: Sequence[int] | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    manifest = read_manifest(directory)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vigil-replay-state-") as work:
        config = paced_config(config_path, Path(work))
        signals = select_signals(config, None)
        with served_tsdb(directory / "prometheus") as url, PrometheusClient(url) as client:
            for case in manifest["cases"]:
                truth = case.get("ground_truth")
                faults = (
                    [Fault(truth["fault"], truth["service"], truth["start"], truth["end"])] if truth else []
                )
                began = time.monotonic()
                path = logs_of(directory, case["id"])
                logs = RecordedLogs.load(path) if path.exists() else None
                result = run_backtest(
                    config, client, signals, case["started"], case["ended"], Overrides(), faults, logs=logs
                )
                row = judge(case, result, client)
                row["logs"] = len(logs) if logs is not None else None
                row["replay_s"] = round(time.monotonic() - began, 1)
                say(f"{case['id']}: vigil {row.get('vigil_after_s')}, breach {row.get('breach_after_s')}")
                rows.append(row)
    held_out = set(report_seeds or [])
    report: dict[str, Any] = {"recording": str(directory), "config": str(config_path), "cases": rows}
    report["summary"] = summarise(rows)
    if held_out:
        report["summary_report_seeds"] = summarise([r for r in rows if r["seed"] in held_out])
        report["summary_tuning_seeds"] = summarise([r for r in rows if r["seed"] not in held_out])
    return report


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    faults = [r for r in rows if r["fault"]]
    breaking = [r for r in faults if r.get("in_time") is not None]
    alerted = [r for r in faults if r.get("vigil_after_s") is not None]
    statics = [r for r in faults if r.get("static_after_s") is not None]
    surges = [r for r in rows if not r["fault"]]
    quiet_h = sum(r["fault_free_s"] for r in rows) / 3600
    false = sum(len(r["false_alerts"]) for r in rows)

    def share(part: int, whole: int) -> float | None:
        return round(part / whole, 3) if whole else None

    return {
        "faults": len(faults),
        "faults_breaking_an_slo": len(breaking),
        "recall_in_time": share(sum(bool(r["in_time"]) for r in breaking), len(breaking)),
        "alerted": share(len(alerted), len(faults)),
        "culprit_top1": share(sum(r.get("culprit_rank") == 1 for r in alerted), len(alerted)),
        # of the faults a static rule at the SLO caught: vigil alerted no later than it
        "not_later_than_static": share(
            sum(r.get("lead_vs_static_s") is not None and r["lead_vs_static_s"] >= 0 for r in statics),
            len(statics),
        ),
        # raised or updated a page or ticket; and with the resolutions that closed them
        "max_notifications_per_incident": max((r.get("notifications", 0) for r in faults), default=0),
        "max_with_resolutions_per_incident": max(
            (r.get("notifications", 0) + r.get("resolutions", 0) for r in faults), default=0
        ),
        "false_alerts": false,
        "fault_free_hours": round(quiet_h, 3),
        "false_alerts_per_8h": round(false / quiet_h * 8, 2) if quiet_h else None,
        "false_alerts_in_surges": sum(len(r["false_alerts"]) for r in surges),
        # during or after a fault, about services it cannot reach: reported, not counted as false
        "unrelated_alerts": sum(r.get("unrelated_alerts", 0) for r in faults),
    }


def _s(value: Any, signed: bool = True) -> str:
    if isinstance(value, float):
        return f"{value:+.0f}" if signed else f"{value:g}"
    return "-" if value is None else str(value)


def summary_table(report: dict[str, Any]) -> list[Table]:
    cases = Table(title="fault matrix (s after the fault began; breach = first SLO broken)")
    columns = [
        "case",
        "breach",
        "static",
        "warning",
        "burn",
        "vigil",
        "in time",
        "cause",
        "rank",
        "notif+resolved",
        "false",
    ]
    for column in columns:
        cases.add_column(column)
    for r in report["cases"]:
        cases.add_row(
            r["case"],
            _s(r.get("breach_after_s")),
            _s(r.get("static_after_s")),
            _s(r.get("warning_after_s")),
            _s(r.get("burn_rate_after_s")),
            _s(r.get("vigil_after_s")),
            _s(r.get("in_time")),
            _s(r.get("likely_cause")),
            _s(r.get("culprit_rank")),
            f"{r['notifications']}+{r['resolutions']}" if "resolutions" in r else _s(r.get("notifications")),
            str(len(r["false_alerts"])),
        )
    totals = Table(title="summary")
    totals.add_column("figure")
    shown = [n for n in ("summary", "summary_report_seeds", "summary_tuning_seeds") if n in report]
    for name in shown:
        totals.add_column({"summary": "all seeds"}.get(name, name.removeprefix("summary_").replace("_", " ")))
    for key in report["summary"]:
        totals.add_row(key, *(_s(report[n][key], signed=False) for n in shown))
    return [cases, totals]
