"""What the engine learned, kept across restarts: every series' detector and recent points in one file.

Written atomically (a temporary file in the same folder, fsynced, then renamed over the old one), so a
crash mid-write leaves the previous checkpoint whole. Versioned: a file of another format, or one that
cannot be read, is reported and ignored, and those series start cold; vigil never fails to start over
its own state. A series whose signal's detector settings changed since the checkpoint starts cold too
(its learned state would answer a different question). Only series this replica owns are restored, so
a change of shard count just re-learns what moved.

What is kept is what was learned: each series' detector, its last point and timestamp, its latest score
and band. Its recent points and plotting trail are not (Prometheus holds that history, and they would
make the file ten times larger); a restored series shows its history from the restart on.

The file is a pickle: it is vigil's own state in vigil's own state directory, never input from others.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import pickle
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.collectors.model import Point, SeriesKey
from vigil.detectors.base import AnyDetector, Band
from vigil.runtime.engine import Engine
from vigil.runtime.series import SeriesState
from vigil.runtime.trail import Trail

log = logging.getLogger(__name__)
FORMAT = 1  # bump when SavedSeries or a detector's fitted state changes shape


def spec_digest(spec: Any) -> str:
    """A short, stable digest of a signal's detector settings (any JSON-able value)."""
    text = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class SavedSeries:
    key: SeriesKey
    source: str
    detector: AnyDetector
    last_point: Point | None
    last_timestamp: float
    score: float | None
    band: Band | None

    @classmethod
    def of(cls, state: SeriesState) -> SavedSeries:
        return cls(
            state.key,
            state.source,
            state.detector,
            state.last_point,
            state.last_timestamp,
            state.score,
            state.band,
        )

    def state(self, window_points: int) -> SeriesState:
        trail = Trail(window_points)
        if self.last_point is not None:
            band = self.band
            score = self.score if self.score is not None else math.nan
            limits = (band.expected, band.lower, band.upper) if band is not None else (math.nan,) * 3
            trail.append(self.last_point.timestamp, self.last_point.value, score, *limits)
        return SeriesState(
            self.key, self.source, self.detector, trail, self.last_timestamp, self.score, self.band
        )


@dataclass(frozen=True)
class Restored:
    series: int = 0  # restored with their learned state
    changed: int = 0  # cold: their signal's detector settings changed
    foreign: int = 0  # cold: another replica owns them now
    problem: str | None = None  # why nothing was restored, if so


@dataclass(frozen=True)
class Written:
    path: Path
    series: int
    bytes: int
    seconds: float


class Checkpoint:
    """The checkpoint file at ``path`` for an engine whose signals have detector settings ``specs``
    (signal name -> digest, see ``spec_digest``)."""

    def __init__(self, path: Path, specs: Mapping[str, str]) -> None:
        self.path = path
        self.specs = dict(specs)

    def save(self, engine: Engine, now: float) -> Written:
        began = time.perf_counter()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=self.path.name + ".", dir=self.path.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                # The engine's lock: a round must not change a detector while it is being written.
                with engine.locked():
                    series = [SavedSeries.of(state) for state in engine.series_unlocked()]
                    payload = {
                        "format": FORMAT,
                        "written_at": now,
                        "shard": engine.shard,
                        "specs": self.specs,
                        "series": series,
                    }
                    pickle.dump(payload, out, protocol=pickle.HIGHEST_PROTOCOL)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return Written(self.path, len(series), self.path.stat().st_size, time.perf_counter() - began)

    def restore(self, engine: Engine, now: float) -> Restored:
        """Put the checkpoint's series into ``engine`` (before its first round); a problem is logged."""
        if not self.path.exists():
            return Restored(problem="no checkpoint yet")
        try:
            with self.path.open("rb") as file:
                payload = pickle.load(file)
        except Exception as error:  # a truncated or foreign file: any unpickling error
            return self._ignored(f"unreadable ({type(error).__name__}: {error})")
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            return self._ignored(f"format {found!r}, this vigil reads format {FORMAT}")
        keep: list[SeriesState] = []
        changed = foreign = 0
        old_specs: dict[str, str] = payload["specs"]
        saved: SavedSeries
        for saved in payload["series"]:
            signal = saved.key.signal
            if old_specs.get(signal) != self.specs.get(signal):
                changed += 1
            elif not engine.owns(saved.key):
                foreign += 1
            else:
                keep.append(saved.state(engine.window_points))
        engine.adopt(keep)
        restored = Restored(len(keep), changed, foreign)
        age = now - float(payload["written_at"])
        log.info(
            "checkpoint %s: restored %d series (written %.0f s ago); cold: %d with changed detector "
            "settings, %d now owned by another replica",
            self.path,
            restored.series,
            age,
            changed,
            foreign,
        )
        return restored

    def _ignored(self, why: str) -> Restored:
        log.warning("checkpoint %s ignored, every series starts cold: %s", self.path, why)
        return Restored(problem=why)
