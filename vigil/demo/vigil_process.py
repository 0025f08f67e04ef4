"""`vigil run` as a real subprocess on the local stack, at the demo's pace, registered with Prometheus.

The demo runs vigil exactly as a user would (``vigil run --config``), with the repository's
``vigil.yaml`` sped up: signals every 5 s (the stack's scrape interval) instead of 15 s, and alert
timing shortened in proportion, so detectors warm up within the demo's steady phase.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
import yaml

from vigil.stack.settings import StackSettings

DEMO_TIMING = {"for": "20s", "keep_firing_for": "60s"}


class VigilStartError(RuntimeError):
    pass


def demo_config(
    base: dict[str, Any],
    *,
    workdir: Path,
    settings: StackSettings,
    pace: str = "5s",
    alertmanager_urls: list[str] | None = None,
) -> dict[str, Any]:
    """``base`` (a parsed vigil.yaml) at ``pace``: fresh detectors, the outbox in ``workdir``, alerts to
    ``alertmanager_urls`` (default: the stack's, whose webhook calls back to vigil)."""
    # Checkpoints every 30 s: a crash mid-run (`--crash-vigil-at`) restarts from recent learning.
    config = {**base, "interval": pace, "step": pace, "training_window": "0s", "checkpoint_interval": "30s"}
    config["signals"] = [{**s, "step": pace} if "step" in s else dict(s) for s in base.get("signals", [])]
    # Detectors learn from this run's steady phase only, not from the tail of an earlier run (its peak
    # or its fault) that Prometheus and Elasticsearch still hold.
    config["sources"] = {
        name: {**source, "initial_lookback": pace} if name in ("prometheus", "elasticsearch") else source
        for name, source in base.get("sources", {}).items()
    }
    alerting = {**base.get("alerting", {}), **DEMO_TIMING, "outbox": str(workdir / "outbox.sqlite")}
    if alertmanager_urls is not None:
        alerting["alertmanager_urls"] = alertmanager_urls
    elif settings.webhook_secret_file.exists():
        # The stack's Alertmanager sends its notifications back to vigil's webhook receiver.
        alerting["webhook_secret_file"] = str(settings.webhook_secret_file)
    config["alerting"] = alerting
    return config


class RunningVigil:
    """A ``vigil run`` process; ``crash_and_restart`` kills it -9 and starts it again on the same state."""

    def __init__(self, config_file: Path, log: Path, url: str, timeout: float) -> None:
        self.config_file, self.log, self.url, self.timeout = config_file, log, url, timeout
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "vigil.cli", "run", "--config", str(self.config_file)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
            )
        try:
            _wait_healthy(process, self.url, self.log, self.timeout)
        except BaseException:
            process.kill()
            process.wait()
            raise
        return process

    def crash_and_restart(self) -> None:
        """A crash (SIGKILL: no shutdown work) and a new process, as an orchestrator would restart it."""
        self.process.kill()
        self.process.wait()
        self.process = self._start()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def running_vigil(
    config: dict[str, Any], workdir: Path, *, port: int, targets: Path, timeout: float = 60.0
) -> Iterator[RunningVigil]:
    """Run vigil with ``config`` on ``port``, registered in Prometheus' file_sd ``targets``.

    On exit vigil is stopped (SIGTERM, then SIGKILL) and its targets file removed.
    """
    # Its own state directory: no checkpoint of another run is restored into this one.
    config = {
        "state_dir": str(workdir / "state"),
        **config,
        "server": {"host": "127.0.0.1", "port": port},
        "register_targets": str(targets),
    }
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "vigil.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    log = workdir / "vigil.log"
    log.write_bytes(b"")
    vigil = RunningVigil(path, log, f"http://127.0.0.1:{port}", timeout)
    try:
        yield vigil
    finally:
        vigil.stop()
        targets.unlink(missing_ok=True)  # vigil removes it on a clean exit; a killed one must not leave it


def _wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise VigilStartError(f"vigil exited with code {process.returncode}:\n{tail}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/healthz", timeout=2).status_code < 500:
                return
        time.sleep(0.5)
    raise VigilStartError(f"vigil did not answer on {url}/healthz within {timeout:.0f} s (log: {log})")
