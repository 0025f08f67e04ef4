"""Delivery through the outbox to real Alertmanagers: outages, restarts, an HA pair, bad alerts.

Every scenario that stops an Alertmanager runs its own private ``prometheus-alertmanager`` (temp dir,
free loopback port, no gossip); the stack's shared one is only posted to, never stopped.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client import CollectorRegistry

from vigil.alerts.alertmanager import (
    AlertmanagerClient,
    AlertmanagerUnavailable,
    AlertsRejected,
    ReceivedAlert,
)
from vigil.alerts.model import Alert
from vigil.alerts.outbox import Outbox
from vigil.stack import Stack
from vigil.stack.private_prometheus import free_port

pytestmark = pytest.mark.integration

RESEND = 30.0
CONFIG = {"route": {"receiver": "default", "group_by": ["alertname"]}, "receivers": [{"name": "default"}]}


class PrivateAlertmanager:
    """A throwaway Alertmanager of our own; restarts keep its port and data dir, as a real restart does."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        (home / "data").mkdir(parents=True, exist_ok=True)
        (home / "alertmanager.yml").write_text(yaml.safe_dump(CONFIG))

    def start(self) -> None:
        command = [
            "prometheus-alertmanager",
            f"--config.file={self.home / 'alertmanager.yml'}",
            f"--storage.path={self.home / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",  # no gossip: each instance stands alone
        ]
        with (self.home / "alertmanager.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60  # ready in a second; room for a busy machine
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.home / "alertmanager.log").read_text()[-2000:]
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"private Alertmanager on {self.url} did not become ready")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def received(self, status: str) -> float:
        """``alertmanager_alerts_received_total{status=...}``: what it was told, resolved ones included."""
        text = requests.get(f"{self.url}/metrics", timeout=5).text
        pattern = rf'^alertmanager_alerts_received_total\{{status="{status}",version="v2"\}} (\S+)$'
        return sum(float(v) for v in re.findall(pattern, text, re.MULTILINE))


@pytest.fixture
def alertmanagers(tmp_path: Path) -> Iterator[list[PrivateAlertmanager]]:
    """Two private Alertmanagers, started; each test uses one or both. Stopped (by pid) at the end."""
    pair = [PrivateAlertmanager(tmp_path / f"am{i}") for i in range(2)]
    for am in pair:
        am.start()
    yield pair
    for am in pair:
        am.stop()


def alert(name: str, run: str, **annotations: str) -> Alert:
    labels = {"alertname": name, "service": "catalog", "severity": "page", "test_run": run}
    return Alert(labels, {"summary": f"{name} in catalog", **annotations}, starts_at=time.time() - 60)


def held(url: str, run: str) -> list[ReceivedAlert]:
    """The unresolved alerts of this test run that the Alertmanager at ``url`` holds."""
    with AlertmanagerClient(url) as client:
        return client.alerts([f'test_run="{run}"'])


def names(url: str, run: str) -> list[str]:
    return sorted(a.labels["alertname"] for a in held(url, run))


def make_outbox(path: Path, urls: list[str]) -> Outbox:
    client = AlertmanagerClient(urls, timeout=2.0, attempts=2, backoff=0.05)
    return Outbox(path, client, resend_interval=RESEND, registry=CollectorRegistry())


def test_a_posted_alert_appears_in_the_stack_alertmanager_and_resolving_resolves_it(
    stack: Stack, tmp_path: Path
) -> None:
    url = f"http://{stack.settings.host}:{stack.settings.alertmanager_port}"
    run = uuid.uuid4().hex
    outbox = make_outbox(tmp_path / "outbox.db", [url])
    firing = alert("CatalogErrors", run, runbook_url="https://runbooks/catalog")
    outbox.put(firing)
    assert outbox.flush(time.time()).sent == 1
    [seen] = held(url, run)
    assert seen.labels == firing.labels
    assert seen.annotations == firing.annotations
    assert seen.state == "active"
    assert abs(seen.starts_at - firing.starts_at) < 0.01
    assert seen.ends_at > time.time() + RESEND  # a few re-sends ahead, not resolve_timeout's default

    outbox.put(firing.resolve(time.time()))
    assert outbox.flush(time.time()).sent == 1
    assert held(url, run) == []  # API v2 lists unresolved alerts only: it is resolved


def test_alerts_put_during_an_outage_are_delivered_after_restarts_without_duplicates(
    alertmanagers: list[PrivateAlertmanager], tmp_path: Path
) -> None:
    am = alertmanagers[0]
    path = tmp_path / "outbox.db"
    run = uuid.uuid4().hex
    first = make_outbox(path, [am.url])
    first.put(alert("Before", run))
    assert first.flush(time.time()).sent == 1
    assert names(am.url, run) == ["Before"]

    am.stop()
    first.put(alert("DuringOutage", run))
    first.put(alert("Flapping", run))
    first.put(alert("Flapping", run).resolve(time.time()))
    first.put(alert("Flapping", run))  # flapped back: one row, one delivery, firing
    first.put(alert("Before", run).resolve(time.time()))
    result = first.flush(time.time())
    assert (result.sent, result.failed, result.pending) == (0, 3, 3)
    first.close()

    # A separate vigil process puts an alert and dies while Alertmanager is still down.
    script = (
        "import sys, time\n"
        "from vigil.alerts.alertmanager import AlertmanagerClient\n"
        "from vigil.alerts.model import Alert\n"
        "from vigil.alerts.outbox import Outbox\n"
        "outbox = Outbox(sys.argv[1], AlertmanagerClient(sys.argv[2], attempts=1), resend_interval=30)\n"
        "labels = {'alertname': 'FromOtherProcess', 'service': 'catalog', 'test_run': sys.argv[3]}\n"
        "outbox.put(Alert(labels, starts_at=time.time()))\n"
        "assert outbox.flush(time.time()).failed == 4\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path), am.url, run], check=True, timeout=60)

    am.start()  # Alertmanager keeps alerts in memory only: it comes back knowing none of them
    assert names(am.url, run) == []
    second = make_outbox(path, [am.url])
    assert second.pending() == 4
    assert second.flush(time.time()).sent == 4
    assert names(am.url, run) == ["DuringOutage", "Flapping", "FromOtherProcess"]
    assert am.received("resolved") == 1  # "Before" was told it is over; it is not listed any more

    for k in range(1, 4):  # re-sends and repeated flushes: still one alert per label set
        second.flush(time.time() + k * RESEND)
        second.flush(time.time() + k * RESEND)
    assert names(am.url, run) == ["DuringOutage", "Flapping", "FromOtherProcess"]
    assert am.received("firing") == 3 + 3 * 3  # one delivery of each per re-send, never more


def test_an_alertmanager_restart_is_healed_by_the_next_resend(
    alertmanagers: list[PrivateAlertmanager], tmp_path: Path
) -> None:
    am = alertmanagers[0]
    run = uuid.uuid4().hex
    outbox = make_outbox(tmp_path / "outbox.db", [am.url])
    outbox.put(alert("StillFiring", run))
    now = time.time()
    outbox.flush(now)
    am.stop()
    am.start()
    assert names(am.url, run) == []  # forgotten with the restart
    assert outbox.flush(now + 1).sent == 0  # nothing changed, not yet time to re-send
    assert outbox.flush(now + RESEND).sent == 1
    assert names(am.url, run) == ["StillFiring"]


def test_an_ha_pair_gets_every_alert_even_when_one_member_is_down(
    alertmanagers: list[PrivateAlertmanager], tmp_path: Path
) -> None:
    a, b = alertmanagers
    run = uuid.uuid4().hex
    outbox = make_outbox(tmp_path / "outbox.db", [a.url, b.url])
    outbox.put(alert("One", run))
    now = time.time()
    assert outbox.flush(now).sent == 1
    assert names(a.url, run) == names(b.url, run) == ["One"]

    b.stop()
    outbox.put(alert("Two", run))
    assert outbox.flush(now + 1).sent == 1  # one member took it: delivered, as Prometheus counts it
    assert names(a.url, run) == ["One", "Two"]
    b.start()
    assert names(b.url, run) == []
    outbox.flush(now + 1 + RESEND)  # the re-send brings the member that was away up to date
    assert names(a.url, run) == names(b.url, run) == ["One", "Two"]

    a.stop()
    b.stop()
    outbox.put(alert("Three", run))
    assert outbox.flush(now + 2 + RESEND).failed == 1  # neither answers: kept
    assert outbox.pending() == 1


def test_a_bad_alert_is_named_and_does_not_hold_back_the_good_ones(
    alertmanagers: list[PrivateAlertmanager], tmp_path: Path
) -> None:
    am = alertmanagers[0]
    run = uuid.uuid4().hex
    good = alert("Good", run)
    bad = Alert({**good.labels, "alertname": "Bad", "0-not-a-label": "x"}, starts_at=good.starts_at)
    with AlertmanagerClient(am.url) as client, pytest.raises(AlertsRejected) as refusal:
        client.post_alerts([good, bad])
    assert [(a, "invalid name" in reason) for a, reason in refusal.value.rejected] == [(bad, True)]
    assert refusal.value.accepted == [good]
    assert "0-not-a-label" in str(refusal.value)
    assert names(am.url, run) == ["Good"]

    outbox = make_outbox(tmp_path / "outbox.db", [am.url])
    outbox.put(bad)
    outbox.put(alert("AlsoGood", run))
    result = outbox.flush(time.time())
    assert (result.sent, result.rejected, result.pending) == (1, 1, 0)
    assert names(am.url, run) == ["AlsoGood", "Good"]


def test_an_unreachable_alertmanager_is_reported_as_unavailable_after_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with (
        AlertmanagerClient(url, attempts=3, backoff=0.1) as client,
        pytest.raises(AlertmanagerUnavailable) as error,
    ):
        client.post_alerts([alert("X", "unreachable")])
    assert url in str(error.value)
    assert "cannot connect" in str(error.value)
    assert time.monotonic() - started >= 0.1 + 0.2  # the two waits between three attempts


def test_status_reports_the_running_configuration(alertmanagers: list[PrivateAlertmanager]) -> None:
    with AlertmanagerClient(alertmanagers[0].url) as client:
        status = client.status()
    assert status["cluster"]["status"] == "disabled"
    assert "receiver: default" in status["config"]["original"]
