"""Act out a fault matrix on the real stack, once, and keep what it recorded.

Each case is played on the running marketplace as the demo plays a scenario: wait until an earlier
case's trouble has drained (queues empty, no server errors for a minute), start the Locust sale, inject
the case's fault at its time, stop the load. vigil does not run: the recording is judged later by
replaying it through vigil's engine (``bench/detection.py replay``), with any configuration.

A recording directory holds ``manifest.json`` (the cases, when each ran, the injector's ground truth,
written after every case: recording again into the same directory plays only the cases it lacks),
``logs/<case>.jsonl.gz`` (the case's Elasticsearch documents, exported after it: ``record_logs`` exports
them later for a recording that lacks them, while Elasticsearch still holds them) and, at the end,
``prometheus/``: a snapshot of the stack's TSDB taken through Prometheus' admin API.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from elasticsearch import Elasticsearch

from bench.detection_plan import FAULT_FOR, PHASES, Case
from vigil.backtest_logs import export_logs
from vigil.collectors.prometheus_client import PrometheusClient
from vigil.demo.run import ensure_running, settle
from vigil.demo_marketplace.faults import Injector
from vigil.demo_marketplace.loadgen.runner import start_load, stop_load
from vigil.demo_marketplace.runner import Marketplace
from vigil.stack import Stack

MANIFEST = "manifest.json"
SCRAPE_STEP = 5.0  # the stack's scrape interval: the resolution the recording is judged at
LOG_INDEX = "logs-marketplace-*"  # where the marketplace's shipper writes its ECS documents


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: not a recording (run `bench/detection.py record`)")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    tmp = directory / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(directory / MANIFEST)


def record(
    cases: list[Case], out: Path, *, base_users: int = 20, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Play ``cases`` one after another on the local stack; returns the manifest written to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    if (out / "prometheus").exists():
        raise FileExistsError(f"{out} already holds a finished recording; choose another --out")
    manifest: dict[str, Any] = {
        "phases": PHASES.shape_params(),
        "fault_for": FAULT_FOR,
        "scrape_step": SCRAPE_STEP,
        "base_users": base_users,
        "cases": [],
    }
    if (out / MANIFEST).exists():  # an interrupted recording: keep its finished cases, play the rest
        manifest = read_manifest(out)
        done = {c["id"] for c in manifest["cases"]}
        say(f"resuming {out}: {len(done)} cases already recorded")
        cases = [c for c in cases if c.id not in done]
    stack = Stack()
    market = Marketplace(stack.settings, log=say)
    ensure_running(stack, market, say)
    for number, case in enumerate(cases, 1):
        with PrometheusClient(stack.settings.prometheus_url) as prometheus:
            settle(prometheus, say)
        say(f"[{number}/{len(cases)}] {case.id}")
        manifest["cases"].append(_play(case, market, out, base_users))
        _write_manifest(out, manifest)
        record_logs(out, stack.settings.elasticsearch_url, say, only=[case.id])
    say("taking a snapshot of Prometheus' TSDB...")
    manifest["prometheus"] = _snapshot(stack.settings.prometheus_url, stack.settings.home, out / "prometheus")
    _write_manifest(out, manifest)
    return manifest


def logs_of(directory: Path, case_id: str) -> Path:
    return directory / "logs" / f"{case_id}.jsonl.gz"


def record_logs(
    directory: Path,
    elasticsearch_url: str,
    say: Callable[[str], None] = print,
    *,
    index: str = LOG_INDEX,
    only: list[str] | None = None,
) -> int:
    """Export each recorded case's log documents (those it lacks, or ``only`` these) from Elasticsearch;
    returns how many were exported."""
    manifest = read_manifest(directory)
    total = 0
    with Elasticsearch(elasticsearch_url, request_timeout=60) as es:
        for case in manifest["cases"]:
            path = logs_of(directory, case["id"])
            if (only is not None and case["id"] not in only) or (only is None and path.exists()):
                continue
            count = export_logs(es, index, case["started"], case["ended"], path)
            if count == 0:
                path.unlink()  # Elasticsearch no longer holds them (or never did): no file, not an empty one
                say(f"{case['id']}: no log documents in {index} (retention?); the replay reads none")
                continue
            say(f"{case['id']}: {count} log documents -> {path}")
            total += count
    return total


def _play(case: Case, market: Marketplace, out: Path, base_users: int) -> dict[str, Any]:
    load = start_load(
        market.url("gateway"),
        shape="black_friday",
        base_users=base_users,
        duration_s=PHASES.length_s,
        seed=case.seed,
        shape_params=PHASES.shape_params(),
        csv_prefix=out / "load" / case.id,
    )
    started = time.time()
    stop = threading.Event()
    truth: list[dict[str, Any]] = []

    def inject() -> None:
        assert case.fault is not None
        assert case.fault_at is not None
        if stop.wait(max(0.0, started + case.fault_at - time.time())):
            return
        injector = Injector(market, stop=stop)
        truth.append(injector.inject(case.fault, FAULT_FOR, dict(case.params), service=case.target))

    thread = threading.Thread(target=inject, name="fault", daemon=True) if case.fault else None
    try:
        if thread is not None:
            thread.start()
        while time.time() < started + PHASES.length_s and load.poll() is None:
            time.sleep(1.0)
    finally:
        stop.set()  # an interrupted case clears its fault (flags, locks, pauses) before leaving
        if thread is not None:
            thread.join(timeout=30)
        result = stop_load(load)
    return {
        **case.to_json(),
        "started": started,
        "ended": time.time(),
        "ground_truth": truth[0] if truth else None,
        "load": {"requests": result.requests, "failures": result.failures},
    }


def _snapshot(prometheus_url: str, stack_home: Path, into: Path) -> str:
    """Snapshot the TSDB (hard links under the stack's data/snapshots), copy it to ``into``, drop it."""
    answer = httpx.post(f"{prometheus_url}/api/v1/admin/tsdb/snapshot", timeout=120)
    if answer.status_code == 404 or answer.status_code == 405:
        raise RuntimeError(
            "Prometheus' admin API is off: restart the stack's Prometheus (`vigil stack down && vigil stack "
            "up`) so it runs with --web.enable-admin-api"
        )
    answer.raise_for_status()
    name = answer.json()["data"]["name"]
    source = stack_home / "prometheus" / "data" / "snapshots" / name
    shutil.copytree(source, into)
    shutil.rmtree(source)
    return name
