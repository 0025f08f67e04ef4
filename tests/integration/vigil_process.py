"""`vigil run` as a real subprocess on the local stack (on a free port), registered with Prometheus."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import MetricsHandler

from vigil.demo import vigil_process
from vigil.stack import Stack
from vigil.stack.private_prometheus import free_port


@contextlib.contextmanager
def running_vigil(stack: Stack, config: dict[str, Any], workdir: Path) -> Iterator[tuple[int, Path]]:
    """Run vigil with ``config`` (its server and register_targets filled in); yields (port, targets file).

    The targets file is one of Prometheus' file_sd files, so Prometheus scrapes this vigil's /metrics.
    """
    port = free_port()
    targets = stack.settings.home / "prometheus" / "targets" / "vigil" / f"vigil-test-{port}.json"
    try:
        with vigil_process.running_vigil(config, workdir, port=port, targets=targets):
            yield port, targets
    finally:
        log = workdir / "vigil.log"
        if log.exists():
            print(log.read_text(errors="replace")[-3000:])


def start_vigil(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """``vigil run --config config``, its output appended to ``log`` (a restart adds to the same log)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "vigil.cli", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@contextlib.contextmanager
def jobs_waiting(services: Sequence[str], start: float = 10.0) -> Iterator[tuple[str, Gauge]]:
    """A real /metrics endpoint with a ``jobs_waiting`` gauge per service; yields (URL, gauge)."""
    registry = CollectorRegistry()
    gauge = Gauge("jobs_waiting", "jobs waiting", ["service"], registry=registry)
    for service in services:
        gauge.labels(service).set(start)
    server = ThreadingHTTPServer(("127.0.0.1", 0), MetricsHandler.factory(registry))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics", gauge
    finally:
        server.shutdown()
        server.server_close()
