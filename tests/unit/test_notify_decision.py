"""The "notify again?" decision: every reason, with the time given, never read."""

from __future__ import annotations

from dataclasses import replace

import pytest

from vigil.alerts.model import PAGE, TICKET
from vigil.alerts.notify import Decision, NotifyState, Reason, Sent, should_notify

HOUR = 3600.0
FIRING = NotifyState(opened_at=1000.0, firing=frozenset({"a"}), severity=TICKET, resolved=False, muted=False)
TOLD = Sent(at=1030.0, firing=frozenset({"a"}), severity=TICKET, resolved=False)


def decide(state: NotifyState, now: float) -> Decision:
    return should_notify(state, now, repeat_interval=HOUR, group_wait=30.0, group_interval=300.0)


def test_new_incident_waits_group_wait_then_notifies() -> None:
    assert decide(FIRING, now=1010.0) == Decision(False, Reason.NOT_DUE, next_at=1030.0)
    assert decide(FIRING, now=1030.0) == Decision(True, Reason.NEW)


def test_unchanged_firing_incident_repeats_after_repeat_interval() -> None:
    state = replace(FIRING, last=TOLD)
    assert decide(state, now=1030.0 + HOUR - 1) == Decision(False, Reason.NOT_DUE, next_at=1030.0 + HOUR)
    assert decide(state, now=1030.0 + HOUR) == Decision(True, Reason.REPEAT_DUE)


def test_alerts_joining_are_a_change_sent_at_most_every_group_interval() -> None:
    state = replace(FIRING, firing=frozenset({"a", "b"}), last=TOLD)
    assert decide(state, now=1100.0) == Decision(False, Reason.NOT_DUE, next_at=1330.0)
    assert decide(state, now=1330.0) == Decision(True, Reason.CHANGED)


def test_alerts_leaving_while_others_fire_are_no_change() -> None:
    told_two = replace(TOLD, firing=frozenset({"a", "b"}))
    assert decide(replace(FIRING, last=told_two), now=1400.0).reason == Reason.NOT_DUE


def test_an_escalation_to_page_is_sent_at_once() -> None:
    state = replace(FIRING, severity=PAGE, last=TOLD)
    assert decide(state, now=1031.0) == Decision(True, Reason.CHANGED)
    # and a de-escalation is no news
    told_page = replace(TOLD, severity=PAGE)
    assert decide(replace(FIRING, last=told_page), now=1031.0).reason == Reason.NOT_DUE


def test_resolution_of_a_notified_incident_is_sent_even_if_now_muted() -> None:
    resolved = replace(FIRING, firing=frozenset(), resolved=True, last=TOLD)
    assert decide(resolved, now=1040.0) == Decision(True, Reason.RESOLVED)
    assert decide(replace(resolved, muted=True), now=1040.0) == Decision(True, Reason.RESOLVED)


@pytest.mark.parametrize(
    "last", [None, Sent(at=1100.0, firing=frozenset(), severity=TICKET, resolved=True)], ids=["never", "told"]
)
def test_a_resolution_nobody_needs_is_not_sent(last: Sent | None) -> None:
    state = replace(FIRING, firing=frozenset(), resolved=True, last=last)
    assert decide(state, now=2000.0) == Decision(False, Reason.ALREADY_RESOLVED)


def test_a_muted_incident_is_not_notified_however_due() -> None:
    assert decide(replace(FIRING, muted=True), now=5000.0) == Decision(False, Reason.MUTED)
    assert decide(replace(FIRING, muted=True, last=TOLD), now=1030.0 + 2 * HOUR).reason == Reason.MUTED


def test_defaults_notify_a_new_incident_immediately() -> None:
    assert should_notify(FIRING, now=1000.0, repeat_interval=HOUR) == Decision(True, Reason.NEW)
