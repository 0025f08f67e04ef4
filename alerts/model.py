"""The alert: what every stage of the alert path passes on, shaped like Alertmanager's own.

An alert is identified by its label set (its *fingerprint*), exactly as in Alertmanager, so the
same problem raised again is the same alert, and Alertmanager deduplicates what vigil re-sends.
Times are unix seconds; they become RFC 3339 only at the Alertmanager boundary.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

# Label names vigil sets; Alertmanager routes, groups and inhibits on them.
ALERTNAME, SERVICE, SEVERITY, SIGNAL = "alertname", "service", "severity", "signal"
PAGE, TICKET = "page", "ticket"
KIND, ANOMALY, SLO = "kind", "anomaly", "slo"  # what raised the alert: vigil's detectors or an SLO rule
# The incident an alert first joined: Alertmanager groups on it, so one problem is one notification. It
# never changes for the life of the alert (a label change would make it another alert to Alertmanager).
INCIDENT = "incident"
SEVERITY_RANK = {TICKET: 1, PAGE: 2}  # unknown severities rank lowest


def severity_rank(severity: str) -> int:
    return SEVERITY_RANK.get(severity, 0)


def fingerprint(labels: dict[str, str]) -> str:
    """A stable id of a label set: the same labels give the same id in every process and on every machine."""
    text = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Alert:
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    starts_at: float = 0.0
    ends_at: float | None = None  # set when resolved
    generator_url: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    @property
    def name(self) -> str:
        return self.labels.get(ALERTNAME, "")

    @property
    def service(self) -> str:
        return self.labels.get(SERVICE, "")

    @property
    def severity(self) -> str:
        return self.labels.get(SEVERITY, "")

    @property
    def rule_fingerprint(self) -> str:
        """The fingerprint of the alert as its rule raised it, before the alert path added its incident."""
        return fingerprint({k: v for k, v in self.labels.items() if k != INCIDENT})

    def resolved(self, now: float) -> bool:
        return self.ends_at is not None and self.ends_at <= now

    def resolve(self, at: float) -> Alert:
        return replace(self, ends_at=at)

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Alert:
        """The inverse of ``dataclasses.asdict``: how the outbox and the alert memory store alerts."""
        return cls(**body)

    def to_api(self) -> dict[str, Any]:
        """The body of one alert in Alertmanager's ``POST /api/v2/alerts``."""
        body: dict[str, Any] = {
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": rfc3339(self.starts_at),
        }
        if self.ends_at is not None:
            body["endsAt"] = rfc3339(self.ends_at)
        if self.generator_url:
            body["generatorURL"] = self.generator_url
        return body
