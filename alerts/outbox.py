"""A durable outbox between vigil's alert path and Alertmanager.

Alerts are written to SQLite first and delivered from there, so an Alertmanager outage or a vigil
restart loses nothing: whatever is due when Alertmanager answers again is delivered then.

One row per fingerprint holds the latest state of that alert. A flapping alert overwrites its own
row instead of queueing every flip, and Alertmanager, which deduplicates by label set, sees at most
one copy of each alert per delivery. A row is *due* when

* its state changed and this state was not delivered yet (sent at once, at the next ``flush``);
* it is firing and was last delivered ``resend_interval`` ago (Alertmanager forgets alerts that are
  not re-sent, see ``expire_after``);
* it is resolved and its resolution was not acknowledged by Alertmanager yet.

Acknowledged resolutions are kept for ``retention`` (a repeated ``put`` of the same resolution is then
recognised and not sent again) and deleted after.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from vigil.alerts.alertmanager import AlertmanagerError, AlertmanagerUnavailable, AlertsRejected
from vigil.alerts.model import Alert

log = logging.getLogger(__name__)

BATCH = 256  # alerts per POST, as Prometheus' notifier batches them

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    fingerprint TEXT PRIMARY KEY,
    alert       TEXT NOT NULL,              -- the latest state, JSON
    resolved    INTEGER NOT NULL,           -- 1 when that state has an endsAt
    version     INTEGER NOT NULL DEFAULT 1, -- bumped on each change; a delivery acks only what it sent
    sent_at     REAL,                       -- when this version was last delivered; NULL: not yet
    attempts    INTEGER NOT NULL DEFAULT 0, -- failed deliveries of this version
    last_error  TEXT
)
"""


class AlertSink(Protocol):
    """What the outbox delivers to: ``AlertmanagerClient`` (one instance or an HA set)."""

    def post_alerts(self, alerts: Sequence[Alert]) -> None: ...


@dataclass(frozen=True)
class FlushResult:
    sent: int = 0
    failed: int = 0  # not delivered (Alertmanager unavailable): still due, retried at the next flush
    rejected: int = 0  # refused by Alertmanager: logged, retried only at the next re-send
    pending: int = 0  # states not delivered yet after this flush


@dataclass(frozen=True)
class _Row:
    fingerprint: str
    alert: Alert
    version: int


class Outbox:
    def __init__(
        self,
        path: str | Path,
        sink: AlertSink,
        *,
        resend_interval: float = 60.0,
        expire_after: float | None = None,
        retention: float = 3600.0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.sink = sink
        self.resend_interval = resend_interval
        # A firing alert is sent with endsAt = now + expire_after. While vigil lives, each re-send pushes
        # endsAt further out; if vigil dies, the re-sends stop and Alertmanager resolves the alert by
        # itself at endsAt instead of showing it firing forever. Without an endsAt Alertmanager would use
        # now + resolve_timeout (5m by default), which a resend interval longer than that would break.
        # Several intervals (Prometheus uses 4) let a re-send or two fail without a spurious resolution.
        self.expire_after = expire_after if expire_after is not None else 4 * resend_interval
        self.retention = retention
        self._lock = threading.Lock()  # one connection shared by the pipeline and the flusher threads
        self._flushing = threading.Lock()  # one delivery round at a time: no double sends of a row
        self._db = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, crash-safe
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL keeps this durable across process crashes
            self._db.execute(SCHEMA)
        registry = registry if registry is not None else CollectorRegistry()
        self._sent = Counter(
            "vigil_alerts_sent", "Alert states delivered to Alertmanager.", ["state"], registry=registry
        )
        self._failures = Counter(
            "vigil_alerts_delivery_failures",
            "Alert deliveries that failed (unavailable, refused: kept and retried; rejected: bad alert).",
            ["reason"],
            registry=registry,
        )
        self._pending = Gauge(
            "vigil_outbox_pending", "Alert states in the outbox not yet delivered.", registry=registry
        )
        self._pending.set(self.pending())

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- storing ----------------------------------------------------------------------------------------

    def put(self, alert: Alert) -> bool:
        """Record the latest state of ``alert``; True when it changed (and is now due)."""
        body = json.dumps(asdict(alert), sort_keys=True)
        with self._lock:
            changed = self._db.execute(
                """INSERT INTO outbox (fingerprint, alert, resolved) VALUES (?, ?, ?)
                   ON CONFLICT (fingerprint) DO UPDATE SET
                       alert = excluded.alert, resolved = excluded.resolved, version = version + 1,
                       sent_at = NULL, attempts = 0, last_error = NULL
                   WHERE alert != excluded.alert""",
                (alert.fingerprint, body, int(alert.ends_at is not None)),
            ).rowcount
        if changed:
            self._pending.set(self.pending())
        return bool(changed)

    def pending(self) -> int:
        """States not delivered yet (firing alerts waiting only for their re-send are not counted)."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0])

    def stored(self) -> dict[str, Alert]:
        """Every alert the outbox holds, by fingerprint."""
        with self._lock:
            rows = self._db.execute("SELECT fingerprint, alert FROM outbox").fetchall()
        return {fp: _decode(body) for fp, body in rows}

    # --- delivering -----------------------------------------------------------------------------------

    def flush(self, now: float) -> FlushResult:
        """Deliver everything due at ``now``; drop resolutions acknowledged more than ``retention`` ago."""
        with self._flushing:
            due = self._due(now)
            sent = failed = rejected = 0
            for start in range(0, len(due), BATCH):
                batch = due[start : start + BATCH]
                outcome = self._deliver(batch, now)
                sent, failed, rejected = sent + outcome[0], failed + outcome[1], rejected + outcome[2]
                if outcome[1]:  # unavailable: the next batches would only wait for the same timeouts
                    break
            with self._lock:
                self._db.execute(
                    "DELETE FROM outbox WHERE resolved = 1 AND sent_at IS NOT NULL AND sent_at <= ?",
                    (now - self.retention,),
                )
            pending = self.pending()
            self._pending.set(pending)
            return FlushResult(sent, failed, rejected, pending)

    def _due(self, now: float) -> list[_Row]:
        with self._lock:
            rows = self._db.execute(
                """SELECT fingerprint, alert, version FROM outbox
                   WHERE sent_at IS NULL OR (resolved = 0 AND sent_at <= ?)
                   ORDER BY fingerprint""",
                (now - self.resend_interval,),
            ).fetchall()
        return [_Row(fp, _decode(body), version) for fp, body, version in rows]

    def _deliver(self, batch: list[_Row], now: float) -> tuple[int, int, int]:
        """Send ``batch``; returns (sent, failed, rejected)."""
        try:
            self.sink.post_alerts([self._as_sent(row.alert, now) for row in batch])
        except AlertsRejected as refusal:
            refused = {alert.fingerprint: reason for alert, reason in refusal.rejected}
            for alert, reason in refusal.rejected:
                log.error("Alertmanager rejected alert %s: %s", dict(alert.labels), reason)
            # Refused states count as delivered: re-sending each flush would only repeat the refusal;
            # a firing one is tried again at its next re-send, its error kept in ``last_error``.
            self._acknowledge(batch, now, refused)
            self._count_sent([row for row in batch if row.fingerprint not in refused])
            self._failures.labels("rejected").inc(len(refused))
            return len(batch) - len(refused), 0, len(refused)
        except AlertmanagerError as error:
            # Unreachable, or a 401/403/404 (a wrong URL or credentials, fixed by configuration): either
            # way the alerts stay due and the next flush tries again.
            reason = "unavailable" if isinstance(error, AlertmanagerUnavailable) else "refused"
            log.warning("alerts not delivered, %d kept for the next flush: %s", len(batch), error)
            self._record_failure(batch, str(error))
            self._failures.labels(reason).inc(len(batch))
            return 0, len(batch), 0
        self._acknowledge(batch, now, {})
        self._count_sent(batch)
        return len(batch), 0, 0

    def _count_sent(self, rows: list[_Row]) -> None:
        for row in rows:
            self._sent.labels("resolved" if row.alert.ends_at is not None else "firing").inc()

    def _as_sent(self, alert: Alert, now: float) -> Alert:
        return alert if alert.ends_at is not None else replace(alert, ends_at=now + self.expire_after)

    def _acknowledge(self, rows: list[_Row], now: float, errors: dict[str, str]) -> None:
        # Only the version that was sent: a state put while the request was in flight stays due.
        with self._lock:
            self._db.execute("BEGIN")
            for row in rows:
                error = errors.get(row.fingerprint)
                self._db.execute(
                    """UPDATE outbox SET sent_at = ?, attempts = attempts + ?, last_error = ?
                       WHERE fingerprint = ? AND version = ?""",
                    (now, int(error is not None), error, row.fingerprint, row.version),
                )
            self._db.execute("COMMIT")

    def _record_failure(self, rows: list[_Row], error: str) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            for row in rows:
                self._db.execute(
                    """UPDATE outbox SET attempts = attempts + 1, last_error = ?
                       WHERE fingerprint = ? AND version = ?""",
                    (error, row.fingerprint, row.version),
                )
            self._db.execute("COMMIT")


def _decode(body: str) -> Alert:
    return Alert.from_dict(json.loads(body))
