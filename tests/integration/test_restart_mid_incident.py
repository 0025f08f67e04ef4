"""`vigil run` killed -9 in the middle of an incident and started again carries on where it was.

A real exporter, a real `vigil run` process, a real (private) Alertmanager calling a real webhook. One
service's queue jumps, vigil pages, and is killed with SIGKILL: no shutdown work, only what it wrote
as it went (the checkpoint, the outbox and the alert memory). Started again it must score the same
series where it left off, keep the incident open with its likely cause, and page nobody a second
time; when the queue drains, exactly one resolution goes out.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import Gauge

from tests.integration.private_alertmanager import (
    GROUP_INTERVAL,
    SECRET,
    Alertmanager,
    Vigil,
    alertmanager_calling,
    free_port,
    wait_for,
)
from tests.integration.vigil_process import jobs_waiting, start_vigil
from vigil.alerts.webhook import NotificationStore, webhook_router
from vigil.runtime.engine import Engine
from vigil.runtime.server import create_app

pytestmark = pytest.mark.integration
SERVICES = ("billing", "search", "mail")


@pytest.fixture
def queue() -> Iterator[tuple[str, Gauge]]:
    with jobs_waiting(SERVICES) as exporter:
        yield exporter


@pytest.fixture
def webhook(tmp_path: Path) -> Iterator[tuple[Vigil, Alertmanager]]:
    """The on-call side: a private Alertmanager calling a webhook that keeps every notification."""
    app = create_app(Engine([], lambda _key: None), routers=[webhook_router(SECRET, NotificationStore())])
    with alertmanager_calling(app, tmp_path) as (receiver, am):
        yield receiver, am


def write_config(tmp_path: Path, port: int, exporter: str, alertmanager: str) -> Path:
    config = tmp_path / "vigil.yaml"
    detector = {"kind": "rolling_mad", "window": 600, "warmup": 10, "min_deviation": 1.0}
    settings: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "interval": "1s",
        "step": "1s",
        "checkpoint_interval": "2s",
        "server": {"host": "127.0.0.1", "port": port},
        "sources": {"scrape": {"targets": [{"url": exporter}]}},
        "signals": [
            {
                "name": "jobs_waiting",
                "severity": "page",
                "metric": {"name": "jobs_waiting", "kind": "gauge", "by": ["service"]},
                "detector": detector,
            }
        ],
        "alerting": {
            "alertmanager_urls": [alertmanager],
            "for": "0s",
            "keep_firing_for": "3s",
            "resend_interval": "5s",
        },
    }
    config.write_text(yaml.safe_dump(settings))
    return config


def billing(port: int) -> dict[str, Any] | None:
    try:
        signals = httpx.get(f"http://127.0.0.1:{port}/api/v1/signals", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return None
    return next((s for s in signals if s["labels"].get("service") == "billing"), None)


def incidents(port: int) -> list[dict[str, Any]]:
    try:
        return list(httpx.get(f"http://127.0.0.1:{port}/api/v1/incidents", timeout=2).json())
    except (httpx.HTTPError, ValueError):
        return []


def paged(receiver: Vigil, status: str) -> list[Any]:
    return [n for n in receiver.about("billing") if n.status == status]


def test_vigil_killed_mid_incident_carries_on_and_pages_nobody_twice(
    tmp_path: Path, queue: tuple[str, Gauge], webhook: tuple[Vigil, Alertmanager]
) -> None:
    exporter, gauge = queue
    receiver, am = webhook
    port = free_port()
    config, log = write_config(tmp_path, port, exporter, am.url), tmp_path / "vigil.log"

    first = start_vigil(config, log)
    try:
        # 45 s of normal history: the median must stay normal while the queue stays high through the page,
        # the crash and the rounds after it (about 20 s). The bound is room for a busy machine.
        wait_for("the detectors to warm up", lambda: (billing(port) or {}).get("points", 0) >= 45, 180)
        gauge.labels("billing").set(400)  # the billing queue backs up
        (page,) = wait_for("the page about billing", lambda: paged(receiver, "firing"), 120)
        (incident,) = wait_for("vigil's incident", lambda: incidents(port), 30)
        assert incident["likely_cause"] == "billing"
        started = {a["labels"]["service"]: a["startsAt"] for a in am.alerts()}["billing"]
        time.sleep(3)  # at least one checkpoint (every 2 s) after the page
    finally:
        first.send_signal(signal.SIGKILL)  # a crash: no shutdown work at all
        first.wait(timeout=30)

    killed_at = time.time()
    second = start_vigil(config, log)
    try:
        # Rounds of the new process, scored and handed to Alertmanager: five of them, each 1 s apart.
        wait_for(
            "the restarted vigil to score new points",
            lambda: (billing(port) or {}).get("timestamp", 0) > killed_at + 5,
            120,
        )
        time.sleep(3 * GROUP_INTERVAL)  # room for Alertmanager to notify, were there anything new
        series = billing(port)
        assert series is not None
        assert series["anomaly_score"] > 1, series  # the learned normal survived
        assert series["expected"] == pytest.approx(10, abs=1)
        (carried_on,) = incidents(port)
        assert (carried_on["id"], carried_on["status"], carried_on["likely_cause"]) == (
            incident["id"],
            "firing",
            "billing",
        )
        assert {a["labels"]["service"]: a["startsAt"] for a in am.alerts()}["billing"] == started
        assert paged(receiver, "firing") == [page]  # told once, not again after the restart

        gauge.labels("billing").set(10)  # the queue drains
        wait_for("the resolution", lambda: paged(receiver, "resolved"), 120)
        time.sleep(3 * GROUP_INTERVAL)
        assert len(paged(receiver, "resolved")) == 1
        assert paged(receiver, "firing") == [page]
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
    text = log.read_text()
    assert "restored 3 series" in text, text[-3000:]
    assert "1 firing alerts, 1 open incidents taken back" in text, text[-3000:]
