"""Alert rules over detector scores, with Prometheus' ``for`` and ``keep_firing_for`` semantics.

Every detector scores on one scale (above 1 is anomalous), so one rule shape fits every signal:
a series whose score rises above ``threshold`` is *pending*; once it has stayed above for ``for_``
the alert *fires*. A signal may declare a ``limit`` (an SLO's threshold): a value past it fires at
once, whatever the score, like a static rule at the SLO; ``for_`` is there to confirm a statistical
guess, and a breached objective needs no confirmation. A firing alert resolves only after its score
has stayed below ``resolve_below`` (and its value under the limit) for ``keep_firing_for``: the gap
between the two thresholds and the hold time keep a score that wobbles around 1 from paging,
resolving and paging again (hysteresis).

The evaluator is stateful (keyed by the alert's fingerprint) but never reads a clock: each
evaluation is given its time, so a backtest and a test replay exactly what production does. Its state
(``state``/``restore``) outlives the process in the alert memory, as Prometheus keeps ``for`` state in
``ALERTS_FOR_STATE``: a restart neither re-pends an alert about to fire nor re-fires one already told.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlencode

from vigil.alerts.model import ALERTNAME, ANOMALY, KIND, SERVICE, SEVERITY, SIGNAL, TICKET, Alert, fingerprint
from vigil.collectors.model import SeriesKey
from vigil.detectors.base import Band

# How long Prometheus keeps re-sending a resolved alert, so a lost "resolved" still reaches Alertmanager.
RESOLVED_RETENTION = 15 * 60.0
EN_DASH = "\u2013"  # ranges read "0.1 to 0.3" with an en dash, as people write them


@dataclass(frozen=True)
class Observation:
    """One series as the engine sees it at an evaluation: its latest score, value and normal band."""

    key: SeriesKey
    t: float  # time of the latest point
    score: float | None  # None while the detector warms up
    observed: float | None = None
    band: Band | None = None
    time_to_breach: float | None = None


def service_of(labels: Mapping[str, str]) -> str | None:
    """The service an alert is about when nothing else is known: its ``service`` label."""
    return labels.get(SERVICE) or None


@dataclass(frozen=True)
class Links:
    """Where an alert points people: templates take ``{service}`` and ``{signal}``."""

    base_url: str = "http://127.0.0.1:9400"  # vigil's API, for the generator URL
    dashboard_url: str = ""
    runbook_url: str = ""

    def __post_init__(self) -> None:
        for template in (self.dashboard_url, self.runbook_url):
            fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
            if fields - {"service", "signal"}:
                raise ValueError(f"link template {template!r} may only use {{service}} and {{signal}}")

    def render(self, template: str, service: str, signal: str) -> str:
        return template.format(service=quote(service, safe=""), signal=quote(signal, safe=""))

    def generator(self, signal: str) -> str:
        return f"{self.base_url.rstrip('/')}/api/v1/signals?{urlencode({'signal': signal})}"


@dataclass(frozen=True)
class AlertRule:
    alertname: str = "VigilAnomaly"
    threshold: float = 1.0
    for_: float = 0.0
    keep_firing_for: float = 0.0
    resolve_below: float | None = None  # None: the threshold itself (no hysteresis band)
    severity: str = TICKET
    severities: Mapping[str, str] = field(default_factory=dict)  # signal -> severity
    # signal -> the value above which users are hurt (an SLO's threshold): past it, an alert fires at once.
    limits: Mapping[str, float] = field(default_factory=dict)
    signals: frozenset[str] | None = None  # the signals this rule watches; None: all
    context_signals: frozenset[str] = frozenset()  # scored and shown, never alerted on by themselves
    descriptions: Mapping[str, str] = field(default_factory=dict)  # signal -> what it measures
    links: Links = field(default_factory=Links)
    # The service an alert belongs to (routing, incidents): e.g. a queue's consumer, from the system file.
    owner: Callable[[Mapping[str, str]], str | None] = service_of

    def __post_init__(self) -> None:
        if self.for_ < 0 or self.keep_firing_for < 0:
            raise ValueError("for_ and keep_firing_for must not be negative")
        if self.resolve_below is not None and self.resolve_below > self.threshold:
            raise ValueError(f"resolve_below {self.resolve_below} is above the threshold {self.threshold}")

    @property
    def resolve_level(self) -> float:
        return self.threshold if self.resolve_below is None else self.resolve_below

    def past_limit(self, observation: Observation) -> bool:
        """The observed value is above its signal's limit: a fact to alert on, not a guess to confirm."""
        limit = self.limits.get(observation.key.signal)
        return limit is not None and observation.observed is not None and observation.observed > limit

    def watches(self, key: SeriesKey) -> bool:
        if key.signal in self.context_signals:
            return False
        return self.signals is None or key.signal in self.signals

    def labels(self, key: SeriesKey) -> dict[str, str]:
        """The alert's identity: the series' labels plus what Alertmanager routes on."""
        labels = key.label_dict()
        service = self.owner(labels)
        if service:
            labels[SERVICE] = service
        labels |= {
            ALERTNAME: self.alertname,
            SIGNAL: key.signal,
            SEVERITY: self.severities.get(key.signal, self.severity),
            # Alertmanager inhibits on it: an SLO page (kind="slo") mutes the same service's anomalies.
            KIND: ANOMALY,
        }
        return labels

    def annotations(self, observation: Observation, labels: Mapping[str, str]) -> dict[str, str]:
        signal, service = observation.key.signal, labels.get(SERVICE, "")
        subject = service or str(observation.key)
        score = observation.score or 0.0
        notes = {
            "summary": f"{signal} is anomalous for {subject} (score {score:.2f})",
            "anomaly_score": f"{score:.3f}",
        }
        facts = [f"{observation.key} has anomaly score {score:.2f} (above {self.threshold:g} is anomalous)"]
        if observation.observed is not None:
            notes["observed"] = f"{observation.observed:.4g}"
            facts.append(f"observed {observation.observed:.4g}")
        if self.past_limit(observation):
            notes["limit"] = f"{self.limits[signal]:.4g}"
            notes["summary"] = f"{signal} is past its limit {notes['limit']} for {subject}"
            facts.append(f"past its limit {notes['limit']}")
        if observation.band is not None:
            notes["expected_range"] = f"{observation.band.lower:.4g} {EN_DASH} {observation.band.upper:.4g}"
            facts.append(f"expected {notes['expected_range']}")
        eta = observation.time_to_breach
        if eta is not None and math.isfinite(eta):
            notes["time_to_slo_breach"] = human_duration(eta)
            facts.append(f"limit reached in {notes['time_to_slo_breach']}")
        what = self.descriptions.get(signal)
        notes["description"] = (f"{what}. " if what else "") + "; ".join(facts) + "."
        for name, template in (
            ("dashboard_url", self.links.dashboard_url),
            ("runbook_url", self.links.runbook_url),
        ):
            if template:
                notes[name] = self.links.render(template, service or _board_of(labels), signal)
        return notes


def _board_of(labels: Mapping[str, str]) -> str:
    """The {service} of a link for an alert about no service: a backing component's trouble is drawn on
    the infrastructure dashboard (``vigil-infrastructure``, as ``vigil-{service}`` names a service's)."""
    return "infrastructure" if labels.get("component") else "unknown"


def human_duration(seconds: float) -> str:
    """``4m10s``, ``2h5m``, ``0s``: short enough for a page."""
    total = max(round(seconds), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


@dataclass
class _Tracked:
    """One alert's life: pending since, fired at, below the resolve level since, resolved at."""

    alert: Alert
    pending_since: float
    fired_at: float | None = None
    below_since: float | None = None
    resolved_at: float | None = None


class RuleEvaluator:
    """Evaluates one rule over successive observations; returns firing and recently resolved alerts."""

    def __init__(self, rule: AlertRule, resolved_retention: float = RESOLVED_RETENTION) -> None:
        self.rule = rule
        self.resolved_retention = resolved_retention
        self._tracked: dict[str, _Tracked] = {}

    def evaluate(self, observations: Sequence[Observation], now: float) -> list[Alert]:
        seen: set[str] = set()
        for observation in observations:
            if not self.rule.watches(observation.key):
                continue
            labels = self.rule.labels(observation.key)
            key = fingerprint(labels)
            seen.add(key)
            self._step(key, labels, observation, now)
        for key in list(self._tracked):
            if key not in seen:  # the series is gone (evicted, no data): nothing says it is still anomalous
                self._step(key, self._tracked[key].alert.labels, None, now)
        return [t.alert for t in self._tracked.values() if t.fired_at is not None]

    def pending(self) -> list[Alert]:
        """Alerts above the threshold that have not yet lasted ``for_``."""
        return [t.alert for t in self._tracked.values() if t.fired_at is None]

    def pending_since(self, key: str) -> float | None:
        """When the alert with fingerprint ``key`` first passed the threshold (None: not tracked)."""
        tracked = self._tracked.get(key)
        return tracked.pending_since if tracked is not None else None

    def firing(self) -> list[Alert]:
        """Alerts that fired and have not resolved."""
        return [t.alert for t in self._tracked.values() if t.fired_at is not None and t.resolved_at is None]

    def state(self) -> list[dict[str, Any]]:
        """Everything the evaluator tracks, JSON-ready; ``restore`` takes it back."""
        return [asdict(tracked) for tracked in self._tracked.values()]

    def restore(self, state: list[dict[str, Any]]) -> None:
        tracked = [_Tracked(**{**row, "alert": Alert.from_dict(row["alert"])}) for row in state]
        self._tracked = {t.alert.fingerprint: t for t in tracked}

    def _step(self, key: str, labels: dict[str, str], observation: Observation | None, now: float) -> None:
        rule, tracked = self.rule, self._tracked.get(key)
        score = observation.score if observation is not None else None
        breached = observation is not None and rule.past_limit(observation)
        above = breached or (score is not None and score > rule.threshold)
        if tracked is not None and tracked.resolved_at is not None:
            if not above:  # resolved alerts are re-sent for a while, then forgotten
                if now - tracked.resolved_at > self.resolved_retention:
                    del self._tracked[key]
                return
            tracked = None  # firing again: a new occurrence that starts over, as in Prometheus
        if tracked is None:
            if not above:
                return
            tracked = self._tracked[key] = _Tracked(Alert(labels, starts_at=now), pending_since=now)
        if observation is not None:
            tracked.alert = replace(tracked.alert, annotations=rule.annotations(observation, labels))
        if tracked.fired_at is None:
            if not above:  # pending alerts that drop back never fire, and are forgotten
                del self._tracked[key]
            elif breached or now - tracked.pending_since >= rule.for_:
                tracked.fired_at = now
                tracked.alert = replace(
                    tracked.alert, starts_at=now, generator_url=rule.links.generator(labels[SIGNAL])
                )
            return
        if breached or (score is not None and score >= rule.resolve_level):
            tracked.below_since = None
            return
        if tracked.below_since is None:
            tracked.below_since = now
        if now - tracked.below_since >= rule.keep_firing_for:
            tracked.resolved_at = now
            tracked.alert = tracked.alert.resolve(now)
