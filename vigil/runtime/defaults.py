"""What ``vigil run`` watches with no config: the local marketplace, scraped straight from /metrics."""

from __future__ import annotations

from typing import Any

from vigil.config import VigilConfig
from vigil.stack.settings import StackSettings


def _signal(name: str, metric: str, kind: str, by: list[str], **extra: Any) -> dict[str, Any]:
    detector = extra.pop("detector", {})
    return {"name": name, "scrape": {"metric": metric, "kind": kind, "by": by, **extra}, "detector": detector}


def default_config(stack: StackSettings | None = None) -> VigilConfig:
    s = stack or StackSettings()
    rabbit = (
        f"http://{s.host}:{s.rabbitmq_prometheus_port}/metrics/detailed"
        "?family=queue_coarse_metrics&family=queue_consumer_count"
    )
    return VigilConfig.model_validate(
        {
            "interval": "15s",
            "register_targets": str(s.home / "prometheus" / "targets" / "vigil" / "vigil.json"),
            "sources": {
                "scrape": {
                    "file_sd": [str(s.home / "prometheus" / "targets" / "marketplace.json")],
                    "targets": [{"url": rabbit, "labels": {"job": "rabbitmq"}}],
                },
                "elasticsearch": {"url": s.elasticsearch_url},
            },
            "signals": [
                _signal("http_request_rate", "http_server_request_duration_seconds", "rate", ["service"]),
                _signal(
                    "http_p99_latency_seconds",
                    "http_server_request_duration_seconds",
                    "quantile",
                    ["service", "route"],
                    quantile=0.99,
                    detector={"min_deviation": 0.05},
                ),
                _signal(
                    "http_error_ratio",
                    "http_server_request_duration_seconds",
                    "ratio",
                    ["service"],
                    numerator_match={"status_class": "5xx"},
                    detector={"min_deviation": 0.01},
                ),
                _signal(
                    "db_p99_seconds",
                    "db_client_operation_duration_seconds",
                    "quantile",
                    ["service"],
                    quantile=0.99,
                    detector={"min_deviation": 0.02},
                ),
                _signal(
                    "cache_hit_ratio",
                    "cache_requests_total",
                    "ratio",
                    ["service"],
                    numerator_match={"result": "hit"},
                    detector={"min_deviation": 0.1},
                ),
                _signal("messages_consumed_rate", "messaging_consumed_total", "rate", ["service", "queue"]),
                _signal(
                    "queue_depth_messages",
                    "rabbitmq_detailed_queue_messages",
                    "gauge",
                    ["queue"],
                    match={"queue": "~.*[^d]$"},
                    detector={"min_deviation": 20},
                ),
                _signal(
                    "fulfilment_delay_p99_seconds",
                    "marketplace_order_fulfilment_delay_seconds",
                    "quantile",
                    [],
                    quantile=0.99,
                    detector={"min_deviation": 5},
                ),
                _signal(
                    "process_memory_bytes",
                    "process_resident_memory_bytes",
                    "gauge",
                    ["service"],
                    detector={"min_deviation": 50_000_000},
                ),
            ],
        }
    )
