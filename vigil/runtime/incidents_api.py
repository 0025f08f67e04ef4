"""``/api/v1/incidents``: vigil's incidents, and a summary of each a person wants to read (text or HTML)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel

from vigil.alerts.incidents import Incident
from vigil.alerts.model import SIGNAL, Alert
from vigil.alerts.summary import IncidentView, SeriesHistory, render_html, render_text
from vigil.runtime.alerting import AlertPath
from vigil.runtime.engine import Engine
from vigil.runtime.series import SeriesState


class AlertOut(BaseModel):
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    ends_at: float | None


class IncidentOut(BaseModel):
    id: str
    status: str  # firing | resolved
    severity: str
    headline: str
    services: list[str]
    likely_cause: str
    suspects: list[str]
    opened_at: float
    resolved_at: float | None
    alerts: list[AlertOut]


def _out(incident: Incident) -> IncidentOut:
    return IncidentOut(
        id=incident.id,
        status=incident.status,
        severity=incident.severity,
        headline=incident.headline,
        services=incident.services,
        likely_cause=incident.likely_cause,
        suspects=[s.service for s in incident.suspects],
        opened_at=incident.opened_at,
        resolved_at=incident.resolved_at,
        alerts=[
            AlertOut(
                fingerprint=a.fingerprint,
                labels=a.labels,
                annotations=a.annotations,
                starts_at=a.starts_at,
                ends_at=a.ends_at,
            )
            for a in incident.alerts.values()
        ],
    )


def _series_of(alert: Alert, states: Sequence[SeriesState]) -> SeriesState | None:
    """The series an alert is about: same signal, and all of the series' labels on the alert."""
    for state in states:
        if state.key.signal == alert.labels.get(SIGNAL) and all(
            alert.labels.get(name) == value for name, value in state.key.labels
        ):
            return state
    return None


def history(state: SeriesState, fingerprint: str = "") -> SeriesHistory:
    t, observed, score, expected, lower, upper = state.trail.array().T
    labels = " ".join(f"{k}={v}" for k, v in state.key.labels)
    name = f"{state.key.signal} {labels}".strip()
    return SeriesHistory(name, t, observed, expected, lower, upper, score, fingerprint=fingerprint)


def incidents_router(alerts: AlertPath, engine: Engine, clock: Callable[[], float] = time.time) -> APIRouter:
    router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])
    unknown: dict[int | str, dict[str, Any]] = {
        404: {"description": "no such incident, open or recently resolved"}
    }

    def find(incident_id: str) -> Incident:
        open_, resolved = alerts.snapshot()
        for incident in [*open_, *resolved]:
            if incident.id == incident_id:
                return incident
        raise HTTPException(404, f"no incident {incident_id!r} (open or recently resolved)")

    @router.get("", response_model=list[IncidentOut])
    def list_incidents(status: Literal["open", "resolved", "all"] = "open") -> list[IncidentOut]:
        """Incidents, newest first: open ones by default."""
        open_, resolved = alerts.snapshot()
        chosen = {"open": open_, "resolved": resolved, "all": [*open_, *resolved]}[status]
        return [_out(i) for i in sorted(chosen, key=lambda i: i.opened_at, reverse=True)]

    @router.get("/{incident_id}", response_model=IncidentOut, responses=unknown)
    def get_incident(incident_id: str) -> IncidentOut:
        return _out(find(incident_id))

    @router.get("/{incident_id}/summary", response_class=Response, responses=unknown)
    def summary(incident_id: str, format: Literal["text", "html"] = "text") -> Response:
        """What is wrong, where, since when, the likely cause, and each signal's plot (HTML)."""
        incident = find(incident_id)
        states = engine.series()
        histories = []
        for alert in incident.alerts.values():
            state = _series_of(alert, states)
            if state is not None and state.trail:
                histories.append(history(state, alert.fingerprint))
        view = IncidentView(
            id=incident.id,
            title=f"{incident.headline} anomalous",
            service=incident.services[0] if incident.services else "",
            severity=incident.severity,
            status=incident.status,
            opened_at=incident.opened_at,
            resolved_at=incident.resolved_at,
            alerts=list(incident.alerts.values()),
            suspects=[s.service for s in incident.suspects],
        )
        if format == "html":
            return Response(render_html(view, histories, clock()), media_type="text/html")
        return Response(render_text(view, histories, clock()), media_type="text/plain")

    return router
