"""`vigil run` stopped (SIGTERM, as a deploy or a drain does) and started again keeps what it learned."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.private_alertmanager import wait_for
from tests.integration.vigil_process import jobs_waiting, start_vigil
from vigil.stack.private_prometheus import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def exporter() -> Iterator[str]:
    with jobs_waiting(["billing", "search", "mail"]) as (url, _gauge):
        yield url


def series_count(port: int) -> int:
    try:
        return len(httpx.get(f"http://127.0.0.1:{port}/api/v1/signals", timeout=2).json())
    except (httpx.HTTPError, ValueError):
        return 0


def test_a_restarted_vigil_restores_its_checkpoint(tmp_path: Path, exporter: str) -> None:
    port = free_port()
    config = tmp_path / "vigil.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(tmp_path / "state"),
                "interval": "1s",
                "step": "1s",
                "server": {"host": "127.0.0.1", "port": port},
                "sources": {"scrape": {"targets": [{"url": exporter}]}},
                "signals": [
                    {
                        "name": "jobs_waiting",
                        "metric": {"name": "jobs_waiting", "kind": "gauge", "by": ["service"]},
                    },
                ],
                "alerting": {"enabled": False},
            }
        )
    )
    log = tmp_path / "vigil.log"
    first = start_vigil(config, log)
    try:
        # A few rounds at 1 s; the bound is room for a busy machine.
        wait_for("vigil to score the three series", lambda: series_count(port) == 3, timeout=90)
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
    checkpoint = tmp_path / "state" / "checkpoint-0-of-1.pickle"
    assert checkpoint.exists(), log.read_text()
    assert "checkpoint" in log.read_text()

    second = start_vigil(config, log)
    try:
        wait_for("vigil to answer again", lambda: series_count(port) == 3, timeout=90)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
    assert "restored 3 series" in log.read_text(), log.read_text()[-3000:]
