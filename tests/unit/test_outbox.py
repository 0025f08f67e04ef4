"""The outbox's delivery decisions: what is due when, what survives an outage, what is never sent twice.

The sink here records what the outbox hands to ``post_alerts`` and can be switched off or made to refuse
an alert; the same paths against a real Alertmanager are in tests/integration/test_alertmanager_delivery.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from vigil.alerts.alertmanager import AlertmanagerError, AlertmanagerUnavailable, AlertsRejected
from vigil.alerts.model import Alert
from vigil.alerts.outbox import BATCH, Outbox

T0 = 1_800_000_000.0
RESEND = 60.0


class RecordingSink:
    """Keeps every batch posted; ``down`` makes it unreachable, ``refuse`` rejects alerts by a label."""

    def __init__(self) -> None:
        self.batches: list[list[Alert]] = []
        self.down = False
        self.refuse: set[str] = set()  # alertnames Alertmanager would reject
        self.error: AlertmanagerError | None = None
        self.during_post: list[Alert] = []  # put into the outbox while a post is in flight

    def post_alerts(self, alerts: Sequence[Alert]) -> None:
        if self.down:
            raise AlertmanagerUnavailable("Alertmanager at http://127.0.0.1:1: cannot connect")
        if self.error is not None:
            raise self.error
        rejected = [(a, "invalid label set") for a in alerts if a.name in self.refuse]
        accepted = [a for a in alerts if a.name not in self.refuse]
        self.batches.append(accepted)
        for alert in self.during_post:
            self.outbox.put(alert)
        self.during_post = []
        if rejected:
            raise AlertsRejected(rejected, accepted)

    @property
    def sent(self) -> list[Alert]:
        return [a for batch in self.batches for a in batch]

    outbox: Outbox


def firing(name: str = "HighErrorRate", service: str = "catalog", **annotations: str) -> Alert:
    return Alert({"alertname": name, "service": service}, dict(annotations), starts_at=T0)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


def make_outbox(path: Path, sink: RecordingSink, registry: CollectorRegistry | None = None) -> Outbox:
    outbox = Outbox(path, sink, resend_interval=RESEND, retention=600.0, registry=registry)
    sink.outbox = outbox
    return outbox


@pytest.fixture
def outbox(tmp_path: Path, sink: RecordingSink, registry: CollectorRegistry) -> Outbox:
    return make_outbox(tmp_path / "outbox.db", sink, registry)


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_a_new_alert_is_sent_at_once_with_an_end_a_few_resends_ahead(
    outbox: Outbox, sink: RecordingSink
) -> None:
    outbox.put(firing())
    result = outbox.flush(T0 + 1)
    assert (result.sent, result.pending) == (1, 0)
    [sent] = sink.sent
    assert sent.labels == {"alertname": "HighErrorRate", "service": "catalog"}
    # Alertmanager resolves it by itself at endsAt if vigil stops re-sending it.
    assert sent.ends_at == T0 + 1 + 4 * RESEND
    assert sent.to_api()["endsAt"] > sent.to_api()["startsAt"]


def test_a_firing_alert_is_resent_every_resend_interval_and_not_in_between(
    outbox: Outbox, sink: RecordingSink
) -> None:
    outbox.put(firing())
    outbox.flush(T0)
    outbox.put(firing())  # the pipeline says the same again: nothing new to tell
    assert outbox.flush(T0 + RESEND - 1).sent == 0
    assert outbox.flush(T0 + RESEND).sent == 1
    assert sink.sent[-1].ends_at == T0 + RESEND + 4 * RESEND  # the end moves along with each re-send
    assert outbox.flush(T0 + RESEND + 10).sent == 0
    assert len(sink.sent) == 2


def test_a_changed_state_is_sent_at_once_without_waiting_for_the_resend(
    outbox: Outbox, sink: RecordingSink
) -> None:
    outbox.put(firing(summary="5% errors"))
    outbox.flush(T0)
    assert outbox.put(firing(summary="9% errors"))
    outbox.flush(T0 + 1)
    assert [a.annotations["summary"] for a in sink.sent] == ["5% errors", "9% errors"]


def test_a_resolution_is_sent_once_then_kept_for_retention_then_deleted(
    outbox: Outbox, sink: RecordingSink
) -> None:
    outbox.put(firing())
    outbox.flush(T0)
    outbox.put(firing().resolve(T0 + 30))
    outbox.flush(T0 + 31)
    assert sink.sent[-1].ends_at == T0 + 30  # its real end, not the firing horizon
    assert outbox.flush(T0 + 31 + RESEND * 5).sent == 0  # acknowledged: never re-sent
    outbox.put(firing().resolve(T0 + 30))  # said again within retention: recognised, not re-sent
    assert outbox.flush(T0 + 100).sent == 0
    assert firing().fingerprint in outbox.stored()
    outbox.flush(T0 + 31 + 600)
    assert outbox.stored() == {}
    assert len(sink.sent) == 2


def test_a_flapping_alert_keeps_one_row_and_sends_only_its_latest_state(
    outbox: Outbox, sink: RecordingSink
) -> None:
    for i in range(5):
        outbox.put(firing())
        outbox.put(firing().resolve(T0 + i))
    outbox.put(firing())
    assert len(outbox.stored()) == 1
    assert outbox.pending() == 1
    outbox.flush(T0 + 10)
    assert len(sink.sent) == 1
    assert sink.sent[0].ends_at == T0 + 10 + 4 * RESEND  # firing: the last word


def test_nothing_is_lost_while_alertmanager_is_down_and_nothing_duplicated_after(
    outbox: Outbox, sink: RecordingSink, registry: CollectorRegistry
) -> None:
    sink.down = True
    outbox.put(firing("A"))
    outbox.put(firing("B"))
    for minute in range(5):
        result = outbox.flush(T0 + 60 * minute)
        assert (result.sent, result.failed, result.pending) == (0, 2, 2)
    outbox.put(firing("B").resolve(T0 + 200))  # B recovered during the outage: only that is worth telling
    assert metric(registry, "vigil_outbox_pending") == 2
    assert metric(registry, "vigil_alerts_delivery_failures_total", reason="unavailable") == 10
    sink.down = False
    assert outbox.flush(T0 + 300).sent == 2
    assert {(a.name, a.ends_at) for a in sink.sent} == {("A", T0 + 300 + 4 * RESEND), ("B", T0 + 200)}
    assert outbox.flush(T0 + 301).sent == 0
    assert metric(registry, "vigil_outbox_pending") == 0
    assert metric(registry, "vigil_alerts_sent_total", state="firing") == 1
    assert metric(registry, "vigil_alerts_sent_total", state="resolved") == 1


def test_the_outbox_survives_a_restart(tmp_path: Path, sink: RecordingSink) -> None:
    path = tmp_path / "outbox.db"
    first = make_outbox(path, sink)
    sink.down = True
    first.put(firing("A"))
    first.put(firing("B").resolve(T0 + 5))
    first.flush(T0 + 10)
    first.close()
    sink.down = False
    second = make_outbox(path, sink)  # a new process: nothing but the file in common
    assert second.pending() == 2
    assert second.flush(T0 + 20).sent == 2
    assert sorted(a.name for a in sink.sent) == ["A", "B"]
    second.close()
    third = make_outbox(path, sink)
    assert third.flush(T0 + 21).sent == 0  # what was acknowledged stays acknowledged
    assert third.flush(T0 + 20 + RESEND).sent == 1  # and A's re-send schedule carries on


def test_a_rejected_alert_does_not_block_the_others_nor_repeat_each_flush(
    outbox: Outbox, sink: RecordingSink, registry: CollectorRegistry
) -> None:
    sink.refuse = {"Bad"}
    outbox.put(firing("Bad"))
    outbox.put(firing("Good"))
    result = outbox.flush(T0)
    assert (result.sent, result.rejected, result.pending) == (1, 1, 0)
    assert [a.name for a in sink.sent] == ["Good"]
    assert outbox.flush(T0 + 1).rejected == 0  # not retried every flush...
    assert outbox.flush(T0 + RESEND).rejected == 1  # ...only at the re-send pace
    assert metric(registry, "vigil_alerts_delivery_failures_total", reason="rejected") == 2


def test_a_refused_request_keeps_alerts_due(
    outbox: Outbox, sink: RecordingSink, registry: CollectorRegistry
) -> None:
    # A 401/404: the URL or credentials are wrong; once they are fixed the alerts must still go out.
    sink.error = AlertmanagerError("http://127.0.0.1:9093/api/v2/alerts: HTTP 404: page not found")
    outbox.put(firing())
    assert outbox.flush(T0).failed == 1
    sink.error = None
    assert outbox.flush(T0 + 1).sent == 1
    assert metric(registry, "vigil_alerts_delivery_failures_total", reason="refused") == 1


def test_a_state_put_while_its_predecessor_is_in_flight_stays_due(
    outbox: Outbox, sink: RecordingSink
) -> None:
    outbox.put(firing())
    sink.during_post = [firing().resolve(T0 + 1)]  # resolved while the firing state is being posted
    outbox.flush(T0 + 1)
    assert outbox.pending() == 1  # the acknowledgment of "firing" must not swallow "resolved"
    outbox.flush(T0 + 2)
    assert [a.ends_at for a in sink.sent] == [T0 + 1 + 4 * RESEND, T0 + 1]


def test_large_backlogs_go_out_in_batches(outbox: Outbox, sink: RecordingSink) -> None:
    for i in range(BATCH + 10):
        outbox.put(firing(service=f"svc{i}"))
    assert outbox.flush(T0).sent == BATCH + 10
    assert [len(b) for b in sink.batches] == [BATCH, 10]
