"""A private, real Alertmanager and a real vigil app on free ports, for tests of the alert path.

Private because these tests need second-scale group timings and an empty alert state; the shared
stack's Alertmanager is never touched.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from vigil.alerts.alertmanager_config import WEBHOOK_PATH, ReceiverSettings, Timing, build_config, render
from vigil.alerts.model import Alert
from vigil.alerts.webhook import NOTIFICATIONS_PATH, WebhookPayload
from vigil.demo_marketplace.catalog import SYSTEM
from vigil.stack.private_prometheus import free_port
from vigil.system import System

SECRET = "webhook-test-secret-4f1c"
TIMING = Timing(
    page_group_wait="1s",
    ticket_group_wait="1s",
    group_interval="2s",
    page_repeat_interval="1h",  # no reminders while a test runs: every notification is news
    ticket_repeat_interval="1h",
    resolve_timeout="5m",
)
GROUP_INTERVAL = 2.0


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something truthy; the bound is generous for a busy machine."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


@dataclass
class Vigil:
    url: str

    def notifications(self) -> list[WebhookPayload]:
        response = httpx.get(self.url + NOTIFICATIONS_PATH, timeout=5)
        response.raise_for_status()
        return [WebhookPayload.model_validate(n["payload"]) for n in response.json()]

    def about(self, service: str) -> list[WebhookPayload]:
        """Notifications with an alert of ``service`` (grouped per incident, or per service outside one)."""
        return [n for n in self.notifications() if any(a.labels.get("service") == service for a in n.alerts)]


@dataclass
class Alertmanager:
    url: str

    def post(self, *alerts: Alert) -> None:
        response = httpx.post(f"{self.url}/api/v2/alerts", json=[a.to_api() for a in alerts], timeout=5)
        assert response.status_code == 200, response.text

    def alerts(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v2/alerts", timeout=5)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result


@contextmanager
def serve(app: FastAPI) -> Iterator[Vigil]:
    """``app`` served by uvicorn on a free port, in a thread, for the duration of the block."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for("vigil's server", lambda: server.started, timeout=10)
    try:
        yield Vigil(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def running_alertmanager(home: Path, config: str, port: int | None = None) -> Iterator[Alertmanager]:
    """The real ``prometheus-alertmanager`` with ``config`` (YAML), data in ``home``, no clustering, on
    ``port`` (default: a free one; the same port and home again: the same Alertmanager restarted)."""
    binary = shutil.which("prometheus-alertmanager")
    assert binary is not None, "prometheus-alertmanager is not installed (`vigil stack install`)"
    (home / "alertmanager.yml").write_text(config)
    port = port or free_port()
    log = (home / "alertmanager.log").open("a")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={home / 'alertmanager.yml'}",
            f"--storage.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, (home / "alertmanager.log").read_text()
        try:
            return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for("Alertmanager to be ready", ready)
        yield Alertmanager(url)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@contextmanager
def alertmanager_calling(
    app: FastAPI, tmp_path: Path, system: System = SYSTEM, timing: Timing = TIMING
) -> Iterator[tuple[Vigil, Alertmanager]]:
    """``app`` served (it must include vigil's webhook router on ``SECRET``), and a private Alertmanager
    configured for ``system`` whose receivers call its webhook. The app comes first: Alertmanager must
    know the webhook's URL."""
    with serve(app) as vigil:
        secret = tmp_path / "secret"
        secret.write_text(SECRET)
        receivers = ReceiverSettings(vigil_url=vigil.url + WEBHOOK_PATH, vigil_secret_file=secret)
        (tmp_path / "am").mkdir()
        config = render(build_config(receivers, timing, system=system))
        with running_alertmanager(tmp_path / "am", config) as am:
            yield vigil, am
