"""`vigil run` while what it reads and whom it tells stop and come back, and while it is killed -9.

Real processes: a private Prometheus scraping a real exporter and a private Alertmanager calling a
real webhook are stopped and started again on the same port and data. Elasticsearch is the stack's,
cut off and restored by a loopback forwarder (a private one would cost a JVM start; stopping the
shared one would break the other tests). vigil must keep running, mark the outage, raise
``VigilSourceDown`` for the source (a ticket) and resolve it when the source is back; an alert raised
while Alertmanager is away, and vigil killed -9 before it could deliver it, reaches the on-call
engineer once, as the alert it was (its start kept), after both are back.
"""

from __future__ import annotations

import contextlib
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.netproxy import TcpForwarder
from tests.integration.private_alertmanager import (
    SECRET,
    TIMING,
    Vigil,
    running_alertmanager,
    serve,
    wait_for,
)
from tests.integration.vigil_process import jobs_waiting, start_vigil
from vigil.alerts.alertmanager_config import WEBHOOK_PATH, ReceiverSettings, build_config, render
from vigil.alerts.webhook import NotificationStore, WebhookAlert, webhook_router
from vigil.demo_marketplace.catalog import SYSTEM
from vigil.runtime.engine import Engine
from vigil.runtime.server import create_app
from vigil.stack import Stack
from vigil.stack.private_prometheus import free_port, serve_tsdb

pytestmark = pytest.mark.integration
DOWN = "VigilSourceDown"


class Restartable:
    """A service run by a context manager, stopped and started again at will."""

    def __init__(self, run: Callable[[], contextlib.AbstractContextManager[Any]]) -> None:
        self.run, self.stack = run, contextlib.ExitStack()

    def start(self) -> None:
        self.stack.enter_context(self.run())

    def stop(self) -> None:
        self.stack.close()


def down_alerts(receiver: Vigil, source: str, status: str) -> list[WebhookAlert]:
    """Every ``VigilSourceDown`` alert of ``source`` in ``status`` the on-call side was told of."""
    return [
        a
        for n in receiver.notifications()
        for a in n.alerts
        if a.labels.get("alertname") == DOWN and a.labels.get("source") == source and a.status == status
    ]


def health(port: int) -> dict[str, Any] | None:
    try:
        return dict(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json())
    except (httpx.HTTPError, ValueError):
        return None


def pending(port: int) -> float:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0.0
    samples = (s for family in text_string_to_metric_families(text) for s in family.samples)
    return next((s.value for s in samples if s.name == "vigil_outbox_pending" and not s.labels), 0.0)


def write_config(tmp_path: Path, port: int, prometheus: str, elasticsearch: str, alertmanager: str) -> Path:
    settings = {
        "state_dir": str(tmp_path / "state"),
        "interval": "1s",
        "step": "1s",
        "checkpoint_interval": "2s",
        "server": {"host": "127.0.0.1", "port": port},
        "sources": {
            "prometheus": {"url": prometheus, "timeout": "2s", "initial_lookback": "30s"},
            # An index of its own, never written: an empty answer is an answer. Short windows, so a short
            # look back: each window is one search, read in the round that finds it due.
            "elasticsearch": {
                "url": elasticsearch,
                "index": f"vigil-faults-{uuid.uuid4().hex}-*",
                "window": "2s",
                "initial_lookback": "10s",
            },
        },
        "signals": [{"name": "jobs_waiting", "query": "sum by (service) (jobs_waiting)", "step": "1s"}],
        "alerting": {
            "alertmanager_urls": [alertmanager],
            "resend_interval": "5s",
            "source_down_for": "3s",
        },
    }
    config = tmp_path / "vigil.yaml"
    config.write_text(yaml.safe_dump(settings))
    return config


@pytest.fixture
def receiver() -> Iterator[Vigil]:
    """The on-call side: a webhook that keeps every notification Alertmanager sends."""
    app = create_app(Engine([], lambda _key: None), routers=[webhook_router(SECRET, NotificationStore())])
    with serve(app) as vigil:
        yield vigil


def test_vigil_rides_out_its_sources_and_alertmanager_going_away_and_its_own_kill(
    tmp_path: Path, stack: Stack, receiver: Vigil
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    am_config = render(
        build_config(
            ReceiverSettings(vigil_url=receiver.url + WEBHOOK_PATH, vigil_secret_file=secret),
            TIMING,
            system=SYSTEM,
        )
    )
    (tmp_path / "am").mkdir()
    am_port, prom_port, port = free_port(), free_port(), free_port()
    alertmanager = Restartable(lambda: running_alertmanager(tmp_path / "am", am_config, port=am_port))
    elastic = TcpForwarder(("127.0.0.1", stack.settings.elasticsearch_port))
    with jobs_waiting(("billing",)) as (exporter, _gauge), contextlib.ExitStack() as cleanup:
        target = exporter.removeprefix("http://").split("/")[0]
        prometheus = Restartable(
            lambda: serve_tsdb(tmp_path / "tsdb", tmp_path / "prometheus", port=prom_port, scrape=[target])
        )
        for service in (prometheus, alertmanager):
            service.start()
            cleanup.callback(service.stop)
        elastic.start()
        cleanup.callback(elastic.stop)
        config = write_config(
            tmp_path,
            port,
            f"http://127.0.0.1:{prom_port}",
            f"http://127.0.0.1:{elastic.port}",
            f"http://127.0.0.1:{am_port}",
        )
        vigil = start_vigil(config, tmp_path / "vigil.log")
        cleanup.callback(lambda: (vigil.kill(), vigil.wait()))
        cleanup.callback(lambda: print((tmp_path / "vigil.log").read_text(errors="replace")[-3000:]))

        def up(source: str) -> bool | None:
            """Whether vigil reads ``source`` (None: vigil's server did not answer this time)."""
            assert vigil.poll() is None, "vigil exited"  # never a crash, whatever goes away
            answer = health(port)
            if answer is None or answer["sources"][source]["last_success"] is None:
                return None  # not read yet: a source counts as up until a round says otherwise
            return bool(answer["sources"][source]["up"])

        wait_for("vigil reading both sources", lambda: up("prometheus") and up("elasticsearch"), timeout=90)

        # Prometheus stopped: vigil goes on, says so, tells the on-call engineer; back: resolved, a gap.
        prometheus.stop()
        wait_for("Prometheus seen down", lambda: up("prometheus") is False)
        wait_for("VigilSourceDown for Prometheus", lambda: down_alerts(receiver, "prometheus", "firing"))
        prometheus.start()
        wait_for("Prometheus back", lambda: up("prometheus"))
        assert len(health(port)["sources"]["prometheus"]["gaps"]) == 1  # type: ignore[index]
        wait_for("its resolution", lambda: down_alerts(receiver, "prometheus", "resolved"))

        # Elasticsearch cut off, then restored: the same, for logs.
        elastic.stop()
        wait_for(
            "VigilSourceDown for Elasticsearch", lambda: down_alerts(receiver, "elasticsearch", "firing")
        )
        elastic.start()
        wait_for("its resolution", lambda: down_alerts(receiver, "elasticsearch", "resolved"))
        told = len(down_alerts(receiver, "elasticsearch", "firing"))

        # Alertmanager away; an alert raised meanwhile waits in vigil's outbox, and vigil is killed -9
        # before it could deliver it. Started again, and Alertmanager back: told once, as raised.
        alertmanager.stop()
        elastic.stop()
        wait_for("Elasticsearch seen down", lambda: up("elasticsearch") is False)
        time.sleep(3 + 2)  # source_down_for, and a round or two: the alert is raised and cannot go out
        wait_for("an undeliverable alert in the outbox", lambda: pending(port) >= 1)
        killed_at = time.time()
        vigil.send_signal(signal.SIGKILL)
        vigil.wait()
        vigil = start_vigil(config, tmp_path / "vigil.log")
        alertmanager.start()
        wait_for(
            "the alert raised before the kill",
            lambda: len(down_alerts(receiver, "elasticsearch", "firing")) > told,
        )
        elastic.start()
        wait_for("its resolution", lambda: len(down_alerts(receiver, "elasticsearch", "resolved")) >= 2)
        time.sleep(2 * 2.0)  # two of Alertmanager's group intervals: a duplicate would have come by now
        (raised,) = down_alerts(receiver, "elasticsearch", "firing")[told:]
        assert raised.starts_at.timestamp() < killed_at  # the alert from before the kill, not a new one
        assert vigil.poll() is None
