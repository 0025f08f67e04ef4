"""What each kind of backing component reports about its health, through its usual Prometheus exporter.

PostgreSQL (postgres_exporter), Redis (redis_exporter), RabbitMQ (its rabbitmq_prometheus plugin, with
the per-queue ``/metrics/detailed`` endpoint) and Elasticsearch (elasticsearch_exporter). A component's
``selector`` finds its exporter's series; every signal carries the label ``component`` so that alerts,
incidents and dashboards name it. A ``generic`` component is watched through its scrape target's ``up``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vigil.system.model import Component, Queue, System


@dataclass(frozen=True)
class Health:
    what: str  # the signal's name after the component's
    description: str
    metric: str
    kind: str = "gauge"
    aggregation: str = "sum"
    match: tuple[tuple[str, str], ...] = ()
    detector: tuple[tuple[str, Any], ...] = ()  # seasonal_baseline parameters


def _up(metric: str, what: str = "up") -> Health:
    return Health(what, "1 while it answers its exporter, 0 when down", metric, aggregation="min",
                  detector=(("direction", "down"), ("min_abs", 0.5)))  # fmt: skip


def _scraped() -> Health:
    # An exporter that asks a component which hangs (Redis under CLIENT PAUSE, a stuck PostgreSQL) times
    # out with it: its own *_up series then vanish, and only Prometheus' ``up`` of the scrape says so.
    return Health("exporter_up", "1 while Prometheus scrapes its exporter; 0 when the exporter, or the "
                  "component it asks, stops answering", "up", aggregation="min",
                  detector=(("direction", "down"), ("min_abs", 0.5)))  # fmt: skip


def _rising(min_abs: float, min_rel: float = 0.0) -> tuple[tuple[str, Any], ...]:
    return (("direction", "up"), ("min_abs", min_abs), ("min_rel", min_rel))


HEALTH: dict[str, tuple[Health, ...]] = {
    "generic": (_up("up"),),
    "postgresql": (
        _up("pg_up"),
        _scraped(),
        Health("active_connections", "sessions running a query", "pg_stat_activity_count",
               match=(("state", "active"),), detector=_rising(5, 1.0)),
        Health("longest_transaction_seconds", "age of the oldest open transaction (a lock holder?)",
               "pg_stat_activity_max_tx_duration", aggregation="max", detector=_rising(1.0, 1.0)),
        Health("exclusive_locks", "ACCESS EXCLUSIVE locks held: every reader of those tables waits",
               "pg_locks_count", match=(("mode", "accessexclusivelock"),), detector=_rising(1.0)),
        Health("deadlocks_per_second", "transactions aborted to break a deadlock",
               "pg_stat_database_deadlocks", kind="rate", detector=_rising(0.05)),
    ),
    "redis": (
        _up("redis_up"),
        _scraped(),
        Health("blocked_clients", "clients waiting on a blocking command", "redis_blocked_clients",
               detector=_rising(1.0)),
        Health("rejected_connections_per_second", "connections refused (maxclients reached)",
               "redis_rejected_connections_total", kind="rate", detector=_rising(0.1)),
        Health("memory_bytes", "memory used", "redis_memory_used_bytes", detector=_rising(50e6, 0.5)),
    ),
    "rabbitmq": (
        _up("up"),
        Health("memory_alarm", "1 while publishers are blocked by the memory high watermark",
               "rabbitmq_alarms_memory_used_watermark", aggregation="max", detector=_rising(0.5)),
        Health("disk_alarm", "1 while publishers are blocked for lack of disk space",
               "rabbitmq_alarms_free_disk_space_watermark", aggregation="max", detector=_rising(0.5)),
    ),
    "elasticsearch": (
        _up("elasticsearch_cluster_health_up"),
        _scraped(),
        Health("status_red", "1 while some primary shard is unassigned: writes and searches fail",
               "elasticsearch_cluster_health_status", aggregation="max", match=(("color", "red"),),
               detector=_rising(0.5)),
    ),
}  # fmt: skip


def regex_literal(text: str) -> str:
    """``text`` matched literally by a regex (RE2 and Python's alike): metacharacters escaped."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", text)


def snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def health_signals(component: Component) -> list[dict[str, Any]]:
    found = []
    for health in HEALTH[component.kind]:
        spec: dict[str, Any] = {
            "name": health.metric,
            "kind": health.kind,
            "match": {**component.selector, **dict(health.match)},
            "labels": {"component": component.name},
        }
        if health.kind == "gauge":
            spec["aggregation"] = health.aggregation
        found.append(
            {
                "name": f"{snake(component.name)}_{health.what}",
                "description": f"{component.name} ({component.kind}): {health.description}",
                "metric": spec,
                "detector": {"kind": "seasonal_baseline", **dict(health.detector)},
            }
        )
    return found


def queue_signals(broker: Component, queues: list[Queue], prefix: str) -> list[dict[str, Any]]:
    """Per-queue depth, consumers and flow from RabbitMQ's per-queue (``/metrics/detailed``) series."""
    names = {"queue": "~" + "|".join(regex_literal(q.name) for q in queues)}
    match = {**broker.selector, **names}

    def entry(what: str, description: str, spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
        labels = {"labels": {"component": broker.name}}
        body = {"match": match, "by": ["queue"], **labels, **spec}
        return {"name": f"{prefix}{what}", "description": description, "metric": body, **extra}

    return [
        entry("queue_depth_messages", "messages waiting or unacknowledged per queue",
              {"name": "rabbitmq_detailed_queue_messages", "kind": "gauge"},
              detector={"kind": "backlog", "threshold": 500, "horizon": 300}),
        entry("queue_consumers", "consumers per queue; losing them stalls the pipeline",
              {"name": "rabbitmq_detailed_queue_consumers", "kind": "gauge"},
              detector={"kind": "seasonal_baseline", "direction": "down", "min_abs": 0.5}),
        entry("queue_publish_rate", "messages published per second per queue",
              {"name": "rabbitmq_detailed_queue_messages_published_total", "kind": "rate"}, detect=False),
        entry("queue_deliver_rate", "messages delivered and acknowledged per second per queue",
              {"name": "rabbitmq_detailed_channel_messages_delivered_ack_total", "kind": "rate"},
              detect=False),
    ]  # fmt: skip


def component_signals(system: System) -> list[dict[str, Any]]:
    found = []
    watched = [c for c in system.components if c.selector]
    for component in watched:
        found += health_signals(component)
    brokers = [
        c for c in watched if c.kind == "rabbitmq" and any(q.component == c.name for q in system.queues)
    ]
    for broker in brokers:
        held = [q for q in system.queues if q.component == broker.name]
        prefix = "" if len(brokers) == 1 else f"{snake(broker.name)}_"
        found += queue_signals(broker, held, prefix)
    return found
