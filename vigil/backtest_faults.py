"""What a backtest found, against what was injected: episodes, faults from ground truth, and their match."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.alerts.incidents import Incident
from vigil.collectors.model import SeriesKey


@dataclass(frozen=True)
class Episode:
    key: SeriesKey
    pending_since: float  # when its score first passed the threshold, like an alert's activeAt
    start: float  # when it fired
    end: float  # when it resolved (or the end of the replay)
    peak: float  # highest score while it fired
    fingerprint: str = ""  # of the alert, as its rule raised it: how incidents know it
    severity: str = ""
    about: str = ""  # what the alert is about: its service (a queue's owner), else its component


@dataclass(frozen=True)
class Fault:
    fault: str
    service: str
    start: float
    end: float
    params: dict[str, Any] = field(default_factory=dict, hash=False)


def load_ground_truth(path: Path, start: float, end: float) -> list[Fault]:
    """Faults recorded in ``path`` (JSON lines) that overlap [start, end]; an open fault ends at ``end``."""
    faults = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            until = float(raw["end"]) if raw.get("end") is not None else end
            fault = Fault(
                raw["fault"], raw.get("service", ""), float(raw["start"]), until, raw.get("params") or {}
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: not a ground-truth record: {error!r}") from error
        if fault.start <= end and fault.end >= start:
            faults.append(fault)
    return sorted(faults, key=lambda f: f.start)


@dataclass(frozen=True)
class FaultMatch:
    fault: Fault
    alerts: tuple[Episode, ...]  # episodes overlapping [fault.start, fault.end + grace], by firing time
    likely_cause: str | None = None  # of the first incident that covered the fault, if any

    @property
    def first_alert(self) -> float | None:
        return self.alerts[0].start if self.alerts else None

    @property
    def lag(self) -> float | None:
        """Seconds from the fault's start to the first alert; negative is a lead."""
        return None if self.first_alert is None else self.first_alert - self.fault.start

    @property
    def new_lag(self) -> float | None:
        """Lag of the first alert that fired during the fault (or its grace), not already firing before it.

        Back-to-back faults (chaos) keep one episode going across several; its lead says little about them.
        """
        return next((e.start - self.fault.start for e in self.alerts if e.start >= self.fault.start), None)


def match_faults(
    episodes: Sequence[Episode], faults: Sequence[Fault], grace: float, incidents: Sequence[Incident] = ()
) -> tuple[list[FaultMatch], list[Episode]]:
    """Per fault the episodes that detect it and the incident's likely cause, and the false alarms
    (episodes overlapping no fault)."""
    matches = []
    matched: set[Episode] = set()
    for fault in faults:
        hits = sorted(
            (e for e in episodes if e.start <= fault.end + grace and e.end >= fault.start),
            key=lambda e: (e.start, e.key),
        )
        covering = sorted(
            (
                i
                for i in incidents
                if i.opened_at <= fault.end + grace and (i.resolved_at or math.inf) >= fault.start
            ),
            key=lambda i: (i.opened_at, i.id),
        )
        matched.update(hits)
        matches.append(FaultMatch(fault, tuple(hits), covering[0].likely_cause if covering else None))
    return matches, [e for e in episodes if e not in matched]
