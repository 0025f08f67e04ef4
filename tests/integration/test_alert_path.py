"""The alert path with a real Alertmanager: scores -> rules -> incident -> outbox -> Alertmanager -> webhook.

Two routes of the catalog and the gateway route that calls them go anomalous together: the on-call
engineer must get exactly one notification for the incident, carrying everything needed to act, then
exactly one resolution when it is over.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.private_alertmanager import SECRET, Alertmanager, Vigil, alertmanager_calling, wait_for
from vigil.alerts.webhook import NotificationStore, webhook_router
from vigil.collectors.model import Collection, Point, SeriesKey
from vigil.config import VigilConfig
from vigil.demo_marketplace.catalog import SYSTEM_FILE
from vigil.runtime.alerting import AlertPath, build_alert_path
from vigil.runtime.build import detector_factory
from vigil.runtime.engine import Engine
from vigil.runtime.incidents_api import incidents_router
from vigil.runtime.server import create_app

pytestmark = pytest.mark.integration

SIGNAL = "http_p99_latency_seconds"
ROUTES = ("/products/{product_id}", "/search")
KEYS = [SeriesKey(SIGNAL, (("route", r), ("service", "catalog"))) for r in ROUTES]
KEYS.append(SeriesKey(SIGNAL, (("route", "/api/search"), ("service", "gateway"))))


class Feed:
    """The source side: the points each round brings (a stand-in for Prometheus, not for vigil's code)."""

    name = "feed"

    def __init__(self) -> None:
        self.next: dict[SeriesKey, list[Point]] = {}

    def push(self, t: float, latency: float) -> None:
        for key in KEYS:
            self.next.setdefault(key, []).append(Point(t, latency + 0.001 * (int(t) % 3)))

    def collect(self, now: float) -> Collection:
        series, self.next = self.next, {}
        return Collection(self.name, series)


def config(alertmanager_url: str, outbox: Path) -> VigilConfig:
    return VigilConfig.model_validate(
        {
            "sources": {"prometheus": {"url": "http://127.0.0.1:9"}},
            "system": str(SYSTEM_FILE),  # the gateway calls the catalog: one incident
            "signals": [
                {
                    "name": SIGNAL,
                    "query": "unused",
                    "description": "99th percentile latency per route",
                    "severity": "page",
                    "detector": {"kind": "rolling_mad", "min_deviation": 0.05},
                }
            ],
            "alerting": {
                "alertmanager_urls": [alertmanager_url],
                "outbox": str(outbox),
                "for": "0s",
                "keep_firing_for": "0s",
                "resend_interval": "5s",
                "dashboard_url": "http://grafana/d/{service}",
                "runbook_url": "http://runbooks/{signal}",
            },
        }
    )


@pytest.fixture
def vigil_and_alertmanager(tmp_path: Path) -> Iterator[tuple[Vigil, Alertmanager, Engine, AlertPath, Feed]]:
    feed = Feed()
    routers = [webhook_router(SECRET, NotificationStore())]
    # The app is served first (Alertmanager must know the webhook's URL); the incidents are wired in after.
    app = create_app(Engine([], lambda _key: None), routers=routers)
    with alertmanager_calling(app, tmp_path) as (vigil, am):
        settings = config(am.url, tmp_path / "outbox.sqlite")
        engine = Engine([feed], detector_factory(settings))
        alerts = build_alert_path(settings, tmp_path / "outbox.sqlite")
        app.include_router(incidents_router(alerts, engine))
        yield vigil, am, engine, alerts, feed


def round_(engine: Engine, alerts: AlertPath, feed: Feed, latency: float) -> None:
    now = time.time()
    feed.push(now, latency)
    engine.tick()
    alerts.evaluate(engine, now)
    alerts.flush(now)


def test_an_anomaly_becomes_one_grouped_notification_then_one_resolution(
    vigil_and_alertmanager: tuple[Vigil, Alertmanager, Engine, AlertPath, Feed],
) -> None:
    vigil, am, engine, alerts, feed = vigil_and_alertmanager
    start = time.time() - 600
    for i in range(40):  # ten minutes of normal history, learned in one round
        feed.push(start + 15 * i, 0.05)
    engine.tick()

    deadline = time.monotonic() + 90  # for and Alertmanager's group_wait: seconds; room for a busy machine
    while not vigil.about("catalog"):
        assert time.monotonic() < deadline, "no notification reached the webhook"
        round_(engine, alerts, feed, latency=0.9)  # both routes: p99 from 50 ms to 900 ms
        time.sleep(1)
    for _ in range(4):  # more anomalous rounds, and Alertmanager's group interval: still one notification
        round_(engine, alerts, feed, latency=0.9)
        time.sleep(1)

    held = [a for a in am.alerts() if a["labels"].get("service") in ("catalog", "gateway")]
    assert len(held) == 3  # re-sent every round, deduplicated by labels: one per route
    (notification,) = vigil.notifications()  # two services, one incident: one notification
    assert notification.status == "firing"
    assert notification.receiver.startswith("page")
    assert len(notification.alerts) == 3  # every route of both services, grouped
    assert sorted(a.labels["service"] for a in notification.alerts) == ["catalog", "catalog", "gateway"]
    for alert in notification.alerts:
        assert {"alertname", "service", "severity", "signal", "kind", "incident"} <= set(alert.labels)
        assert alert.labels["severity"] == "page"
        notes = alert.annotations
        assert {"summary", "description", "anomaly_score", "expected_range", "observed"} <= set(notes)
        assert float(notes["anomaly_score"]) > 1
        assert notes["dashboard_url"] == f"http://grafana/d/{alert.labels['service']}"
        assert notes["runbook_url"] == f"http://runbooks/{SIGNAL}"
        assert notes["likely_cause"] == "catalog"
        assert alert.generator_url.startswith("http://127.0.0.1:9400/api/v1/signals")

    (incident,) = httpx.get(vigil.url + "/api/v1/incidents", timeout=5).json()
    assert notification.group_labels == {"incident": incident["id"]}
    assert (incident["status"], incident["severity"], incident["likely_cause"]) == (
        "firing",
        "page",
        "catalog",
    )
    summary = httpx.get(f"{vigil.url}/api/v1/incidents/{incident['id']}/summary", timeout=5).text
    assert "catalog" in summary
    html = httpx.get(
        f"{vigil.url}/api/v1/incidents/{incident['id']}/summary", params={"format": "html"}, timeout=5
    ).text
    assert html.count("<img") == 3  # one plot per anomalous series

    def resolved() -> bool:
        round_(engine, alerts, feed, latency=0.05)
        return any(n.status == "resolved" for n in vigil.about("catalog"))

    wait_for("the resolution at the webhook", resolved, timeout=90)
    time.sleep(3)  # a group interval more: nothing else arrives
    statuses = [n.status for n in vigil.notifications()]
    assert statuses == ["firing", "resolved"]
    assert httpx.get(vigil.url + "/api/v1/incidents", timeout=5).json() == []
