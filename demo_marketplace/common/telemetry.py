"""Prometheus metrics every marketplace service exposes.

Names follow OpenTelemetry's semantic conventions where one exists (``http_server_request_duration_seconds``,
``db_client_operation_duration_seconds``, ``messaging_*``) so the dashboards and vigil's signals are portable.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)

# Dense around the SLO thresholds (300 ms browse, 500 ms checkout) so quantiles there are accurate.
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    1.5,
    2.5,
    5.0,
    10.0,
)
FULFILMENT_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600)


def status_class(status: int) -> str:
    return f"{status // 100}xx"


class ServiceMetrics:
    """All metrics of one service process, registered on ``registry`` (tests pass a fresh one)."""

    def __init__(self, service: str, registry: CollectorRegistry) -> None:
        self.service = service
        self.registry = registry
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            ProcessCollector(registry=registry)  # process_resident_memory_bytes shows leaks
        r = registry
        self.http_server_duration = Histogram(
            "http_server_request_duration_seconds",
            "Duration of HTTP requests served, by route template",
            ["service", "route", "method", "status_class"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.http_server_active = Gauge(
            "http_server_active_requests",
            "HTTP requests being served",
            ["service"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.http_client_duration = Histogram(
            "http_client_request_duration_seconds",
            "Duration of HTTP calls to other services",
            ["service", "peer", "status_class"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.db_duration = Histogram(
            "db_client_operation_duration_seconds",
            "Duration of PostgreSQL operations",
            ["service", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.db_connections = Gauge(
            "db_client_connections",
            "Connections in the pool by state",
            ["service", "state"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.db_connections_max = Gauge(
            "db_client_connections_max",
            "Pool size limit",
            ["service"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.cache_requests = Counter(
            "cache_requests_total",
            "Cache lookups by result (hit, miss, error)",
            ["service", "cache", "result"],
            registry=r,
        )
        self.messages_published = Counter(
            "messaging_published_total",
            "Messages published, by broker confirmation outcome",
            ["service", "routing_key", "outcome"],
            registry=r,
        )
        self.messages_consumed = Counter(
            "messaging_consumed_total",
            "Messages consumed, by outcome (ack, duplicate, dead_letter, requeued)",
            ["service", "queue", "outcome"],
            registry=r,
        )
        self.message_duration = Histogram(
            "messaging_process_duration_seconds",
            "Time to process one consumed message",
            ["service", "queue"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.outbox_pending = Gauge(
            "marketplace_outbox_pending_messages",
            "Messages stored with their change but not yet confirmed by the broker",
            ["service"],
            registry=r,
            multiprocess_mode="max",  # every replica counts the same table
        )
        self.outbox_relayed = Counter(
            "marketplace_outbox_relayed_messages",
            "Messages the outbox relay published because their own request could not",
            ["service"],
            registry=r,
        )
        self.orders = Counter(
            "marketplace_orders_total",
            "Orders by lifecycle event (placed, paid, payment_failed, fulfilled)",
            ["service", "event"],
            registry=r,
        )
        self.fulfilment_delay = Histogram(
            "marketplace_order_fulfilment_delay_seconds",
            "Time from checkout to fulfilment",
            ["service"],
            buckets=FULFILMENT_BUCKETS,
            registry=r,
        )
        self.fault_active = Gauge(
            "marketplace_fault_active",
            "1 while an injected fault acts on this process (ground truth aid)",
            ["service", "fault"],
            registry=r,
            multiprocess_mode="max",
        )


def exposition(registry: CollectorRegistry) -> bytes:
    """The text to serve at /metrics; merges all worker processes in multiprocess mode."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return generate_latest(merged)
    return generate_latest(registry)
