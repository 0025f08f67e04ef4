"""What a service stands on: its processes, database pool and caches, the queues it consumes (as the broker
sees them) and the components it uses (their health, and vigil's scores for them)."""

from __future__ import annotations

from vigil.dashboards import exporters as x
from vigil.dashboards import panels as p
from vigil.dashboards import promql as q
from vigil.dashboards.scope import Scope, legend


def saturation_section(s: Scope) -> p.Section:
    proc = s.telemetry.process
    replica = proc.instance_label
    panels = [
        p.timeseries(
            title="CPU per replica",
            description="CPU time per second of each replica's process (1.0 = one core busy).",
            unit="percentunit",
            targets=[p.prom(q.rate(q.selector(proc.cpu, s.own), by=replica), legend(replica))],
        ),
        p.timeseries(
            title="Memory per replica",
            description="Resident memory per replica: steady growth under steady load is a leak.",
            unit="bytes",
            targets=[p.prom(f"sum by ({replica}) ({q.selector(proc.memory, s.own)})", legend(replica))],
        ),
    ]
    databases = s.uses_kind("postgresql")
    if databases:
        panels += _database_panels(s, ", ".join(c.name for c in databases))
    cache = s.telemetry.cache
    if s.service.caches and cache is not None:
        hits = q.selector(cache.requests, s.own, {cache.result_label: cache.hit})
        lookups = q.selector(cache.requests, s.own)
        by = cache.name_label
        panels.append(
            p.timeseries(
                title="Cache hit ratio by cache",
                description=f"Share of lookups in {', '.join(s.service.caches)} that hit; "
                "a miss goes to the backing store and costs its latency.",
                unit="percentunit",
                targets=[p.prom(f"{q.rate(hits, by=by)} / {q.rate(lookups, by=by)}", legend(by))],
                width=12,
            )
        )
    return p.Section("Saturation", panels)


def _database_panels(s: Scope, databases: str) -> list[p.Sized]:
    db = s.telemetry.database
    panels = []
    if db.connections and db.connections_max:  # both, or a share cannot be drawn
        used = q.selector(db.connections, s.own, {db.state_label: db.used_state})
        size = q.selector(db.connections_max, s.own)
        panels.append(
            p.timeseries(
                title="DB connection pool in use",
                description="Connections in use over the pool's limit: at 100% requests wait for one.",
                unit="percentunit",
                targets=[p.prom(f"sum({used}) / sum({size})", "in use")],
                threshold=0.9,
                soft_max=1,
            )
        )
    ops = q.selector(f"{db.operation_duration}_bucket", s.own)
    panels.append(
        p.timeseries(
            title="DB operation p99 by operation",
            description=f"99th percentile duration of {databases} operations, by operation name.",
            unit="s",
            targets=[p.prom(q.quantile(0.99, ops, by=db.operation_label), legend(db.operation_label))],
            width=12,
        )
    )
    return panels


def queues_section(s: Scope) -> p.Section | None:
    """The queues it consumes as their broker reports them; None when no watched broker holds them."""
    held = x.brokers(s.system, s.consumes)
    if not held:
        return None
    depth = [
        p.prom(f"sum by (queue) ({x.queue_series(x.QUEUE_MESSAGES, b, queues)})", "{{queue}}")
        for b, queues in held
    ]
    published = [p.prom(q.rate(x.queue_series(x.QUEUE_PUBLISHED, b, qs)), "published") for b, qs in held]
    delivered = [
        p.prom(q.rate(x.queue_series(x.QUEUE_DELIVERED, b, qs)), "delivered and acked") for b, qs in held
    ]
    consumers = [
        p.prom(f"sum by (queue) ({x.queue_series(x.QUEUE_CONSUMERS, b, queues)})", "{{queue}}")
        for b, queues in held
    ]
    return p.Section(
        "Queues it consumes",
        [
            p.timeseries(
                title="Queue depth",
                description="Messages ready or unacknowledged: a growing backlog delays all that follows.",
                unit="short",
                targets=depth,
            ),
            p.timeseries(
                title="Published vs delivered",
                description="Messages entering the queue against messages consumers acknowledged.",
                unit="mps",
                targets=published + delivered,
            ),
            p.timeseries(
                title="Consumers",
                description="Consumers attached to the queue: zero means nothing processes it.",
                unit="short",
                targets=consumers,
            ),
        ],
    )


def components_section(s: Scope) -> p.Section | None:
    """Health of the components it uses, at a glance; the infrastructure dashboard has the detail."""
    used = [c for c in s.components if c.selector]
    if not used:
        return None
    names = q.one_of("component", [c.name for c in used])
    return p.Section(
        "Components it uses",
        [
            p.stat(
                title="Components answering their exporter",
                description="1 while each component answers its exporter, 0 when it is down: "
                + ", ".join(f"{c.name} ({c.kind})" for c in used)
                + ".",
                unit="none",
                targets=[p.prom(x.health_expr(c, x.up(c)), c.name) for c in used],
                thresholds=(("red", None), ("green", 1)),
                width=8,
                height=8,
            ),
            p.timeseries(
                title="Anomaly score by component",
                description="vigil's highest score over each component's health signals: 0-1 normal, "
                "above 1 anomalous. Its trouble becomes the service's.",
                unit="none",
                targets=[p.prom(f"max by (component) (vigil_anomaly_score{{{names}}})", "{{component}}")],
                threshold=1,
                width=16,
            ),
        ],
    )
