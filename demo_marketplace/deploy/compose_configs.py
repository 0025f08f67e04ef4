"""Configuration files the Compose services mount from ``compose/``: Prometheus, HAProxy, and friends."""

from __future__ import annotations

from typing import Any

from vigil.alerts.alertmanager_config import WEBHOOK_PATH, Receivers
from vigil.dashboards.build import dashboard_provider
from vigil.dashboards.datasources import provisioning
from vigil.demo_marketplace.catalog import SERVICES, SYSTEM
from vigil.demo_marketplace.deploy import shared, vigil_config
from vigil.demo_marketplace.deploy.compose import (
    GRAFANA_DASHBOARDS,
    HAPROXY_STATS_PORT,
    SCRAPE_INTERVAL,
    WEBHOOK_SECRET,
)
from vigil.demo_marketplace.haproxy import service_proxy
from vigil.stack.prometheus_config import RABBITMQ_DETAILED_FAMILIES, alertmanager_config


def _static_job(name: str, target: str, **extra: Any) -> dict[str, Any]:
    return {"job_name": name, "static_configs": [{"targets": [target]}], **extra}


def prometheus_config() -> dict[str, Any]:
    """Labelled like the local stack (job ``marketplace``, label ``service``), so vigil's queries carry over.

    Each service name resolves, through Docker's DNS, to one A record per replica: all replicas are scraped.
    """
    marketplace = {
        "job_name": "marketplace",
        "dns_sd_configs": [
            {"names": [spec.name], "type": "A", "port": spec.port, "refresh_interval": "15s"}
            for spec in SERVICES
        ],
        "relabel_configs": [{"source_labels": ["__meta_dns_name"], "target_label": "service"}],
    }
    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
            "external_labels": {"stack": "vigil-compose"},
        },
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]},
        "scrape_configs": [
            _static_job("prometheus", "localhost:9090"),
            _static_job("alertmanager", "alertmanager:9093"),
            _static_job("postgres", "postgres-exporter:9187"),
            _static_job("redis", "redis-exporter:9121"),
            _static_job("elasticsearch", "elasticsearch-exporter:9114"),
            _static_job("rabbitmq", "rabbitmq:15692"),
            # Per-queue depth, consumers, publishes and deliveries, which vigil.yaml's queue signals read
            # (the aggregated /metrics has no queue label), as in the local stack.
            _static_job(
                "rabbitmq-detailed",
                "rabbitmq:15692",
                metrics_path="/metrics/detailed",
                params={"family": RABBITMQ_DETAILED_FAMILIES},
            ),
            marketplace,
            # vigil re-exports the labels of the series it scores (job, instance, service): keep them.
            _static_job("vigil", f"vigil:{vigil_config.PORT}", honor_labels=True),
        ],
    }


def grafana_datasources() -> dict[str, Any]:
    """The dashboards' datasources (fixed uids) at the Compose network's addresses."""
    logs = SYSTEM.telemetry.logs
    return provisioning(
        prometheus_url="http://prometheus:9090",
        elasticsearch_url="http://elasticsearch:9200",
        log_index=logs.index,
        level_field=logs.level_field,
    )


def haproxy_config() -> str:
    """Every service on its catalog port, balanced over all its replicas, found through Docker's DNS."""
    lines = [
        "global",
        "    maxconn 4096",
        "resolvers docker",
        "    nameserver dns 127.0.0.11:53",  # Docker's embedded DNS server
        "    hold valid 5s",
        "    accepted_payload_size 8192",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 30s",
        "    timeout server 30s",
        "    default-server inter 1s fall 2 rise 2",
        "frontend stats",
        f"    bind :{HAPROXY_STATS_PORT}",
        "    stats enable",
        "    stats uri /stats",
    ]
    for spec in SERVICES:
        lines += [
            *service_proxy(spec, bind=""),
            # Up to MAX_REPLICAS slots, filled with whatever addresses the name resolves to.
            f"    server-template {spec.name}- {shared.MAX_REPLICAS} {spec.name}:{spec.port} check "
            "resolvers docker init-addr none resolve-prefer ipv4",
        ]
    return "\n".join(lines) + "\n"


def render_compose_configs() -> dict[str, str]:
    """Relative path -> file text of everything under ``compose/``."""
    note = "Mounted by docker-compose.yml."
    return {
        "compose/prometheus.yml": shared.header(note) + shared.dump_yaml(prometheus_config()),
        "compose/alertmanager.yml": shared.header(note, "The routing tree of the local stack (vigil/stack).")
        + shared.dump_yaml(
            alertmanager_config(
                receivers=Receivers(
                    vigil_url=f"http://vigil:{vigil_config.PORT}{WEBHOOK_PATH}",
                    vigil_secret_file=WEBHOOK_SECRET,
                )
            )
        ),
        "compose/grafana-datasources.yml": shared.header(note) + shared.dump_yaml(grafana_datasources()),
        "compose/grafana-dashboards.yml": shared.header(
            note, "Dashboards: dashboards/generated (vigil dashboards build)."
        )
        + shared.dump_yaml(dashboard_provider(GRAFANA_DASHBOARDS)),
        "compose/haproxy.cfg": shared.header(note) + haproxy_config(),
        "compose/vigil.yaml": shared.header(
            note, "The repository's vigil.yaml with the Compose network's addresses."
        )
        + shared.dump_yaml(
            vigil_config.deployed_config(vigil_config.PROMETHEUS_URL, vigil_config.ELASTICSEARCH_URL)
        ),
        # No header here: RabbitMQ reads this file as a bare Erlang term.
        "compose/rabbitmq_enabled_plugins": shared.RABBITMQ_PLUGINS,
    }
