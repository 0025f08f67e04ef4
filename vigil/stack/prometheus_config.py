"""The Prometheus and Alertmanager configuration of the local stack.

Static jobs cover the stack's own exporters. Everything else (marketplace services,
vigil itself) registers through file-based service discovery: a JSON file per job in
``targets/``, which Prometheus re-reads without a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vigil.alerts.alertmanager_config import (
    WEBHOOK_PATH,
    Receivers,
    ReceiverSettings,
    Timing,
    build_config,
)
from vigil.config import ServerConfig
from vigil.demo_marketplace.catalog import SYSTEM
from vigil.runtime.targets import write_targets
from vigil.stack.settings import StackSettings

__all__ = ["alertmanager_config", "prometheus_config", "write_targets"]

RABBITMQ_DETAILED_FAMILIES = [
    "queue_coarse_metrics",  # rabbitmq_detailed_queue_messages{,_ready,_unacked}
    "queue_consumer_count",  # rabbitmq_detailed_queue_consumers
    "channel_queue_metrics",  # rabbitmq_detailed_channel_messages_delivered_ack_total{queue}
    "channel_queue_exchange_metrics",  # rabbitmq_detailed_queue_messages_published_total{queue,exchange}
]


def _static_job(name: str, target: str, **extra: Any) -> dict[str, Any]:
    return {"job_name": name, "static_configs": [{"targets": [target]}], **extra}


def prometheus_config(settings: StackSettings, *, targets_dir: Path, rules_dir: Path) -> dict[str, Any]:
    host = settings.host
    return {
        "global": {
            "scrape_interval": settings.scrape_interval,
            "evaluation_interval": settings.scrape_interval,
            "external_labels": {"stack": "vigil-local"},
        },
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"{host}:{settings.alertmanager_port}"]}]}]
        },
        "rule_files": [str(rules_dir / "*.yml")],
        "scrape_configs": [
            _static_job("prometheus", f"{host}:{settings.prometheus_port}"),
            _static_job("alertmanager", f"{host}:{settings.alertmanager_port}"),
            _static_job("postgres", f"{host}:{settings.postgres_exporter_port}"),
            _static_job("redis", f"{host}:{settings.redis_exporter_port}"),
            _static_job("elasticsearch", f"{host}:{settings.elasticsearch_exporter_port}"),
            _static_job("rabbitmq", f"{host}:{settings.rabbitmq_prometheus_port}"),
            # Per-queue depth, consumers, publishes, deliveries (the aggregated endpoint has no queue label).
            _static_job(
                "rabbitmq-detailed",
                f"{host}:{settings.rabbitmq_prometheus_port}",
                metrics_path="/metrics/detailed",
                params={"family": RABBITMQ_DETAILED_FAMILIES},
            ),
            {
                "job_name": "file_sd",
                "file_sd_configs": [{"files": [str(targets_dir / "*.json")], "refresh_interval": "5s"}],
            },
            # vigil re-exports other series' labels (job, instance, service) on its scores: keep them.
            {
                "job_name": "vigil",
                "honor_labels": True,
                "file_sd_configs": [
                    {"files": [str(targets_dir / "vigil" / "*.json")], "refresh_interval": "5s"}
                ],
            },
        ],
    }


def alertmanager_config(
    settings: StackSettings | None = None,
    *,
    receivers: Receivers | None = None,
    timing: Timing | None = None,
) -> dict[str, Any]:
    """The generated routing tree, receivers and inhibitions (``vigil.alerts.alertmanager_config``).

    By default the webhook points at the local ``vigil run`` (its configured default port) with the secret
    the stack's Alertmanager keeps in its own directory; other channels come from ``VIGIL_ALERTS_*``.
    ``receivers`` replaces all of that, e.g. for Compose, where vigil answers at ``http://vigil:9400``.
    """
    if receivers is None:
        settings = settings or StackSettings()
        receivers = ReceiverSettings(
            vigil_url=f"http://{settings.host}:{ServerConfig().port}{WEBHOOK_PATH}",
            vigil_secret_file=settings.webhook_secret_file,
        )
    return build_config(receivers, timing, system=SYSTEM)
