"""The fault matrix counts notifications with a model of Alertmanager (``bench.detection_judge``); here
the real Alertmanager, with vigil's generated routes and inhibit rules, acts out the same timelines and
the model must count what it sent.

The timelines are an incident that escalates: a ticket first, then a page of the same incident, which
mutes the ticket (inhibit rule); they differ in which resolves first. Events fall between group flushes
(group_wait 1 s, group_interval 4 s: flushes at 1, 5, 9, ... s after a group is created), a second or
more from any, so a busy machine does not move one across a flush.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from alerts.alertmanager_config import Timing
from bench.detection_judge import notifications
from tests.integration.private_alertmanager import SECRET, alertmanager_calling, wait_for
from vigil.alerts.incidents import Incident
from vigil.alerts.model import Alert
from vigil.alerts.webhook import NotificationStore, webhook_router
from vigil.backtest_faults import Episode
from vigil.collectors.model import SeriesKey
from vigil.runtime.engine import Engine
from vigil.runtime.server import create_app

pytestmark = pytest.mark.integration

TIMING = Timing(
    page_group_wait="1s",
    ticket_group_wait="1s",
    group_interval="4s",
    page_repeat_interval="1h",  # no reminders within a test: every notification is news
    ticket_repeat_interval="1h",
)
INCIDENT = "inc-escalates"


def _alert(name: str, severity: str) -> Alert:
    labels = {"alertname": name, "kind": "anomaly", "severity": severity, "service": "payments"}
    return Alert(labels={**labels, "incident": INCIDENT, "signal": name})


@pytest.mark.parametrize(
    ("ticket_ends", "page_ends", "expected"),
    [
        # the ticket ends under its page: never told resolved (muted), the page told resolved
        (10.0, 17.0, 3),
        # the page ends first: the ticket is heard again and told resolved at its next flush
        (17.0, 10.0, 4),
    ],
)
def test_the_judge_counts_what_alertmanager_sends(
    tmp_path: Path, ticket_ends: float, page_ends: float, expected: int
) -> None:
    ticket, page = _alert("TicketSignal", "ticket"), _alert("PageSignal", "page")
    timeline = sorted(
        [(0.0, ticket, None), (6.0, page, None), (ticket_ends, ticket, "end"), (page_ends, page, "end")],
        key=lambda event: event[0],
    )
    store = NotificationStore()
    app = create_app(Engine([], lambda _key: None), routers=[webhook_router(SECRET, store)])
    with alertmanager_calling(app, tmp_path, timing=TIMING) as (vigil, am):
        origin = time.monotonic()
        for at, alert, what in timeline:
            time.sleep(max(0.0, origin + at - time.monotonic()))
            now = time.time()
            am.post(Alert(alert.labels, starts_at=now, ends_at=now if what == "end" else None))
        last = max(ticket_ends, page_ends)
        time.sleep(max(0.0, origin + last + 9 - time.monotonic()))  # two more flushes of both groups

        def about_incident() -> list[str]:
            sent = [n for n in vigil.notifications() if n.group_labels.get("incident") == INCIDENT]
            return [f"{n.receiver}:{n.status}" for n in sent]

        told = wait_for("the resolutions", lambda: [s for s in about_incident() if "resolved" in s])
        assert told, about_incident()
        sent = about_incident()

    episodes = [
        Episode(SeriesKey("t"), 0.0, 0.0, ticket_ends, 2.0, "t", "ticket"),
        Episode(SeriesKey("p"), 6.0, 6.0, page_ends, 2.0, "p", "page"),
    ]
    incident = Incident(INCIDENT, 0.0, {"t": ticket, "p": page})
    assert notifications(episodes, incident, TIMING).total == len(sent) == expected, sent
