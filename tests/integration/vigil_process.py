"""`vigil run` as a real subprocess on the local stack, registered with Prometheus like a deployed one."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.integration.private_alertmanager import free_port
from vigil.stack import Stack


@contextlib.contextmanager
def running_vigil(stack: Stack, config: dict[str, Any], workdir: Path) -> Iterator[tuple[int, Path]]:
    """Run vigil with ``config`` (its server and register_targets filled in); yields (port, targets file).

    The targets file is one of Prometheus' file_sd files, so Prometheus scrapes this vigil's /metrics.
    """
    port = free_port()
    targets = stack.settings.home / "prometheus" / "targets" / "vigil" / f"vigil-test-{port}.json"
    config = {**config, "server": {"host": "127.0.0.1", "port": port}, "register_targets": str(targets)}
    path = workdir / "vigil.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    log = workdir / "vigil.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "vigil.cli", "run", "--config", str(path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
    try:
        yield port, targets
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        targets.unlink(missing_ok=True)  # vigil removes it on a clean exit; a killed one must not leave it
        print(log.read_text(errors="replace")[-3000:])
