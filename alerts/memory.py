"""What the alert path remembers across restarts: its rules' state and its incidents.

It lives in the outbox's SQLite file, beside what was delivered, and is written after every
evaluation: a process killed at any moment restarts with the ``for`` timers, firing alerts and open
incidents of its last round, so it neither re-pends nor re-fires what Alertmanager already heard.
Each part is stored as JSON with a format number; a part in another format, or unreadable, is
reported and skipped (the alert path starts without it), never a crash.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT = 1  # bump when a part's shape changes: older parts are then ignored, not misread

SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_memory (
    part     TEXT PRIMARY KEY,  -- "rule:<alertname>", "incidents"
    format   INTEGER NOT NULL,
    body     TEXT NOT NULL,     -- JSON
    saved_at REAL NOT NULL
)
"""


class AlertMemory:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(SCHEMA)
        self._saved: dict[str, str] = {}  # part -> the body last written: unchanged parts are not rewritten

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def save(self, parts: Mapping[str, Any], now: float) -> None:
        """Replace the parts given, all in one transaction: a crash keeps the whole of one round."""
        bodies = {name: json.dumps(body, sort_keys=True) for name, body in parts.items()}
        rows = [(name, FORMAT, body, now) for name, body in bodies.items() if self._saved.get(name) != body]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO alert_memory (part, format, body, saved_at) VALUES (?, ?, ?, ?)", rows
            )
            self._db.execute("COMMIT")
        self._saved |= {name: body for name, _, body, _ in rows}

    def load(self) -> dict[str, Any]:
        """The parts saved by an earlier process; those that cannot be read are logged and left out."""
        with self._lock:
            rows = self._db.execute("SELECT part, format, body FROM alert_memory").fetchall()
        parts: dict[str, Any] = {}
        for name, format_, body in rows:
            if format_ != FORMAT:
                log.warning(
                    "alert memory %s: part %r has format %s, this vigil reads %s; starting it afresh",
                    self.path,
                    name,
                    format_,
                    FORMAT,
                )
                continue
            try:
                parts[name] = json.loads(body)
            except ValueError as error:
                log.warning(
                    "alert memory %s: part %r is unreadable (%s); starting it afresh", self.path, name, error
                )
        return parts
