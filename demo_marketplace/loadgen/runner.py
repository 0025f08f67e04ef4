"""Run the marketplace load in a separate ``locust`` process and read its CSV statistics.

Locust is never imported here: it monkey-patches the importing process with gevent. The load only
ever targets loopback addresses, and every run has a hard deadline, so it always ends.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import ipaddress
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from vigil.demo_marketplace.loadgen.shapes import make_shape

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
STARTUP_MARGIN_S = 30.0  # locust's own start-up and shutdown on top of the shape's duration
STOP_GRACE_S = 15.0  # after SIGINT, before the process group is killed
# `python -m locust`, with Ctrl-C restored first: a process started in the background by a
# non-interactive shell (CI, nohup, `cmd &`) inherits SIGINT *ignored*, and Python then never turns it
# into the KeyboardInterrupt locust stops cleanly on (writing its statistics).
LAUNCH = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('locust', run_name='__main__', alter_sys=True)"
)


class LoadError(RuntimeError):
    """The load generator could not run or produced no statistics."""


@dataclass(frozen=True)
class RouteStats:
    method: str
    name: str
    requests: int
    failures: int
    p50_ms: float | None  # None when there were no requests
    p99_ms: float | None
    rps: float


@dataclass(frozen=True)
class LoadResult:
    returncode: int
    timed_out: bool
    routes: dict[str, RouteStats]  # by request name (a route template)
    total: RouteStats | None  # Locust's "Aggregated" row
    csv_prefix: Path | None  # None when the files went to a temporary directory, now removed
    log_tail: str  # the end of locust's own output

    @property
    def requests(self) -> int:
        return self.total.requests if self.total else 0

    @property
    def failures(self) -> int:
        return self.total.failures if self.total else 0


class LoadProcess(subprocess.Popen[bytes]):
    """The running ``locust`` process, with where its results go and when it must have ended."""

    csv_prefix: Path
    log_file: Path
    deadline: float  # time.monotonic()
    _tempdir: tempfile.TemporaryDirectory[str] | None = None


def check_loopback(host: str) -> None:
    """Raise ``ValueError`` unless ``host`` is an http(s) URL on 127.0.0.0/8, ::1 or localhost."""
    parts = urlsplit(host)
    hostname = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not hostname:
        raise ValueError(f"load host must be an http(s) URL such as http://127.0.0.1:8000, got {host!r}")
    if hostname == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"refusing to send load to {hostname!r}: load tests only target loopback "
            "(127.0.0.0/8 or localhost)"
        )


def start_load(
    host: str,
    *,
    shape: str,
    base_users: int,
    duration_s: float,
    time_scale: float = 1.0,
    seed: int = 42,
    csv_prefix: Path | None = None,
    processes: int = 1,
    shape_params: Mapping[str, float] | None = None,
) -> LoadProcess:
    """Start locust headless in the background; collect it with :func:`stop_load` or :func:`wait_load`."""
    check_loopback(host)
    # validates
    make_shape(
        shape, base_users=base_users, duration_s=duration_s, time_scale=time_scale, params=shape_params
    )
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    if importlib.util.find_spec("locust") is None:
        raise LoadError("locust is not installed in this environment (pip install 'locust>=2.20')")
    tempdir = None
    if csv_prefix is None:
        tempdir = tempfile.TemporaryDirectory(prefix="vigil-load-")
        csv_prefix = Path(tempdir.name) / "load"
    csv_prefix = csv_prefix.resolve()
    csv_prefix.parent.mkdir(parents=True, exist_ok=True)
    log_file = csv_prefix.with_name(csv_prefix.name + ".log")
    command = [sys.executable, "-c", LAUNCH, "-f", str(LOCUSTFILE), "--headless", "--host", host]
    command += ["--only-summary", "--csv", str(csv_prefix), "--exit-code-on-error", "0"]
    if processes > 1:
        command += ["--processes", str(processes)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "VIGIL_LOAD_"))}
    env |= {
        "VIGIL_LOAD_SHAPE": shape,
        "VIGIL_LOAD_BASE_USERS": str(base_users),
        "VIGIL_LOAD_DURATION": str(duration_s),
        "VIGIL_LOAD_TIME_SCALE": str(time_scale),
        "VIGIL_LOAD_SEED": str(seed),
        "VIGIL_LOAD_PARAMS": json.dumps(dict(shape_params or {})),
    }
    with log_file.open("wb") as log:
        # cwd: locust reads locust.conf / pyproject.toml from its working directory; keep it isolated.
        process = LoadProcess(
            command,
            cwd=csv_prefix.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    process.csv_prefix, process.log_file, process._tempdir = csv_prefix, log_file, tempdir
    process.deadline = time.monotonic() + duration_s + STARTUP_MARGIN_S
    return process


def wait_load(process: LoadProcess) -> LoadResult:
    """Wait until the run ends by itself, or stop it at its deadline; then read its statistics."""
    try:
        process.wait(timeout=max(0.0, process.deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return stop_load(process, timed_out=True)
    return _result(process, timed_out=False)


def stop_load(process: LoadProcess, *, timed_out: bool = False) -> LoadResult:
    """Stop a run now (SIGINT, then SIGTERM, then SIGKILL for the whole process group); its statistics."""
    # Ctrl-C: while a shape runs headless, locust quits cleanly on SIGINT, writing its CSV files and
    # summary. On a busy machine it has been seen to sit through one; its SIGTERM handler shuts down too.
    for stop in (signal.SIGINT, signal.SIGTERM):
        if process.poll() is not None:
            break
        process.send_signal(stop)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_GRACE_S)
    return _result(process, timed_out=timed_out)


def run_load(
    host: str,
    *,
    shape: str,
    base_users: int,
    duration_s: float,
    time_scale: float = 1.0,
    seed: int = 42,
    csv_prefix: Path | None = None,
    processes: int = 1,
    shape_params: Mapping[str, float] | None = None,
) -> LoadResult:
    """Run a load shape against ``host`` to its end (at most ``duration_s`` plus a margin)."""
    process = start_load(
        host,
        shape=shape,
        base_users=base_users,
        duration_s=duration_s,
        time_scale=time_scale,
        seed=seed,
        csv_prefix=csv_prefix,
        processes=processes,
        shape_params=shape_params,
    )
    return wait_load(process)


def _result(process: LoadProcess, *, timed_out: bool) -> LoadResult:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # leftover workers of --processes, or a stuck master
    process.wait()
    stats_file = process.csv_prefix.with_name(process.csv_prefix.name + "_stats.csv")
    try:
        tail = process.log_file.read_text(errors="replace")[-3000:] if process.log_file.exists() else ""
        if not stats_file.exists():
            raise LoadError(f"locust (exit code {process.returncode}) wrote no statistics; its log:\n{tail}")
        routes, total = parse_stats_csv(stats_file)
        kept = None if process._tempdir else process.csv_prefix
        return LoadResult(process.returncode, timed_out, routes, total, kept, tail)
    finally:
        if process._tempdir is not None:
            process._tempdir.cleanup()


def _float(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None  # "N/A"


def parse_stats_csv(path: Path) -> tuple[dict[str, RouteStats], RouteStats | None]:
    """Per-name rows and the aggregated row of a Locust ``*_stats.csv`` file."""
    routes: dict[str, RouteStats] = {}
    total = None
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            requests = int(row["Request Count"])
            stats = RouteStats(
                method=row["Type"],
                name=row["Name"],
                requests=requests,
                failures=int(row["Failure Count"]),
                p50_ms=_float(row["50%"]) if requests else None,
                p99_ms=_float(row["99%"]) if requests else None,
                rps=float(row["Requests/s"]),
            )
            if stats.name == "Aggregated" and not stats.method:
                total = stats
            else:
                routes[stats.name] = stats
    return routes, total
