"""Silences in Alertmanager: mute the alerts that match a set of label matchers for a while.

A maintenance window is the same thing planned ahead: a silence whose start lies in the future
(Alertmanager holds it as ``pending`` until then). Silences live in Alertmanager, not in vigil, so
``amtool``, the Alertmanager UI and ``vigil alerts silence`` all see and edit the same ones, and an
Alertmanager cluster shares them by gossip.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vigil.alerts.alertmanager import AlertmanagerClient, parse_time
from vigil.alerts.model import rfc3339
from vigil.durations import parse_duration, parse_moment

# name, operator, value: service=catalog, severity=~page|ticket, env!=dev, pod!~canary-.*
_MATCHER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*")
_OPERATORS = {"=": (False, True), "!=": (False, False), "=~": (True, True), "!~": (True, False)}

STATES = ("active", "pending", "expired")  # Alertmanager's silence states


@dataclass(frozen=True)
class Matcher:
    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``name=value``, ``name!=value``, ``name=~regex`` or ``name!~regex``; the value may be quoted."""
        match = _MATCHER.fullmatch(text)
        if not match:
            raise ValueError(f"not a matcher: {text!r} (examples: service=catalog, severity=~page|ticket)")
        name, operator, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        is_regex, is_equal = _OPERATORS[operator]
        return cls(name, value, is_regex, is_equal)

    @property
    def operator(self) -> str:
        return {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}[
            (self.is_regex, self.is_equal)
        ]

    def __str__(self) -> str:
        """The form Alertmanager's ``filter`` parameter and ``amtool`` accept: ``service="catalog"``."""
        return f"{self.name}{self.operator}{_quote(self.value)}"

    def matches(self, value: str) -> bool:
        """Whether a label with ``value`` matches (Python's regex dialect, close enough to Go's here)."""
        if self.is_regex:
            try:
                hit = re.fullmatch(self.value, value) is not None
            except re.error:
                return False  # a Go-only construct: Alertmanager has the last word
        else:
            hit = self.value == value
        return hit == self.is_equal

    def to_api(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "isRegex": self.is_regex, "isEqual": self.is_equal}

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> Matcher:
        is_equal = bool(body.get("isEqual", True))  # absent before Alertmanager 0.22
        return cls(str(body["name"]), str(body["value"]), bool(body["isRegex"]), is_equal)


@dataclass(frozen=True)
class Silence:
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    id: str = ""  # given by Alertmanager
    state: str = ""  # active, pending (a maintenance window not begun yet) or expired

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "matchers": [m.to_api() for m in self.matchers],
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(self.ends_at),
            "createdBy": self.created_by,
            "comment": self.comment,
        }
        if self.id:
            body["id"] = self.id
        return body

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> Silence:
        return cls(
            matchers=tuple(Matcher.from_api(m) for m in body.get("matchers") or []),
            starts_at=parse_time(body["startsAt"]),
            ends_at=parse_time(body["endsAt"]),
            created_by=str(body.get("createdBy", "")),
            comment=str(body.get("comment", "")),
            id=str(body.get("id", "")),
            state=str((body.get("status") or {}).get("state", "")),
        )


def plan_silence(
    matchers: Sequence[str],
    *,
    now: float,
    duration: str,
    comment: str,
    start: str = "now",
    author: str | None = None,
) -> Silence:
    """The silence the CLI's words ask for, checked before Alertmanager sees it."""
    if not matchers:
        raise ValueError("a silence needs at least one matcher, or it would mute every alert")
    parsed = tuple(Matcher.parse(m) for m in matchers)
    if all(m.matches("") for m in parsed):
        # Alertmanager refuses these too, with a less helpful message.
        raise ValueError("at least one matcher must require a non-empty value, or it would mute every alert")
    if not comment.strip():
        raise ValueError("say why (--comment): the next person on call will read it")
    begins = parse_moment(start, now)
    length = parse_duration(duration)
    if length <= 0:
        raise ValueError(f"the silence must last a while, not {duration!r}")
    return Silence(parsed, begins, begins + length, author or default_author(), comment.strip())


def default_author() -> str:
    try:
        return os.environ.get("VIGIL_USER") or getpass.getuser()
    except OSError:  # no user name in a bare container
        return "vigil"


def add_silence(client: AlertmanagerClient, silence: Silence) -> str:
    """Create ``silence``; returns the id Alertmanager gave it."""
    return client.create_silence(silence.to_api())


def list_silences(
    client: AlertmanagerClient, *, states: Sequence[str] = ("active", "pending"), filter: Sequence[str] = ()
) -> list[Silence]:
    """Silences in ``states``, soonest ending first; ``filter`` matches alert labels (``service="x"``)."""
    silences = [Silence.from_api(body) for body in client.silences(filter)]
    return sorted((s for s in silences if s.state in states), key=lambda s: (s.ends_at, s.id))


def expire_silence(client: AlertmanagerClient, silence_id: str) -> None:
    client.expire_silence(silence_id)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
