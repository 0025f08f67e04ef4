"""The system file's model: services, the calls between them, backing components, shared resources,
queues and SLOs, validated together so that every name another entry refers to exists.

A reference error names its place in the file, ``services[2].calls[0]: unknown service 'paymnts' (did
you mean 'payments'?)``, and all of them are reported at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vigil.system.telemetry import Matchers, Telemetry

NAME = r"^[a-z0-9][a-z0-9._-]*$"
ComponentKind = Literal["postgresql", "redis", "rabbitmq", "elasticsearch", "generic"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Service(_Strict):
    name: str = Field(pattern=NAME)
    description: str = ""
    team: str = Field("", description="who owns it: alert routing and dashboards name them")
    owner: str = Field("", description="a person or rota to contact")
    replicas: int = Field(1, ge=1, description="how many run normally (a hint for deployments)")
    port: int | None = Field(None, ge=1, le=65535, description="where it is reached, if one port")
    external: bool = Field(False, description="a third party the system calls, not its own code")
    calls: list[str] = Field(default_factory=list, description="services it calls synchronously")
    uses: list[str] = Field(default_factory=list, description="components it uses (databases, caches...)")
    routes: list[str] = Field(default_factory=list, description="route templates as in metric labels")
    caches: list[str] = Field(default_factory=list, description="names of the caches it reads through")


class Component(_Strict):
    """Backing infrastructure: a database, a cache, a broker, a search cluster."""

    name: str = Field(pattern=NAME)
    kind: ComponentKind
    description: str = ""
    selector: Matchers = Field(
        default_factory=dict,
        description="matchers of its exporter's series (e.g. {job: postgres}); none: no health metrics",
    )


class Resource(_Strict):
    """Something several services share inside a component, such as a table: its locks reach them all."""

    name: str = Field(pattern=NAME)
    kind: Literal["table", "index", "keyspace", "bucket"] = "table"
    component: str
    owner: str | None = Field(None, description="the service that owns it")
    used_by: list[str] = Field(default_factory=list, description="other services reading or writing it")


class Queue(_Strict):
    name: str = Field(pattern=NAME)
    component: str | None = Field(None, description="the broker holding it")
    routing_key: str = ""
    producers: list[str] = Field(default_factory=list)
    consumers: list[str] = Field(default_factory=list)


class SLO(_Strict):
    """Sloth/OpenSLO-shaped: a share of good events over a window, for one service."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    service: str
    description: str = ""
    kind: Literal["latency", "error_ratio"]
    objective: float = Field(gt=0, lt=1)
    threshold_seconds: float | None = Field(None, gt=0, description="latency: slower than this is bad")
    metric: str | None = Field(None, description="histogram; default: the HTTP server duration")
    selector: Matchers = Field(default_factory=dict, description="which events count")

    @model_validator(mode="after")
    def _latency_needs_threshold(self) -> SLO:
        if self.kind == "latency" and self.threshold_seconds is None:
            raise ValueError(f"latency SLO {self.name!r} needs threshold_seconds")
        if self.kind == "error_ratio" and self.threshold_seconds is not None:
            raise ValueError(f"error_ratio SLO {self.name!r} takes no threshold_seconds")
        return self

    @property
    def error_budget(self) -> float:
        return round(1 - self.objective, 10)  # 0.01, not 0.010000000000000009


class System(_Strict):
    name: str = Field(pattern=NAME)
    description: str = ""
    telemetry: Telemetry = Field(default_factory=Telemetry)
    services: list[Service] = Field(min_length=1)
    components: list[Component] = Field(default_factory=list)
    resources: list[Resource] = Field(default_factory=list)
    queues: list[Queue] = Field(default_factory=list)
    slos: list[SLO] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> System:
        problems = list(_reference_problems(self))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # -- lookups ----------------------------------------------------------------------------
    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise ValueError(f"unknown service {name!r}{_suggest(name, self.service_names)}")

    @property
    def service_names(self) -> list[str]:
        return [s.name for s in self.services]

    def slo_metric(self, slo: SLO) -> str:
        return slo.metric or self.telemetry.http.server_duration

    def consumes(self, service: str) -> list[Queue]:
        return [q for q in self.queues if service in q.consumers]

    def publishes(self, service: str) -> list[Queue]:
        return [q for q in self.queues if service in q.producers]

    def queue_owner(self, queue: str) -> str | None:
        """The service a queue's trouble belongs to: its (first) consumer, who is not keeping up."""
        return next((q.consumers[0] for q in self.queues if q.name == queue and q.consumers), None)

    def callers(self, service: str) -> list[str]:
        return sorted(s.name for s in self.services if service in s.calls)

    def shares_resources_of(self, service: str) -> list[str]:
        """Owners of the resources ``service`` uses without owning them: their locks slow it down."""
        return sorted(
            {r.owner for r in self.resources if service in r.used_by and r.owner and r.owner != service}
        )

    def upstream_of(self, service: str) -> list[str]:
        """The producers of what ``service`` consumes: a slow or failing stage before it delays or starves
        it, through the queue (a stalled consumer, in turn, leaves its producers alone)."""
        return sorted({p for q in self.consumes(service) for p in q.producers} - {service})

    def dependencies(self) -> dict[str, frozenset[str]]:
        """Whom each service depends on: services it calls, owners of resources it shares, the components
        it uses, and the stages upstream of it in a message flow. Failures travel up these edges."""
        return {
            s.name: frozenset(
                [*s.calls, *self.shares_resources_of(s.name), *s.uses, *self.upstream_of(s.name)]
            )
            for s in self.services
        }

    def users_of(self, component: str) -> list[str]:
        """Services that use ``component`` directly or through a queue or resource it holds."""
        users = {s.name for s in self.services if component in s.uses}
        users |= {n for q in self.queues if q.component == component for n in (*q.producers, *q.consumers)}
        users |= {n for r in self.resources if r.component == component for n in (*r.used_by, r.owner or "")}
        return sorted(users - {""})


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _reference_problems(system: System) -> Iterator[str]:
    services = set(system.service_names)
    components = {c.name: c for c in system.components}

    def unknown(path: str, what: str, name: str, known: Iterable[str]) -> str:
        return f"{path}: unknown {what} {name!r}{_suggest(name, known)}"

    for kind, names in (
        ("service", system.service_names),
        ("component", list(components)),
        ("queue", [q.name for q in system.queues]),
        ("resource", [r.name for r in system.resources]),
        ("slo", [s.name for s in system.slos]),
    ):
        for name in sorted({n for n in names if names.count(n) > 1}):
            yield f"{kind}s: {name!r} is declared more than once"
    for name in sorted(services & set(components)):
        yield f"components: {name!r} is also a service; names must say which one an alert is about"

    for i, service in enumerate(system.services):
        for j, callee in enumerate(service.calls):
            if callee not in services:
                yield unknown(f"services[{i}].calls[{j}]", "service", callee, services)
            elif callee == service.name:
                yield f"services[{i}].calls[{j}]: {service.name!r} cannot call itself"
        for j, used in enumerate(service.uses):
            if used not in components:
                yield unknown(f"services[{i}].uses[{j}]", "component", used, components)
    for i, resource in enumerate(system.resources):
        if resource.component not in components:
            yield unknown(f"resources[{i}].component", "component", resource.component, components)
        if resource.owner is not None and resource.owner not in services:
            yield unknown(f"resources[{i}].owner", "service", resource.owner, services)
        for j, user in enumerate(resource.used_by):
            if user not in services:
                yield unknown(f"resources[{i}].used_by[{j}]", "service", user, services)
    for i, queue in enumerate(system.queues):
        if queue.component is not None and queue.component not in components:
            yield unknown(f"queues[{i}].component", "component", queue.component, components)
        for role in ("producers", "consumers"):
            for j, name in enumerate(getattr(queue, role)):
                if name not in services:
                    yield unknown(f"queues[{i}].{role}[{j}]", "service", name, services)
    for i, slo in enumerate(system.slos):
        if slo.service not in services:
            yield unknown(f"slos[{i}].service", "service", slo.service, services)
        buckets = system.telemetry.histograms.get(system.slo_metric(slo))
        if slo.threshold_seconds is not None and buckets and slo.threshold_seconds not in buckets:
            yield (
                f"slos[{i}].threshold_seconds: {slo.threshold_seconds:g} s is not a bucket bound of "
                f"{system.slo_metric(slo)} ({', '.join(f'{b:g}' for b in buckets)}); slow events can only "
                "be counted exactly at a bound"
            )
