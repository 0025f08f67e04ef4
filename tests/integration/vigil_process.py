"""`vigil run` as a real subprocess on the local stack (on a free port), registered with Prometheus."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.integration.private_alertmanager import free_port
from vigil.demo import vigil_process
from vigil.stack import Stack


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
