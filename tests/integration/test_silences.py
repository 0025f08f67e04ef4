"""``vigil alerts silence`` against the stack's real Alertmanager: a silence mutes, expiring it un-mutes.

Each test labels its alerts with a unique ``test_run`` and matches on it, so nothing else in the shared
Alertmanager is muted; alerts are resolved and silences expired afterwards.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from typer.testing import CliRunner

from vigil.alerts.alertmanager import AlertmanagerClient, ReceivedAlert
from vigil.alerts.model import Alert
from vigil.cli import app
from vigil.stack import Stack

pytestmark = pytest.mark.integration

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def url(stack: Stack) -> str:
    return f"http://{stack.settings.host}:{stack.settings.alertmanager_port}"


@pytest.fixture
def client(url: str) -> Iterator[AlertmanagerClient]:
    with AlertmanagerClient(url) as am:
        yield am


@pytest.fixture
def run(client: AlertmanagerClient) -> Iterator[str]:
    """A unique test run id; its alerts are resolved and its silences expired at the end."""
    run = uuid.uuid4().hex
    yield run
    for silence in client.silences([f'test_run="{run}"']):
        if silence["status"]["state"] != "expired":
            client.expire_silence(silence["id"])
    client.post_alerts(
        [Alert(a.labels, starts_at=a.starts_at, ends_at=time.time()) for a in held(client, run)]
    )


def held(client: AlertmanagerClient, run: str) -> list[ReceivedAlert]:
    return client.alerts([f'test_run="{run}"'])


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    # Alertmanager applies a silence within a second; the bound is room for a busy machine.
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def vigil(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def post(client: AlertmanagerClient, run: str, service: str, severity: str) -> Alert:
    labels = {"alertname": "HighErrorRate", "service": service, "severity": severity, "test_run": run}
    alert = Alert(labels, {"summary": "errors"}, starts_at=time.time(), ends_at=time.time() + 600)
    client.post_alerts([alert])
    return alert


def test_a_silence_from_the_cli_mutes_matching_alerts_until_it_is_expired(
    client: AlertmanagerClient, run: str, url: str
) -> None:
    post(client, run, "catalog", "page")
    post(client, run, "catalog", "info")  # severity outside the regex: stays loud
    post(client, run, "checkout", "page")  # another service: stays loud
    # No --alertmanager-url: the default is the stack's Alertmanager.
    output = vigil(
        "alerts", "silence", "add",
        "--matcher", "service=catalog", "--matcher", "severity=~page|ticket", "--matcher", f"test_run={run}",
        "--for", "2h", "--comment", "deploy", "--author", "integration-test",
    )  # fmt: skip
    match = UUID.search(output)
    assert match, output
    silence_id = match.group()

    def states() -> dict[tuple[str, str], tuple[str, list[str]]]:
        return {
            (a.labels["service"], a.labels["severity"]): (a.state, a.silenced_by) for a in held(client, run)
        }

    wait_for(lambda: states()[("catalog", "page")] == ("suppressed", [silence_id]))
    assert states()[("catalog", "info")] == ("active", [])
    assert states()[("checkout", "page")] == ("active", [])

    listing = vigil("alerts", "silence", "list", "--matcher", f"test_run={run}", "--alertmanager-url", url)
    assert silence_id in listing
    assert "integration-test" in listing
    assert "deploy" in listing

    assert "expired" in vigil("alerts", "silence", "expire", silence_id, "--alertmanager-url", url)
    wait_for(lambda: states()[("catalog", "page")] == ("active", []))
    assert silence_id not in vigil("alerts", "silence", "list", "--alertmanager-url", url)
    assert silence_id in vigil("alerts", "silence", "list", "--all", "--alertmanager-url", url)


def test_a_maintenance_window_is_pending_and_mutes_nothing_until_it_starts(
    client: AlertmanagerClient, run: str, url: str
) -> None:
    post(client, run, "search", "page")
    silence_id = vigil(
        "alerts", "silence", "add", "-q", "-m", "service=search", "-m", f"test_run={run}",
        "--start", "+1h", "--for", "30m", "--comment", "reindex", "--alertmanager-url", url,
    ).strip()  # fmt: skip
    assert UUID.fullmatch(silence_id)
    [silence] = [s for s in client.silences([f'test_run="{run}"']) if s["id"] == silence_id]
    assert silence["status"]["state"] == "pending"
    assert "pending" in vigil("alerts", "silence", "list", "-m", f"test_run={run}", "--alertmanager-url", url)
    [alert] = held(client, run)
    assert (alert.state, alert.silenced_by) == ("active", [])


def test_bad_requests_fail_with_a_clear_message(url: str) -> None:
    runner = CliRunner()
    refused = runner.invoke(
        app, ["alerts", "silence", "add", "-m", "service=~(", "--comment", "x", "--alertmanager-url", url]
    )
    assert refused.exit_code == 1
    assert "silence not created" in refused.output
    assert "regular expression" in refused.output or "regexp" in refused.output
    unknown = runner.invoke(
        app, ["alerts", "silence", "expire", str(uuid.uuid4()), "--alertmanager-url", url]
    )
    assert unknown.exit_code == 1
    assert "no silence with id" in unknown.output
    everything = runner.invoke(app, ["alerts", "silence", "add", "-m", "service=~.*", "--comment", "x"])
    assert everything.exit_code == 2
    assert "non-empty" in everything.output
