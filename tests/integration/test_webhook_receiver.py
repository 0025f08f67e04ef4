"""vigil's webhook behind a real, private Alertmanager running the generated configuration.

The Alertmanager here is our own (temp dir, free port, no cluster), never the shared stack's: the test
needs second-scale group timings and an empty alert state.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.private_alertmanager import (
    GROUP_INTERVAL,
    SECRET,
    TIMING,
    Alertmanager,
    Vigil,
    running_alertmanager,
    serve,
    wait_for,
)
from vigil.alerts.alertmanager_config import WEBHOOK_PATH, ReceiverSettings, build_config, render
from vigil.alerts.model import Alert
from vigil.alerts.webhook import NotificationStore, WebhookPayload, webhook_router
from vigil.demo_marketplace.catalog import SYSTEM
from vigil.runtime.engine import Engine
from vigil.runtime.server import create_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def vigil() -> Iterator[Vigil]:
    """vigil's real app (``create_app`` with the webhook wired in), served by uvicorn on a free port."""
    app = create_app(Engine([], lambda _key: None), routers=[webhook_router(SECRET, NotificationStore())])
    with serve(app) as running:
        yield running


@pytest.fixture(scope="module")
def alertmanager(vigil: Vigil, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alertmanager]:
    home = tmp_path_factory.mktemp("alertmanager")
    secret_file = home / "vigil-webhook.secret"
    secret_file.write_text(SECRET + "\n")  # Alertmanager strips the newline, as read_secret does
    receivers = ReceiverSettings(vigil_url=vigil.url + WEBHOOK_PATH, vigil_secret_file=secret_file)
    with running_alertmanager(home, render(build_config(receivers, TIMING, system=SYSTEM))) as running:
        yield running


def _anomaly(service: str, signal: str, severity: str = "ticket") -> Alert:
    labels = {"alertname": "VigilAnomaly", "kind": "anomaly", "severity": severity}
    return Alert(labels={**labels, "service": service, "signal": signal}, starts_at=time.time())


# --- the receiver's own contract ---------------------------------------------------------------------------


def _payload(**overrides: Any) -> dict[str, Any]:
    alert = {
        "status": "firing",
        "labels": {"alertname": "X"},
        "annotations": {},
        "startsAt": "2024-01-01T00:00:00Z",
    }
    body = {
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "ticket",
        "groupLabels": {},
        "commonLabels": {"alertname": "X"},
        "commonAnnotations": {},
        "externalURL": "http://am",
        "alerts": [alert],
    }
    return {**body, **overrides}


def test_the_webhook_wants_the_shared_secret(vigil: Vigil) -> None:
    url = vigil.url + WEBHOOK_PATH
    for headers in ({}, {"Authorization": f"Bearer {SECRET}x"}, {"Authorization": SECRET}):
        response = httpx.post(url, json=_payload(), headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
    # Refused before the body is even looked at: no schema hints for strangers.
    assert httpx.post(url, content=b"not json", headers={}).status_code == 401
    accepted = httpx.post(
        url, json=_payload(receiver="auth-test"), headers={"Authorization": f"Bearer {SECRET}"}
    )
    assert accepted.status_code == 200
    assert accepted.json() == {"alerts": 1}
    assert [n.receiver for n in vigil.notifications()].count("auth-test") == 1


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (_payload(version="3"), "version"),
        (_payload(alerts=[]), "alerts"),
        (_payload(status="exploded"), "status"),
        (_payload(truncatedAlerts=-1), "truncatedAlerts"),
        ({k: v for k, v in _payload().items() if k != "groupKey"}, "groupKey"),
    ],
)
def test_a_malformed_notification_is_refused_with_the_field_named(
    vigil: Vigil, body: dict[str, Any], where: str
) -> None:
    before = len(vigil.notifications())
    response = httpx.post(vigil.url + WEBHOOK_PATH, json=body, headers={"Authorization": f"Bearer {SECRET}"})
    assert response.status_code == 422
    assert where in {str(part) for error in response.json()["detail"] for part in error["loc"]}
    assert len(vigil.notifications()) == before


def test_the_store_keeps_only_the_latest() -> None:
    clock = iter(range(100))
    store = NotificationStore(maxlen=3, clock=lambda: float(next(clock)))
    for i in range(5):
        store.add(WebhookPayload.model_validate(_payload(receiver=f"r{i}")))
    assert [n.payload.receiver for n in store.recent()] == ["r2", "r3", "r4"]
    assert [n.received_at for n in store.recent(limit=2)] == [3.0, 4.0]
    with pytest.raises(ValueError, match="at least 1"):
        NotificationStore(maxlen=0)


# --- behind the real Alertmanager --------------------------------------------------------------------------


def test_one_notification_per_group_then_its_resolution(alertmanager: Alertmanager, vigil: Vigil) -> None:
    latency, errors = _anomaly("catalog", "http_latency_p99"), _anomaly("catalog", "http_error_ratio")
    alertmanager.post(latency)
    alertmanager.post(errors)  # a second request, within the group's wait: still the same notification

    notified = wait_for("the catalog group's notification", lambda: vigil.about("catalog"))
    assert len(notified) == 1, f"one group, one notification; got {len(notified)}"
    first = notified[0]
    assert first.receiver == "ticket"
    assert first.status == "firing"
    assert first.group_labels == {"service": "catalog"}
    assert {a.labels["signal"] for a in first.alerts} == {"http_latency_p99", "http_error_ratio"}
    assert first.common_labels["kind"] == "anomaly"
    assert "signal" not in first.common_labels
    assert all(a.status == "firing" for a in first.alerts)

    time.sleep(2.5 * GROUP_INTERVAL)  # several group intervals pass: nothing new, so nothing sent
    assert len(vigil.about("catalog")) == 1

    now = time.time()
    alertmanager.post(latency.resolve(now), errors.resolve(now))
    resolved = wait_for(
        "the resolution", lambda: [n for n in vigil.about("catalog") if n.status == "resolved"]
    )
    assert len(resolved) == 1
    assert len(vigil.about("catalog")) == 2
    assert {a.labels["signal"] for a in resolved[0].alerts} == {"http_latency_p99", "http_error_ratio"}
    assert all(a.status == "resolved" for a in resolved[0].alerts)
    assert resolved[0].group_key == first.group_key


def test_an_slo_page_inhibits_the_anomalies_of_its_service(alertmanager: Alertmanager, vigil: Vigil) -> None:
    slo = Alert(
        labels={
            "alertname": "SLOErrorBudgetBurn",
            "kind": "slo",
            "severity": "page",
            "service": "gateway",
            "slo": "error-ratio",
        },
        starts_at=time.time(),
    )
    alertmanager.post(slo)
    (page,) = wait_for("the SLO page", lambda: vigil.about("gateway"))
    assert page.receiver == "page"
    assert [a.labels["alertname"] for a in page.alerts] == ["SLOErrorBudgetBurn"]

    inhibited, elsewhere = _anomaly("gateway", "http_error_ratio"), _anomaly("cart", "http_error_ratio")
    alertmanager.post(inhibited, elsewhere)

    def status_of(alert: Alert) -> dict[str, Any] | None:
        found = [a for a in alertmanager.alerts() if a["labels"] == alert.labels]
        return found[0]["status"] if found else None

    assert wait_for("the SLO alert in the API", lambda: status_of(slo))["state"] == "active"
    (slo_in_api,) = [a for a in alertmanager.alerts() if a["labels"] == slo.labels]
    status = wait_for("the inhibition", lambda: (s := status_of(inhibited)) and s["inhibitedBy"] and s)
    assert status["state"] == "suppressed"
    assert status["inhibitedBy"] == [slo_in_api["fingerprint"]]
    assert (status_of(elsewhere) or {}).get("state") == "active"
    assert (status_of(elsewhere) or {}).get("inhibitedBy") == []

    # Another service's anomaly goes through (the rule is per service) ...
    (cart,) = wait_for("the cart anomaly's notification", lambda: vigil.about("cart"))
    assert cart.receiver == "ticket"
    assert cart.alerts[0].labels["signal"] == "http_error_ratio"
    # ... while the gateway's never reaches the receiver, however many group intervals pass.
    time.sleep(2.5 * GROUP_INTERVAL)
    received = [a.labels for n in vigil.about("gateway") for a in n.alerts]
    assert received == [slo.labels]


def test_a_page_tells_its_incident_once_its_tickets_are_inhibited(
    alertmanager: Alertmanager, vigil: Vigil
) -> None:
    """The tickets of an incident that pages (early signs, the other services it reached) are muted by
    the page; a ticket of another incident, or of none, still goes through."""
    page = _anomaly("orders", "slo_error_ratio", severity="page")
    page.labels["incident"] = "inc-page"
    same = _anomaly("payments", "http_error_ratio")
    same.labels["incident"] = "inc-page"
    other = _anomaly("warehouse", "http_error_ratio")
    other.labels["incident"] = "inc-other"
    loose = _anomaly("recommendations", "http_error_ratio")  # outside incidents: the label is absent
    alertmanager.post(page, same, other, loose)

    def status_of(alert: Alert) -> dict[str, Any]:
        found = [a for a in alertmanager.alerts() if a["labels"] == alert.labels]
        return found[0]["status"] if found else {}

    status = wait_for("the inhibition", lambda: (s := status_of(same)) and s["inhibitedBy"] and s)
    assert status["state"] == "suppressed"
    for free in (other, loose):
        assert status_of(free)["state"] == "active"
    (told,) = wait_for("the page's notification", lambda: vigil.about("orders"))
    assert told.receiver == "page"
    wait_for("the other incident's ticket", lambda: vigil.about("warehouse"))
    wait_for("the ticket outside incidents", lambda: vigil.about("recommendations"))
    time.sleep(2.5 * GROUP_INTERVAL)  # several group intervals: the muted ticket is never sent
    assert vigil.about("payments") == []
