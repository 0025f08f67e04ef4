"""The marketplace's services as its runner, HAProxy, load generator and deployment files need them.

The one source of truth is ``system.yaml`` beside this module: the marketplace describes itself to vigil
there exactly as any user's system would, and this module reads it (ports, replicas, calls, queues), so
adding a service to that file is all it takes to run, scrape, chart and watch it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vigil.system import System, load_system

SYSTEM_FILE = Path(__file__).resolve().with_name("system.yaml")
SYSTEM: System = load_system(SYSTEM_FILE)


@dataclass(frozen=True)
class Queue:
    """A durable RabbitMQ queue bound to the ``orders`` topic exchange."""

    name: str
    routing_key: str
    consumer: str  # the service that consumes it


@dataclass(frozen=True)
class Service:
    name: str
    port: int  # the load-balanced address on 127.0.0.1 (and the container port)
    description: str
    uses: tuple[str, ...] = ()  # backing services: postgresql, redis, rabbitmq
    calls: tuple[str, ...] = ()  # other marketplace services it calls over HTTP
    # Services whose PostgreSQL tables it reads or writes itself: their locks and slow queries reach it.
    shares_tables_of: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()  # queue names
    publishes: tuple[str, ...] = ()  # routing keys it publishes to the ``orders`` exchange
    caches: tuple[str, ...] = ()  # cache-aside caches in Redis (the ``cache`` label of cache_requests_total)
    external: bool = False  # a simulated third party, not one of the marketplace's own services
    default_replicas: int = 1
    routes: tuple[str, ...] = field(default=())  # route templates, as they appear in metric labels

    def replica_port(self, index: int) -> int:
        """Where replica ``index`` (0-based) listens; HAProxy balances ``port`` over these."""
        return 20000 + (self.port - 8000) * 100 + index


EXCHANGE = "orders"
DEAD_LETTER_EXCHANGE = "orders.dlx"


def _service(system: System, name: str) -> Service:
    spec = system.service(name)
    if spec.port is None:
        raise ValueError(f"{SYSTEM_FILE}: service {name!r} needs a port: the marketplace runs it there")
    return Service(
        name=spec.name,
        port=spec.port,
        description=spec.description,
        uses=tuple(spec.uses),
        calls=tuple(spec.calls),
        shares_tables_of=tuple(system.shares_resources_of(name)),
        consumes=tuple(q.name for q in system.consumes(name)),
        publishes=tuple(q.routing_key for q in system.publishes(name)),
        caches=tuple(spec.caches),
        external=spec.external,
        default_replicas=spec.replicas,
        routes=tuple(spec.routes),
    )


QUEUES: tuple[Queue, ...] = tuple(
    Queue(q.name, q.routing_key, consumer=q.consumers[0]) for q in SYSTEM.queues if q.consumers
)
SERVICES: tuple[Service, ...] = tuple(_service(SYSTEM, s.name) for s in SYSTEM.services)
BY_NAME = {s.name: s for s in SERVICES}


def service(name: str) -> Service:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(BY_NAME)}") from None
