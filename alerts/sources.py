"""``VigilSourceDown``: vigil tells the on-call engineer when it has gone blind.

A source vigil reads (Prometheus, Elasticsearch, the scrape targets) that has not answered for
``down_for`` seconds raises one alert per source, a ticket with the error in its description: while it
lasts, the signals read from that source are not scored and cannot alert. It resolves when the source
answers again (the engine then catches up on what it missed and marks the outage as a gap).

It goes through the same outbox as every other alert, so an Alertmanager that is itself away hears it
when it is back; it never joins an incident of the watched system (it is about vigil, not about them).
Like ``RuleEvaluator`` it hands over every firing alert each round, and each resolution for
``resolved_retention`` seconds, and its state survives a restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any, Protocol

from vigil.alerts.model import ALERTNAME, KIND, SEVERITY, TICKET, Alert, rfc3339

ALERT = "VigilSourceDown"
SOURCE, SELF = "source", "vigil"  # the label naming the source; the ``kind`` of alerts about vigil itself


class SourceState(Protocol):
    """What the engine knows of a source (``vigil.runtime.engine.SourceHealth``)."""

    @property
    def up(self) -> bool: ...
    @property
    def down_since(self) -> float | None: ...
    @property
    def error(self) -> str | None: ...


class SourceWatch:
    def __init__(self, down_for: float, resolved_retention: float = 300.0, severity: str = TICKET) -> None:
        self.down_for, self.resolved_retention, self.severity = down_for, resolved_retention, severity
        self._alerts: dict[str, Alert] = {}  # by source: firing, or resolved within the retention

    def evaluate(self, sources: Mapping[str, SourceState], now: float) -> list[Alert]:
        for name, source in sources.items():
            alert = self._alerts.get(name)
            down = (
                not source.up and source.down_since is not None and now - source.down_since >= self.down_for
            )
            if down:
                if alert is None or alert.ends_at is not None:  # a new outage: a new occurrence
                    alert = Alert(self._labels(name), starts_at=now)
                self._alerts[name] = replace(alert, annotations=self._annotations(name, source, now))
            elif alert is not None and alert.ends_at is None and source.up:
                self._alerts[name] = alert.resolve(now)
        for name, alert in list(self._alerts.items()):
            gone = name not in sources and alert.ends_at is None  # no longer configured: nothing to watch
            if gone:
                self._alerts[name] = alert = alert.resolve(now)
            if alert.ends_at is not None and now - alert.ends_at > self.resolved_retention:
                del self._alerts[name]
        return list(self._alerts.values())

    def firing(self) -> list[Alert]:
        return [a for a in self._alerts.values() if a.ends_at is None]

    def state(self) -> list[dict[str, Any]]:
        """JSON-ready; ``restore`` takes it back (a restarted vigil keeps the alert's start)."""
        return [{"source": name, "alert": asdict(alert)} for name, alert in self._alerts.items()]

    def restore(self, state: list[dict[str, Any]]) -> None:
        self._alerts = {row["source"]: Alert.from_dict(row["alert"]) for row in state}

    def _labels(self, source: str) -> dict[str, str]:
        return {ALERTNAME: ALERT, SOURCE: source, SEVERITY: self.severity, KIND: SELF}

    @staticmethod
    def _annotations(name: str, source: SourceState, now: float) -> dict[str, str]:
        since = source.down_since if source.down_since is not None else now
        return {  # the same text every round of one outage: nothing to re-deliver but the alert itself
            "summary": f"vigil cannot read {name} since {rfc3339(since)}",
            "description": f"{name}: {source.error or 'no answer'}. The signals read from it are not scored "
            "while it lasts; vigil catches up on what it missed when it answers again.",
        }
