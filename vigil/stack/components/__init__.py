"""The services of the local stack, in start order."""

from vigil.stack.component import Component
from vigil.stack.components.broker import Epmd, RabbitMQ
from vigil.stack.components.databases import PostgreSQL, Redis
from vigil.stack.components.monitoring import (
    Alertmanager,
    ElasticsearchExporter,
    PostgresExporter,
    Prometheus,
    RedisExporter,
)
from vigil.stack.components.search import Elasticsearch
from vigil.stack.settings import StackSettings

ALL: tuple[type[Component], ...] = (
    PostgreSQL,
    Redis,
    Epmd,
    RabbitMQ,
    Elasticsearch,
    PostgresExporter,
    RedisExporter,
    ElasticsearchExporter,
    Alertmanager,
    Prometheus,
)


def build(settings: StackSettings, names: list[str] | None = None) -> list[Component]:
    """Instantiate the components called ``names`` (all when None), in start order."""
    known = {cls.name: cls for cls in ALL}
    unknown = sorted(set(names or ()) - known.keys())
    if unknown:
        raise ValueError(f"unknown component(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [cls(settings) for cls in ALL if names is None or cls.name in names]
