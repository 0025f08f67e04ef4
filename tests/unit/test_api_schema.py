"""vigil's HTTP API against its own OpenAPI (schemathesis), and Alertmanager's webhook against random
bodies: a bad request is a 4xx with a reason, never a 500, and never grows the notification store."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.alerts.model import Alert
from vigil.alerts.webhook import NotificationStore, webhook_router
from vigil.collectors.model import Collection, Point, SeriesKey
from vigil.config import VigilConfig
from vigil.detectors.rolling_mad import RollingMAD
from vigil.runtime.alerting import build_alert_path
from vigil.runtime.engine import Engine
from vigil.runtime.incidents_api import incidents_router
from vigil.runtime.server import create_app

SECRET = "fuzz-secret"
AUTH = {"Authorization": f"Bearer {SECRET}"}
WEBHOOK = "/api/v1/alertmanager/webhook"
NOW = time.time()
KEY = SeriesKey("http_p99_latency_seconds", (("service", "catalog"),))


class Recorded:
    """A source that gave one series a minute of points (a stand-in for a collector)."""

    name = "prometheus"

    def collect(self, now: float) -> Collection:
        return Collection(self.name, {KEY: [Point(NOW - 60 + i, 0.1 + 0.01 * (i % 3)) for i in range(60)]})


def vigil_app() -> tuple[Any, NotificationStore, str]:
    """The app ``vigil run`` serves, in-process: scores, health, incidents (one open) and the webhook.
    The alert path keeps its outbox in memory and never flushes: nothing is sent anywhere."""
    engine = Engine([Recorded()], lambda _key: RollingMAD(window=50, warmup=3))
    engine.tick()
    config = VigilConfig(alerting={"alertmanager_urls": ["http://127.0.0.1:9"]})  # never called
    alerts = build_alert_path(config, Path(":memory:"))
    alert = Alert(
        {"alertname": "VigilAnomaly", "signal": KEY.signal, "service": "catalog"}, starts_at=NOW - 30
    )
    alerts.incidents.update([alert], NOW)
    store = NotificationStore()
    routers = [incidents_router(alerts, engine), webhook_router(SECRET, store)]
    return create_app(engine, routers=routers), store, alerts.incidents.open[0].id


APP, STORE, INCIDENT = vigil_app()
API = TestClient(APP, raise_server_exceptions=False)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_route_answers_as_its_openapi_says(case: schemathesis.Case) -> None:
    """Generated and schema-violating requests alike: no 500, and every answer as documented."""
    case.call_and_validate()


@schema.include(path=WEBHOOK).parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_webhook_holding_the_secret_answers_as_its_openapi_says(case: schemathesis.Case) -> None:
    """Past the secret, schema-violating bodies too. pydantic's lax mode reads a number as a time (``endsAt:
    0``), which the schema's date-time strings do not say: accepting such a body is not checked here."""
    case.call_and_validate(headers=AUTH, excluded_checks=[schemathesis.checks.negative_data_rejection])


@pytest.mark.parametrize("format_", ["text", "html"])
def test_the_summary_of_an_incident_answers_as_its_openapi_says(format_: str) -> None:
    """Generated ids are unknown (404): the one open incident's summary, plotted, is checked by name."""
    summary = schema["/api/v1/incidents/{incident_id}/summary"]["GET"]
    case = summary.Case(path_parameters={"incident_id": INCIDENT}, query={"format": format_})
    assert "catalog" in case.call_and_validate().text


def alert() -> dict[str, Any]:
    return {"status": "firing", "labels": {"alertname": "VigilAnomaly"}, "startsAt": "2026-01-01T00:00:00Z"}


def payload() -> dict[str, Any]:
    """A valid notification (Alertmanager's webhook payload, version 4)."""
    return {
        "version": "4",
        "groupKey": '{}:{alertname="VigilAnomaly"}',
        "status": "firing",
        "receiver": "vigil",
        "groupLabels": {"alertname": "VigilAnomaly"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [alert()],
    }


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats()  # NaN and ±Infinity too, as Python writes them and reads them back
    | st.text(max_size=8)
    | st.sampled_from(
        [math.nan, math.inf, -math.inf, "4", "firing", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59"]
    )
)
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
)


@st.composite
def damaged(draw: st.DrawFn) -> dict[str, Any]:
    """A valid payload with some of its fields (its first alert's too) removed or given junk."""
    body, first = payload(), alert()
    for fields in (body, first):
        for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=3, unique=True)):
            if draw(st.booleans()):
                del fields[name]
            else:
                fields[name] = draw(junk)
    body["alerts"] = [first]
    return body


@settings(max_examples=150, deadline=None)
@given(damaged() | junk | st.binary(max_size=40))
def test_a_bad_webhook_body_is_a_4xx_with_reasons_and_stores_nothing(body: Any) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    before = len(STORE)
    response = API.post(WEBHOOK, content=content, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code in (200, 400, 422), response.text
    assert len(STORE) == before + (response.status_code == 200)
    if response.status_code == 422:  # each problem names its place in the body
        assert all(error["loc"] and error["msg"] for error in response.json()["detail"])
    assert API.get("/api/v1/alertmanager/notifications", params={"limit": 3}).status_code == 200


def test_nan_and_infinity_in_a_body_are_a_422_that_shows_them() -> None:
    body = {**payload(), "truncatedAlerts": math.inf, "alerts": [{**alert(), "labels": {"a": math.nan}}]}
    before = len(STORE)
    response = API.post(
        WEBHOOK, content=json.dumps(body), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    shown = {(tuple(e["loc"]), str(e["input"])) for e in response.json()["detail"]}
    assert {(("body", "truncatedAlerts"), "inf"), (("body", "alerts", 0, "labels", "a"), "nan")} <= shown
    assert len(STORE) == before


def test_a_valid_notification_is_stored_and_a_wrong_secret_is_refused() -> None:
    before = len(STORE)
    assert API.post(WEBHOOK, json=payload(), headers={"Authorization": "Bearer nope"}).status_code == 401
    assert API.post(WEBHOOK, json=payload(), headers=AUTH).json() == {"alerts": 1}
    assert len(STORE) == before + 1
