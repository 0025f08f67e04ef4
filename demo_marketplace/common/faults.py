"""The faults a service process should act out right now.

``vigil marketplace fault inject`` writes the active faults, each with an ``until`` time, to one
JSON file; services re-read it when it changes. Faults expire by themselves, so a crashed
injector never leaves the marketplace broken.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vigil.demo_marketplace.common.telemetry import ServiceMetrics


class FaultState:
    def __init__(
        self,
        path: Path | None,
        service: str,
        *,
        clock: Callable[[], float] = time.time,
        min_interval: float = 0.5,
    ) -> None:
        self.path = path
        self.service = service
        self.clock = clock
        self.min_interval = min_interval
        self._checked_at = float("-inf")
        self._mtime: float | None = None
        self._faults: list[dict[str, Any]] = []

    def _refresh(self) -> None:
        now = time.monotonic()
        if self.path is None or now - self._checked_at < self.min_interval:
            return
        self._checked_at = now
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._faults, self._mtime = [], None
            return
        if mtime != self._mtime:
            try:
                self._faults = json.loads(self.path.read_text()).get("faults", [])
                self._mtime = mtime
            except (ValueError, OSError):
                pass  # half-written by a concurrent writer: keep the previous state, retry next time

    def active(self, name: str) -> dict[str, Any] | None:
        """The parameters of fault ``name`` if it currently targets this service, else None."""
        self._refresh()
        now = self.clock()
        for fault in self._faults:
            if (
                fault["name"] == name
                and fault["service"] == self.service
                and fault["start"] <= now < fault["until"]
            ):
                params: dict[str, Any] = fault.get("params", {})
                return {
                    **params,
                    "progress": (now - fault["start"]) / max(fault["until"] - fault["start"], 1e-9),
                }
        return None

    def names(self) -> list[str]:
        self._refresh()
        now = self.clock()
        return [
            f["name"] for f in self._faults if f["service"] == self.service and f["start"] <= now < f["until"]
        ]


class BadReleaseError(RuntimeError):
    """What the bad build of a service raises while the ``bad-release`` fault acts on it."""


_rng = random.Random()


def act_out_bad_release(faults: FaultState, metrics: ServiceMetrics, *, rng: random.Random = _rng) -> None:
    """Raise BadReleaseError for a share (``error_rate``) of the work while bad-release targets us.

    Called before a request's handler or a message's handler, so the failure takes the same path
    (logs, metrics, 500 or dead letter) as a real bug in that handler would.
    """
    bad = faults.active("bad-release")
    metrics.fault_active.labels(metrics.service, "bad-release").set(1 if bad else 0)
    if not bad:
        return
    # A rollout: with ``ramp`` > 0 the bad build reaches full share over that part of the fault's duration.
    ramp = float(bad.get("ramp", 0.0))
    share = min(1.0, bad["progress"] / ramp) if ramp > 0 else 1.0
    if rng.random() < float(bad.get("error_rate", 0.3)) * share:
        raise BadReleaseError(f"{metrics.service}: the deployed build is broken (fault bad-release)")
