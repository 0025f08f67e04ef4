"""What the Compose file and the Kubernetes manifests share: image, addresses, environment, commands."""

from __future__ import annotations

import json

import yaml

from vigil.demo_marketplace.catalog import SERVICES, Service

IMAGE = "vigil-marketplace:latest"  # built by demo_marketplace/deploy/Dockerfile
PART_OF = "vigil-marketplace"
UID = 10001  # the image's non-root user (numeric, so runAsNonRoot can verify it)
MAX_REPLICAS = 10  # the HPA's ceiling, and HAProxy's server slots per service in Compose
LOG_DIR = "/var/log/marketplace"  # created in the image, owned by the non-root user
SHIPPER_STATE_DIR = "/var/lib/logship"

# Host names of the backing services: Compose service names and Kubernetes Service names alike.
BACKING_HOSTS = {"postgresql": "postgres", "redis": "redis", "rabbitmq": "rabbitmq"}
DB_USER = DB_PASSWORD = "vigil"  # demo credentials, the same as the local stack's
DB_NAME = "marketplace"
RABBITMQ_PLUGINS = "[rabbitmq_management,rabbitmq_prometheus].\n"

MIGRATE_CODE = (
    "import os; from vigil.demo_marketplace.schema import migrate; "
    "migrate(os.environ['MARKETPLACE_POSTGRES_DSN'])"
)


def header(*lines: str) -> str:
    """The comment at the top of every generated file."""
    notes = "".join(f"# {line}\n" if line else "#\n" for line in lines)
    return (
        "# Generated from demo_marketplace/catalog.py by\n"
        "#   python -m vigil.demo_marketplace.deploy.generate demo_marketplace/deploy\n"
        "# Do not edit by hand: tests/unit/test_deploy_files.py fails when this file drifts.\n" + notes
    )


def labels(name: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/component": component,
    }


def component(spec: Service) -> str:
    return "external-simulator" if spec.external else "marketplace-service"


def service_urls() -> str:
    """``MARKETPLACE_SERVICE_URLS``: each service at ``http://<name>:<port>`` (Compose and Kubernetes DNS)."""
    return json.dumps({s.name: f"http://{s.name}:{s.port}" for s in SERVICES}, sort_keys=True)


def marketplace_env() -> dict[str, str]:
    """The ``MARKETPLACE_*`` settings every service shares (``ServiceSettings`` reads them)."""
    credentials = f"{DB_USER}:{DB_PASSWORD}"
    return {
        "MARKETPLACE_POSTGRES_DSN": f"postgresql://{credentials}@{BACKING_HOSTS['postgresql']}:5432/{DB_NAME}",
        "MARKETPLACE_REDIS_URL": f"redis://{BACKING_HOSTS['redis']}:6379/0",
        "MARKETPLACE_AMQP_URL": f"amqp://{credentials}@{BACKING_HOSTS['rabbitmq']}:5672/%2F",
        "MARKETPLACE_SERVICE_URLS": service_urls(),
    }


def serve_args(spec: Service, replica: str) -> list[str]:
    """Arguments of the image's ``vigil`` entrypoint that run one replica of ``spec`` on all interfaces."""
    return [
        "marketplace",
        "serve",
        spec.name,
        "--port",
        str(spec.port),
        "--host",
        "0.0.0.0",
        "--replica",
        replica,
    ]


def healthz_probe_code(port: int) -> str:
    """Python for a container health check: exits non-zero unless /healthz answers 2xx."""
    return f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/healthz', timeout=3)"


def backing_hosts(spec: Service) -> list[str]:
    return [BACKING_HOSTS[use] for use in spec.uses]


class _Dumper(yaml.SafeDumper):
    """No anchors or aliases; multi-line strings (embedded config files) as literal blocks."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(*documents: object) -> str:
    """Stable YAML: keys in insertion order (apiVersion, kind, metadata, spec), documents split by ``---``."""
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=10_000)
