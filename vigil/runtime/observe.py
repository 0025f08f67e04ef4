"""The engine's series as the alert rules see them, and whom an alert belongs to in the watched system."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

from vigil.alerts.model import SERVICE
from vigil.alerts.rules import Observation
from vigil.runtime.series import SeriesState
from vigil.system import System

# Seconds until a series crosses its limit (an SLO, a queue's capacity), as of a given time; None: unknown.
TimeToBreach = Callable[[SeriesState, float], float | None]


def detector_time_to_threshold(state: SeriesState, now: float) -> float | None:
    """The forecast of a detector that makes one (the queue backlog's), looking through wrappers."""
    if state.chunk is not None:
        return None  # batched detectors (rolling MAD, seasonal baseline) make no forecast
    detector: object = state.detector
    while detector is not None:
        forecast = getattr(detector, "time_to_threshold", None)
        if callable(forecast):
            value = forecast(now)
            return float(value) if value is not None else None
        detector = getattr(detector, "detector", None)  # Calibrated and Excluding keep the wrapped one here
    return None


def observe(
    states: Iterable[SeriesState],
    now: float,
    time_to_breach: TimeToBreach | None = detector_time_to_threshold,
) -> list[Observation]:
    """The engine's series as rule inputs; series without any point yet have nothing to say."""
    observations = []
    for state in states:
        last = state.last_point
        if last is None:
            continue
        score = state.score if state.score is not None and math.isfinite(state.score) else None
        eta = time_to_breach(state, now) if time_to_breach is not None else None
        observations.append(Observation(state.key, last.timestamp, score, state.observed, state.band, eta))
    return observations


def owner_in(system: System | None) -> Callable[[Mapping[str, str]], str | None]:
    """Whom an alert belongs to: its ``service`` label, else the label the system's telemetry names its
    services by (``job`` under OpenTelemetry's conventions) when it holds one of them, else the consumer
    of its ``queue`` (a growing queue is its consumer's problem: it is not keeping up). Component alerts
    keep their ``component``."""
    services = set(system.service_names) if system is not None else set()

    def owner(labels: Mapping[str, str]) -> str | None:
        if labels.get(SERVICE):
            return labels[SERVICE]
        if system is None:
            return None
        named = labels.get(system.telemetry.service_label)
        if named in services:
            return named
        if labels.get("queue"):
            return system.queue_owner(labels["queue"])
        return None

    return owner
