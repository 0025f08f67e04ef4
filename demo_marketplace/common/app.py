"""One FastAPI application layout for every marketplace service.

``create_app`` wires what all services share — settings, metrics, ECS logs, request ids,
/healthz, /metrics, fault hooks — around the service's own router from ``services/<name>.py``.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import ModuleType

from fastapi import Depends, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.demo_marketplace.catalog import Service, service
from vigil.demo_marketplace.common import logs
from vigil.demo_marketplace.common.broker import Broker
from vigil.demo_marketplace.common.clients import Cache, Database, ServiceClient
from vigil.demo_marketplace.common.faults import FaultState, act_out_bad_release
from vigil.demo_marketplace.common.settings import ServiceSettings
from vigil.demo_marketplace.common.telemetry import ServiceMetrics, exposition, status_class

log = logging.getLogger(__name__)


@dataclass
class Resources:
    """The connections a service holds for its lifetime; which ones depends on ``Service.uses``."""

    settings: ServiceSettings
    spec: Service
    metrics: ServiceMetrics
    faults: FaultState
    peers: ServiceClient
    db: Database | None = None
    cache: Cache | None = None
    broker: Broker | None = None
    leaked: list[bytearray] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)  # the service's own loops (a relay)

    async def open(self) -> None:
        s = self.settings
        if "postgresql" in self.spec.uses:
            self.db = Database(s.postgres_dsn, s.db_pool_size, self.metrics)
            await self.db.open()
        if "redis" in self.spec.uses:
            self.cache = Cache(s.redis_url, s.cache_ttl_seconds, self.metrics, enabled=s.cache_enabled)
        if "rabbitmq" in self.spec.uses:
            self.broker = Broker(s.amqp_url, self.metrics, self.faults)
            await self.broker.open()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for resource in (self.broker, self.cache, self.db, self.peers):
            if resource is not None:
                await resource.close()


def service_module(name: str) -> ModuleType:
    return importlib.import_module(f"vigil.demo_marketplace.services.{name.replace('-', '_')}")


def create_app(settings: ServiceSettings, registry: CollectorRegistry | None = None) -> FastAPI:
    spec = service(settings.service)
    module = service_module(spec.name)
    metrics = ServiceMetrics(spec.name, registry if registry is not None else CollectorRegistry())
    resources = Resources(
        settings=settings,
        spec=spec,
        metrics=metrics,
        faults=FaultState(settings.faults_file, spec.name),
        peers=ServiceClient(metrics, settings.service_urls, settings.downstream_timeout_seconds),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await resources.open()
        start = getattr(module, "start", None)
        if start is not None:
            await start(resources)  # consumers subscribe here
        log.info("service started", extra={"event.action": "start"})
        yield
        await resources.close()

    app = FastAPI(title=f"marketplace {spec.name}", description=spec.description, lifespan=lifespan)
    app.state.resources = resources
    app.add_middleware(Telemetry, resources=resources)

    async def bad_release() -> None:
        act_out_bad_release(resources.faults, metrics)

    # A dependency of the service's own routes (not /healthz, /metrics): it runs after routing, so
    # a request failed by a bad release keeps its route label and takes the middleware's
    # unhandled-error path (logged, counted as 5xx), and it fails before the handler does any work.
    app.include_router(module.router, dependencies=[Depends(bad_release)])

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": spec.name}

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return Response(exposition(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


class Telemetry:
    """Request ids, per-route metrics and error logs around every request but /metrics and /healthz.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` (``app.middleware("http")``) costs a
    task and a body stream per request, a large share of a cache hit's time.
    """

    def __init__(self, app: ASGIApp, resources: Resources) -> None:
        self.app, self.resources = app, resources

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in ("/metrics", "/healthz"):
            await self.app(scope, receive, send)
            return
        m = self.resources.metrics
        given = dict(scope["headers"]).get(b"x-request-id")
        request_id = given.decode("latin-1") if given else uuid.uuid4().hex
        logs.request_id.set(request_id)
        _act_out_memory_leak(self.resources)
        started, status, answered = time.perf_counter(), 500, False

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
            await send(message)

        m.http_server_active.labels(m.service).inc()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", extra={"url.path": scope["path"]})
            status = 500
            if not answered:  # else the client already has its status line: the connection just ends
                await JSONResponse({"detail": "internal error"}, status_code=500)(
                    scope, receive, send_with_id
                )
        finally:
            m.http_server_active.labels(m.service).dec()
        route = getattr(scope.get("route"), "path", "unmatched")
        m.http_server_duration.labels(m.service, route, scope["method"], status_class(status)).observe(
            time.perf_counter() - started
        )
        if status >= 500:
            log.error("request failed", extra={"http.response.status_code": status, "url.path": route})


def _act_out_memory_leak(resources: Resources) -> None:
    leak = resources.faults.active("memory-leak")
    resources.metrics.fault_active.labels(resources.spec.name, "memory-leak").set(1 if leak else 0)
    if leak:
        resources.leaked.append(bytearray(int(leak.get("kb_per_request", 64)) * 1024))
    elif resources.leaked:
        resources.leaked.clear()  # the "fixed" build is deployed: memory comes back
