"""Muting: silences, maintenance windows and inhibitions all answer one question, "mute this alert now?".

Muted alerts still exist (an incident during maintenance is still shown); they are only kept out of
notifications, as Alertmanager's silences do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from vigil.alerts.model import Alert


class Muter(Protocol):
    def mutes(self, alert: Alert, now: float) -> bool: ...


@dataclass(frozen=True)
class MaintenanceWindow:
    """Planned work: from ``start`` (inclusive) to ``end`` (exclusive), alerts whose labels match are muted.

    ``matchers`` are label equalities (``{"service": "catalog"}``); none at all mutes everything.
    """

    start: float
    end: float
    matchers: Mapping[str, str] = field(default_factory=dict)
    reason: str = ""

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError(f"maintenance window must start before it ends ({self.start} >= {self.end})")

    def active(self, now: float) -> bool:
        return self.start <= now < self.end

    def matches(self, alert: Alert) -> bool:
        return all(alert.labels.get(name) == value for name, value in self.matchers.items())


class MaintenanceMuter:
    def __init__(self, windows: Iterable[MaintenanceWindow]) -> None:
        self.windows = list(windows)

    def mutes(self, alert: Alert, now: float) -> bool:
        return self.window_for(alert, now) is not None

    def window_for(self, alert: Alert, now: float) -> MaintenanceWindow | None:
        """The window that mutes ``alert`` at ``now`` (to say why), or None."""
        return next((w for w in self.windows if w.active(now) and w.matches(alert)), None)
