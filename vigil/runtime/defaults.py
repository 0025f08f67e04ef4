"""What ``vigil run`` watches with no config: the local marketplace, scraped straight from /metrics."""

from __future__ import annotations

from typing import Any

from vigil.config import VigilConfig
from vigil.stack.settings import StackSettings


def _signal(name: str, metric: str, kind: str, by: list[str], **extra: Any) -> dict[str, Any]:
    detector = extra.pop("detector", {})
    detect = extra.pop("detect", True)
    scrape = {"metric": metric, "kind": kind, "by": by, **extra}
    return {"name": name, "scrape": scrape, "detector": detector, "detect": detect}


def _rising(min_abs: float, min_rel: float) -> dict[str, Any]:
    """Latency-like: only a rise is trouble, and only beyond both floors."""
    return {"kind": "seasonal_baseline", "direction": "up", "min_abs": min_abs, "min_rel": min_rel}


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
                _signal(
                    "http_request_rate",
                    "http_server_request_duration_seconds",
                    "rate",
                    ["service"],
                    detector={
                        "kind": "seasonal_baseline",
                        "direction": "down",
                        "min_abs": 0.5,
                        "min_rel": 0.6,
                    },
                ),
                _signal(
                    "http_5xx_rate",
                    "http_server_request_duration_seconds",
                    "rate",
                    ["service"],
                    match={"status_class": "5xx"},
                    detect=False,
                ),
                {
                    # Per-second rates rather than counts: the ratio is the same, and 7 rate-steps of
                    # 15 s are about 100 requests for the minimum-traffic guard.
                    "name": "http_error_budget_burn",
                    "inputs": ["http_5xx_rate", "http_request_rate"],
                    "by": ["service"],
                    "detector": {"kind": "burn_rate", "objective": 0.99, "min_events": 7},
                },
                _signal(
                    "http_p99_latency_seconds",
                    "http_server_request_duration_seconds",
                    "quantile",
                    ["service", "route"],
                    quantile=0.99,
                    detector=_rising(0.05, 0.5),
                ),
                _signal(
                    "http_error_ratio",
                    "http_server_request_duration_seconds",
                    "ratio",
                    ["service"],
                    numerator_match={"status_class": "5xx"},
                    detector=_rising(0.02, 0.0),
                ),
                _signal(
                    "db_p99_seconds",
                    "db_client_operation_duration_seconds",
                    "quantile",
                    ["service"],
                    quantile=0.99,
                    detector=_rising(0.02, 0.5),
                ),
                {
                    "name": "service_red",
                    "inputs": [
                        "http_request_rate",
                        "http_error_ratio",
                        "http_p99_latency_seconds",
                        "db_p99_seconds",
                    ],
                    "by": ["service"],
                    "detector": {
                        "kind": "isolation_forest",
                        "feature_names": ["rate", "error_ratio", "p99", "db_p99"],
                        "log_features": ["rate"],
                    },
                },
                _signal(
                    "cache_hit_ratio",
                    "cache_requests_total",
                    "ratio",
                    ["service"],
                    numerator_match={"result": "hit"},
                    detector={"kind": "seasonal_baseline", "direction": "down", "min_abs": 0.1},
                ),
                _signal("messages_consumed_rate", "messaging_consumed_total", "rate", ["service", "queue"]),
                _signal(
                    "queue_depth_messages",
                    "rabbitmq_detailed_queue_messages",
                    "gauge",
                    ["queue"],
                    match={"queue": "~.*[^d]$"},
                    detector={"kind": "backlog", "threshold": 500, "horizon": 300},
                ),
                _signal(
                    "fulfilment_delay_p99_seconds",
                    "marketplace_order_fulfilment_delay_seconds",
                    "quantile",
                    [],
                    quantile=0.99,
                    detector=_rising(5, 0.5),
                ),
                _signal(
                    "process_memory_bytes",
                    "process_resident_memory_bytes",
                    "gauge",
                    ["service"],
                    detector=_rising(50_000_000, 0.3),
                ),
            ],
        }
    )
