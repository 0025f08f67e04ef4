"""The Docker Compose deployment: the catalog services with their replicas, backing services, monitoring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vigil.dashboards.build import BuildOptions
from vigil.demo_marketplace.catalog import SERVICES, Service
from vigil.demo_marketplace.deploy import shared, vigil_config
from vigil.demo_marketplace.deploy.shared import DB_NAME, DB_PASSWORD, DB_USER, IMAGE, LOG_DIR

GRAFANA_DASHBOARDS = BuildOptions().grafana_dashboards_path  # mounted from dashboards/generated

ComposeService = dict[str, Any]
BUILD = {"context": "../..", "dockerfile": "demo_marketplace/deploy/Dockerfile"}  # relative to this file
ELASTICSEARCH = "docker.elastic.co/elasticsearch/elasticsearch:8.19.7"
SCRAPE_INTERVAL = "5s"  # as in the local stack, so detectors see the same resolution
HAPROXY_STATS_PORT = 8404
# Alertmanager authenticates to vigil's webhook receiver with this Compose secret.
WEBHOOK_SECRET_NAME = "vigil-webhook-secret"
WEBHOOK_SECRET = Path("/run/secrets") / WEBHOOK_SECRET_NAME
VOLUMES = (
    "postgres-data",
    "redis-data",
    "rabbitmq-data",
    "elasticsearch-data",
    "prometheus-data",
    "grafana-data",
    "marketplace-logs",
    "logship-state",
    "vigil-state",
)


def publish(port: int) -> str:
    """Published ports answer on the host's loopback only, never on its other interfaces."""
    return f"127.0.0.1:{port}:{port}"


def _healthcheck(*test: str, start_period: str = "10s") -> dict[str, Any]:
    return {
        "test": list(test),
        "interval": "5s",
        "timeout": "3s",
        "retries": 30,
        "start_period": start_period,
    }


def _http_ready(url: str) -> dict[str, Any]:
    return _healthcheck("CMD", "wget", "-q", "--spider", url)


def _healthy(*names: str) -> dict[str, dict[str, str]]:
    return {name: {"condition": "service_healthy"} for name in names}


def _hardened(service: ComposeService) -> ComposeService:
    """Our own image: non-root (the Dockerfile's USER), no capabilities, read-only root filesystem."""
    return {
        **service,
        "read_only": True,
        "tmpfs": ["/tmp"],
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
    }


def marketplace_service(spec: Service) -> ComposeService:
    # Each replica names its log file after its container's host name, so replicas never share a file.
    command = " ".join(["exec", "vigil", *shared.serve_args(spec, '"$${HOSTNAME}"')])
    depends_on: dict[str, dict[str, str]] = _healthy(*shared.backing_hosts(spec))
    if "postgresql" in spec.uses:
        depends_on["migrate"] = {"condition": "service_completed_successfully"}
    depends_on |= {callee: {"condition": "service_started"} for callee in spec.calls}
    return _hardened(
        {
            "image": IMAGE,
            "build": BUILD,
            "entrypoint": ["sh", "-c", command],
            "environment": {
                "MARKETPLACE_SERVICE": spec.name,
                **shared.marketplace_env(),
                "MARKETPLACE_LOG_DIR": LOG_DIR,
            },
            "volumes": [f"marketplace-logs:{LOG_DIR}"],
            "expose": [str(spec.port)],
            "healthcheck": _healthcheck("CMD", "python", "-c", shared.healthz_probe_code(spec.port)),
            "depends_on": depends_on,
            "deploy": {
                "replicas": spec.default_replicas,
                "resources": {"limits": {"cpus": "1", "memory": "512M"}},
            },
            "restart": "unless-stopped",
        }
    )


def _backing_services() -> dict[str, ComposeService]:
    return {
        "postgres": {
            "image": "postgres:15",
            "environment": {
                "POSTGRES_USER": DB_USER,
                "POSTGRES_PASSWORD": DB_PASSWORD,
                "POSTGRES_DB": DB_NAME,
            },
            "volumes": ["postgres-data:/var/lib/postgresql/data"],
            "healthcheck": _healthcheck("CMD", "pg_isready", "-U", DB_USER, "-d", DB_NAME),
            "restart": "unless-stopped",
        },
        "redis": {
            "image": "redis:7",
            "volumes": ["redis-data:/data"],
            "healthcheck": _healthcheck("CMD", "redis-cli", "ping"),
            "restart": "unless-stopped",
        },
        "rabbitmq": {
            "image": "rabbitmq:3-management",
            "hostname": "rabbitmq",  # the node name, and so its data directory, follows the host name
            "environment": {"RABBITMQ_DEFAULT_USER": DB_USER, "RABBITMQ_DEFAULT_PASS": DB_PASSWORD},
            "volumes": [
                "rabbitmq-data:/var/lib/rabbitmq",
                "./compose/rabbitmq_enabled_plugins:/etc/rabbitmq/enabled_plugins:ro",
            ],
            "ports": [publish(15672)],  # the management UI
            "healthcheck": _healthcheck(
                "CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity", start_period="30s"
            ),
            "restart": "unless-stopped",
        },
        "elasticsearch": {
            "image": ELASTICSEARCH,
            "environment": {
                "discovery.type": "single-node",
                "xpack.security.enabled": "false",
                "ES_JAVA_OPTS": "-Xms1g -Xmx1g",
            },
            "volumes": ["elasticsearch-data:/usr/share/elasticsearch/data"],
            "ports": [publish(9200)],
            "healthcheck": _healthcheck(
                "CMD-SHELL",
                "curl -fsS 'http://localhost:9200/_cluster/health?wait_for_status=yellow&timeout=2s'",
                start_period="60s",
            ),
            "restart": "unless-stopped",
        },
    }


def _monitoring_services() -> dict[str, ComposeService]:
    return {
        "postgres-exporter": {
            "image": "quay.io/prometheuscommunity/postgres-exporter:v0.15.0",
            "environment": {
                "DATA_SOURCE_NAME": f"postgresql://{DB_USER}:{DB_PASSWORD}@postgres:5432/{DB_NAME}?sslmode=disable"
            },
            "depends_on": _healthy("postgres"),
            "restart": "unless-stopped",
        },
        "redis-exporter": {
            "image": "oliver006/redis_exporter:v1.62.0",
            "environment": {"REDIS_ADDR": "redis://redis:6379"},
            "depends_on": _healthy("redis"),
            "restart": "unless-stopped",
        },
        "elasticsearch-exporter": {
            "image": "quay.io/prometheuscommunity/elasticsearch-exporter:v1.8.0",
            "command": ["--es.uri=http://elasticsearch:9200"],
            "depends_on": _healthy("elasticsearch"),
            "restart": "unless-stopped",
        },
        "prometheus": {
            "image": "prom/prometheus:v2.55.1",
            "volumes": [
                "./compose/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
                "prometheus-data:/prometheus",
            ],
            "ports": [publish(9090)],
            "healthcheck": _http_ready("http://localhost:9090/-/ready"),
            "restart": "unless-stopped",
        },
        "alertmanager": {
            "image": "prom/alertmanager:v0.27.0",
            "volumes": ["./compose/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"],
            "secrets": [WEBHOOK_SECRET_NAME],
            "ports": [publish(9093)],
            "healthcheck": _http_ready("http://localhost:9093/-/ready"),
            "restart": "unless-stopped",
        },
        "grafana": {
            "image": "grafana/grafana:11.2.2",
            "environment": {"GF_AUTH_ANONYMOUS_ENABLED": "true", "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer"},
            "volumes": [
                "./compose/grafana-datasources.yml:/etc/grafana/provisioning/datasources/vigil.yml:ro",
                "./compose/grafana-dashboards.yml:/etc/grafana/provisioning/dashboards/vigil.yml:ro",
                f"../../dashboards/generated/dashboards:{GRAFANA_DASHBOARDS}:ro",
                "grafana-data:/var/lib/grafana",
            ],
            "ports": [publish(3000)],
            "depends_on": _healthy("prometheus"),
            "healthcheck": _http_ready("http://localhost:3000/api/health"),
            "restart": "unless-stopped",
        },
    }


def vigil_service() -> ComposeService:
    """vigil's detection on the Compose network: one replica, so it scores every series (shard 0/1)."""
    return _hardened(
        {
            "image": IMAGE,
            "build": BUILD,
            "entrypoint": ["vigil", *vigil_config.run_args("0/1")],
            "volumes": [
                f"./compose/vigil.yaml:{vigil_config.CONFIG_PATH}:ro",
                f"../system.yaml:{vigil_config.SYSTEM_PATH}:ro",
                # Checkpoints and the alert outbox survive a restart (the root filesystem is read-only).
                "vigil-state:/var/lib/vigil",
            ],
            "environment": {"VIGIL_STATE_DIR": "/var/lib/vigil"},
            "ports": [publish(vigil_config.PORT)],
            "healthcheck": _healthcheck("CMD", "python", "-c", shared.healthz_probe_code(vigil_config.PORT)),
            "depends_on": _healthy("prometheus", "elasticsearch"),
            "restart": "unless-stopped",
        }
    )


def compose_file() -> dict[str, Any]:
    services: dict[str, ComposeService] = _backing_services()
    services["migrate"] = _hardened(
        {
            "image": IMAGE,
            "build": BUILD,
            "entrypoint": ["python", "-c", shared.MIGRATE_CODE],
            "environment": {"MARKETPLACE_POSTGRES_DSN": shared.marketplace_env()["MARKETPLACE_POSTGRES_DSN"]},
            "depends_on": _healthy("postgres"),
        }
    )
    services |= {spec.name: marketplace_service(spec) for spec in SERVICES}
    services["haproxy"] = {
        "image": "haproxy:2.8",
        "volumes": ["./compose/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"],
        "ports": [publish(spec.port) for spec in SERVICES] + [publish(HAPROXY_STATS_PORT)],
        "depends_on": _healthy(*(spec.name for spec in SERVICES)),
        "restart": "unless-stopped",
    }
    services["logship"] = _hardened(
        {
            "image": IMAGE,
            "build": BUILD,
            "entrypoint": [
                "python",
                "-m",
                "vigil.demo_marketplace.logship",
                "--log-dir",
                LOG_DIR,
                "--es-url",
                "http://elasticsearch:9200",
                "--registry-file",
                f"{shared.SHIPPER_STATE_DIR}/registry.json",
            ],
            "volumes": [f"marketplace-logs:{LOG_DIR}:ro", f"logship-state:{shared.SHIPPER_STATE_DIR}"],
            "depends_on": _healthy("elasticsearch"),
            "restart": "unless-stopped",
        }
    )
    services |= _monitoring_services()
    services["vigil"] = vigil_service()
    # The webhook's shared secret comes from `docker compose up`'s environment, never from a file in the repo.
    secrets = {WEBHOOK_SECRET_NAME: {"environment": "VIGIL_WEBHOOK_SECRET"}}
    return {
        "name": "vigil-marketplace",
        "services": services,
        "volumes": {v: {} for v in VOLUMES},
        "secrets": secrets,
    }
