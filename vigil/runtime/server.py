"""vigil's HTTP API: /metrics, /healthz, /api/v1/signals, plus the routers given (OpenAPI at /docs)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from pydantic import BaseModel

from vigil import __version__
from vigil.runtime.engine import Engine
from vigil.runtime.exporter import EVERYTHING, EngineCollector, exposition
from vigil.runtime.series import SeriesState


class SignalView(BaseModel):
    signal: str
    labels: dict[str, str]
    source: str
    timestamp: float | None
    observed: float | None
    anomaly_score: float | None
    expected: float | None
    expected_lower: float | None
    expected_upper: float | None
    points: int


class SourceView(BaseModel):
    up: bool
    error: str | None
    last_success: float | None
    down_since: float | None
    gaps: list[tuple[float, float]]


class Health(BaseModel):
    status: str  # "ok", or "degraded" while a source is down
    sources: dict[str, SourceView]


def _view(state: SeriesState) -> SignalView:
    band = state.band
    return SignalView(
        signal=state.key.signal,
        labels=state.key.label_dict(),
        source=state.source,
        timestamp=state.last_point.timestamp if state.last_point else None,
        observed=state.observed,
        anomaly_score=state.score,
        expected=band.expected if band else None,
        expected_lower=band.lower if band else None,
        expected_upper=band.upper if band else None,
        points=len(state.trail),
    )


def _json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as strings: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, which shows the offending input. Python's JSON parser reads NaN and Infinity, which
    JSON cannot write back: without this, a body holding them would be answered with a 500."""
    return JSONResponse(status_code=422, content={"detail": _json_safe(jsonable_encoder(error.errors()))})


def create_app(
    engine: Engine,
    registry: CollectorRegistry | None = None,
    routers: Sequence[APIRouter] = (),
    on_shutdown: Callable[[], None] | None = None,
    exported: Sequence[str] = EVERYTHING,
) -> FastAPI:
    """The API; ``on_shutdown`` runs when the server stops, SIGTERM included (uvicorn re-raises the
    signal once it has shut down, so code after ``uvicorn.run`` never runs then)."""
    registry = registry if registry is not None else CollectorRegistry()
    registry.register(EngineCollector(engine))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:
            on_shutdown()

    app = FastAPI(
        title="vigil",
        version=__version__,
        description="Anomaly scores of the signals of the watched system, and vigil's own health.",
        lifespan=lifespan,
        exception_handlers={RequestValidationError: invalid_request},
    )

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(exposition(engine, registry, exported), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", response_model=Health)
    def healthz() -> Health:
        sources = {
            name: SourceView(
                up=h.up,
                error=h.error,
                last_success=h.last_success,
                down_since=h.down_since,
                gaps=list(h.gaps),
            )
            for name, h in engine.sources.items()
        }
        return Health(status="ok" if all(s.up for s in sources.values()) else "degraded", sources=sources)

    @app.get("/api/v1/signals", response_model=list[SignalView])
    def signals(signal: str | None = None, anomalous: bool = False) -> list[SignalView]:
        """Every series vigil watches with its latest value, score and normal band."""
        return [
            _view(s)
            for s in engine.series()
            if (signal is None or s.key.signal == signal) and (not anomalous or (s.score or 0) > 1)
        ]

    for router in routers:  # incidents (vigil.runtime.incidents_api), Alertmanager's webhook, ...
        app.include_router(router)
    return app
