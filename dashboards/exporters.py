"""Backing components as their exporters report them: the health series vigil watches (one list per kind,
``vigil.system.components.HEALTH``) and the RabbitMQ plugin's per-queue series (``/metrics/detailed``).

These names are the exporters', not the system's telemetry: postgres_exporter says ``pg_up`` whatever the
services call their metrics. A component's ``selector`` picks its exporter's series.
"""

from __future__ import annotations

from vigil.dashboards import promql as q
from vigil.system import Component, Queue, System
from vigil.system.components import HEALTH, Health

QUEUE_MESSAGES = "rabbitmq_detailed_queue_messages"
QUEUE_CONSUMERS = "rabbitmq_detailed_queue_consumers"
QUEUE_PUBLISHED = "rabbitmq_detailed_queue_messages_published_total"
QUEUE_DELIVERED = "rabbitmq_detailed_channel_messages_delivered_ack_total"


def watched(system: System) -> list[Component]:
    """Components with a selector: only those have exporter series (and vigil signals) to show."""
    return [c for c in system.components if c.selector]


def brokers(system: System, queues: list[Queue]) -> list[tuple[Component, list[Queue]]]:
    """Each watched RabbitMQ broker with those of ``queues`` it holds, in the system file's order."""
    found = []
    for broker in watched(system):
        held = [queue for queue in queues if queue.component == broker.name]
        if broker.kind == "rabbitmq" and held:
            found.append((broker, held))
    return found


def queue_series(metric: str, broker: Component, queues: list[Queue]) -> str:
    return q.selector(metric, broker.selector, q.one_of("queue", [queue.name for queue in queues]))


def up(component: Component) -> Health:
    """The health entry telling whether the component answers its exporter (every kind has one)."""
    return next(h for h in HEALTH[component.kind] if h.what == "up")


def health_expr(component: Component, health: Health) -> str:
    """The health signal's PromQL as vigil computes it, with Grafana's rate interval."""
    series = q.selector(health.metric, component.selector, dict(health.match))
    if health.kind == "rate":
        return q.rate(series)
    return f"{health.aggregation}({series})"


def health_words(health: Health) -> str:
    """``longest_transaction_seconds`` -> ``longest transaction``: the unit is the panel's, not the name's."""
    return health.what.removesuffix("_seconds").removesuffix("_bytes").replace("_", " ")


def health_title(component: Component, health: Health) -> str:
    return f"{component.name}: {health_words(health)}"


def health_unit(health: Health) -> str:
    if health.kind == "rate":
        return "cps"
    if health.what.endswith("_seconds"):
        return "s"
    if health.what.endswith("_bytes"):
        return "bytes"
    return "short"


def health_description(component: Component, health: Health) -> str:
    what = health.description[:1].upper() + health.description[1:]
    return f"{what} ({health.metric} from {component.name}'s {component.kind} exporter)."
