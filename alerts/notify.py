"""Whether to notify about an incident now, and why: a pure function of what was sent and what is true.

It follows Alertmanager's notification timing: wait ``group_wait`` after an incident opens so the
rest of a storm joins it before the first message; send changes at most every ``group_interval``
(except an escalation to a worse severity, which goes out at once); repeat an unchanged firing
incident every ``repeat_interval``. No clock is read here: ``now`` is a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from vigil.alerts.model import PAGE, TICKET

SEVERITY_RANK = {TICKET: 1, PAGE: 2}  # unknown severities rank lowest


def severity_rank(severity: str) -> int:
    return SEVERITY_RANK.get(severity, 0)


class Reason(StrEnum):
    NEW = "new"  # first notification of a firing incident
    CHANGED = "changed"  # alerts joined since the last notification, or the severity went up
    RESOLVED = "resolved"  # a notified incident is over
    REPEAT_DUE = "repeat_due"  # still firing, unchanged, and repeat_interval has passed
    NOT_DUE = "not_due"  # firing, but nothing to say yet (waiting for group_wait/_interval or the repeat)
    MUTED = "muted"  # every firing alert of the incident is muted
    ALREADY_RESOLVED = "already_resolved"  # resolved and either told already or never worth telling


@dataclass(frozen=True)
class Sent:
    """What the last notification said."""

    at: float
    firing: frozenset[str]  # fingerprints of the firing alerts
    severity: str
    resolved: bool


@dataclass(frozen=True)
class NotifyState:
    """An incident as notifications see it: its unmuted alerts now, and what was last sent."""

    opened_at: float
    firing: frozenset[str]
    severity: str  # the worst severity among ``firing``
    resolved: bool
    muted: bool
    last: Sent | None = None


@dataclass(frozen=True)
class Decision:
    notify: bool
    reason: Reason
    next_at: float | None = None  # when the decision may change without anything new (NOT_DUE)


def should_notify(
    state: NotifyState,
    now: float,
    repeat_interval: float,
    group_wait: float = 0.0,
    group_interval: float = 0.0,
) -> Decision:
    last = state.last
    if state.resolved:  # before muting: whoever was told it fires is told it is over, maintenance or not
        if last is not None and not last.resolved:
            return Decision(True, Reason.RESOLVED)
        return Decision(False, Reason.ALREADY_RESOLVED)
    if state.muted:
        return Decision(False, Reason.MUTED)
    if last is None or last.resolved:
        ready = state.opened_at + group_wait
        return Decision(True, Reason.NEW) if now >= ready else Decision(False, Reason.NOT_DUE, ready)
    escalated = severity_rank(state.severity) > severity_rank(last.severity)
    joined = bool(state.firing - last.firing)
    if escalated or (joined and now >= last.at + group_interval):
        return Decision(True, Reason.CHANGED)
    due = last.at + repeat_interval
    if joined:
        due = min(due, last.at + group_interval)
    return Decision(True, Reason.REPEAT_DUE) if now >= due else Decision(False, Reason.NOT_DUE, due)
