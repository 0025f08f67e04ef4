"""Kubernetes building blocks, the namespace-wide objects and the demo backing services."""

from __future__ import annotations

from typing import Any

from vigil.demo_marketplace.deploy import shared
from vigil.demo_marketplace.deploy.shared import DB_NAME, DB_PASSWORD, DB_USER, dump_yaml, labels
from vigil.stack.prometheus_config import RABBITMQ_DETAILED_FAMILIES

NAMESPACE = "vigil-marketplace"
CONFIGMAP = "marketplace-config"
Manifest = dict[str, Any]

RESTRICTED: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
# The pod half of the "restricted" pod security standard, for pods running our image.
POD_RESTRICTED: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": shared.UID,
    "runAsGroup": shared.UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
_NAME_LABEL = "app.kubernetes.io/name"


def meta(name: str, object_labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NAMESPACE, "labels": object_labels, **extra}


def selector(object_labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in object_labels.items() if k != "app.kubernetes.io/component"}


def scrape_annotations(port: int) -> dict[str, str]:
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"}


def resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu_limit, "memory": memory_limit}}


def namespace() -> Manifest:
    # The backing services' images start as root, so the namespace enforces the "baseline" pod security
    # standard; the marketplace pods themselves also meet "restricted".
    ns_labels = {
        "app.kubernetes.io/part-of": shared.PART_OF,
        "pod-security.kubernetes.io/enforce": "baseline",
    }
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": ns_labels}}


def configmap() -> Manifest:
    metadata = meta(CONFIGMAP, labels(CONFIGMAP, "configuration"))
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": shared.marketplace_env()}


def _env(**values: str) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in values.items()]


def _exporter(name: str, image: str, port: int, **env: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "env": _env(**env),
        "ports": [{"name": "metrics", "containerPort": port}],
        "resources": resources("50m", "64Mi", "200m", "128Mi"),
    }


def _stateful(
    name: str,
    container: dict[str, Any],
    ports: dict[str, int],
    data_path: str,
    metrics_port: int,
    *,
    sidecars: tuple[dict[str, Any], ...] = (),
    volumes: tuple[dict[str, Any], ...] = (),
) -> list[Manifest]:
    """A one-replica StatefulSet with a persistent volume, and its headless Service."""
    object_labels = labels(name, "backing-service")
    container = {
        **container,
        "ports": [{"name": port_name, "containerPort": port} for port_name, port in ports.items()],
    }
    container["volumeMounts"] = [{"name": "data", "mountPath": data_path}, *container.get("volumeMounts", [])]
    pod: dict[str, Any] = {
        "securityContext": {"fsGroup": 999},  # the uid of postgres, redis and rabbitmq in their images
        "containers": [container, *sidecars],
    }
    if volumes:
        pod["volumes"] = list(volumes)
    claim = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta(name, object_labels),
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": selector(object_labels)},
            "template": {
                "metadata": {"labels": object_labels, "annotations": scrape_annotations(metrics_port)},
                "spec": pod,
            },
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": claim}],
        },
    }
    service_ports = [{"name": n, "port": p, "targetPort": p} for n, p in ports.items()]
    headless = {"clusterIP": "None", "selector": selector(object_labels), "ports": service_ports}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, object_labels), "spec": headless}
    return [statefulset, service]


def _ready(*command: str) -> dict[str, Any]:
    return {"exec": {"command": list(command)}, "periodSeconds": 10, "timeoutSeconds": 5}


def backing_services() -> list[Manifest]:
    postgres = {
        "name": "postgres",
        "image": "postgres:15",
        "env": _env(
            POSTGRES_USER=DB_USER,
            POSTGRES_PASSWORD=DB_PASSWORD,
            POSTGRES_DB=DB_NAME,
            PGDATA="/var/lib/postgresql/data/pgdata",
        ),
        "readinessProbe": _ready("pg_isready", "-U", DB_USER, "-d", DB_NAME),
        "resources": resources("250m", "512Mi", "1", "1Gi"),
    }
    pg_exporter = _exporter(
        "postgres-exporter",
        "quay.io/prometheuscommunity/postgres-exporter:v0.15.0",
        9187,
        DATA_SOURCE_NAME=f"postgresql://{DB_USER}:{DB_PASSWORD}@localhost:5432/{DB_NAME}?sslmode=disable",
    )
    redis = {
        "name": "redis",
        "image": "redis:7",
        "readinessProbe": _ready("redis-cli", "ping"),
        "resources": resources("100m", "128Mi", "500m", "256Mi"),
    }
    redis_exporter = _exporter(
        "redis-exporter", "oliver006/redis_exporter:v1.62.0", 9121, REDIS_ADDR="redis://localhost:6379"
    )
    rabbitmq = {
        "name": "rabbitmq",
        "image": "rabbitmq:3-management",
        "env": _env(RABBITMQ_DEFAULT_USER=DB_USER, RABBITMQ_DEFAULT_PASS=DB_PASSWORD),
        "readinessProbe": _ready("rabbitmq-diagnostics", "-q", "check_port_connectivity"),
        "resources": resources("250m", "512Mi", "1", "1Gi"),
        "volumeMounts": [
            {"name": "plugins", "mountPath": "/etc/rabbitmq/enabled_plugins", "subPath": "enabled_plugins"}
        ],
    }
    plugins = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta("rabbitmq-plugins", labels("rabbitmq", "backing-service")),
        "data": {"enabled_plugins": shared.RABBITMQ_PLUGINS},
    }
    return [
        *_stateful(
            "postgres",
            postgres,
            {"postgres": 5432},
            "/var/lib/postgresql/data",
            9187,
            sidecars=(pg_exporter,),
        ),
        *_stateful("redis", redis, {"redis": 6379}, "/data", 9121, sidecars=(redis_exporter,)),
        plugins,
        *_stateful(
            "rabbitmq",
            rabbitmq,
            {"amqp": 5672, "management": 15672, "prometheus": 15692},
            "/var/lib/rabbitmq",
            15692,
            volumes=({"name": "plugins", "configMap": {"name": "rabbitmq-plugins"}},),
        ),
    ]


def _pod_job(job: str, label: str, regex: str, name_label: str | None = None, **extra: Any) -> dict[str, Any]:
    """A Prometheus job over this namespace's annotated pods whose ``label`` matches ``regex``.

    ``extra`` goes into the job as is; with a ``metrics_path`` of its own, the pod's path annotation
    is ignored.
    """
    meta_label = "__meta_kubernetes_pod_label_" + label.replace(".", "_").replace("/", "_").replace("-", "_")
    relabel: list[dict[str, Any]] = [
        {
            "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
            "regex": "true",
            "action": "keep",
        },
        {"source_labels": [meta_label], "regex": regex, "action": "keep"},
        {
            "source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
            "regex": r"([^:]+)(?::\d+)?;(\d+)",
            "replacement": "$1:$2",
            "target_label": "__address__",
        },
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ]
    if "metrics_path" not in extra:
        path = {
            "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
            "regex": "(.+)",
            "target_label": "__metrics_path__",
        }
        relabel.insert(3, path)
    if name_label:
        relabel.append(
            {
                "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                "target_label": name_label,
            }
        )
    sd = {"role": "pod", "namespaces": {"names": [NAMESPACE]}}
    return {"job_name": job, **extra, "kubernetes_sd_configs": [sd], "relabel_configs": relabel}


def scrape_config() -> Manifest:
    """A ConfigMap holding Prometheus scrape jobs for the annotated pods, labelled like the local stack."""
    jobs = [
        _pod_job(
            "marketplace",
            "app.kubernetes.io/component",
            "marketplace-service|external-simulator",
            name_label="service",
        ),
        *(_pod_job(name, _NAME_LABEL, name) for name in ("postgres", "redis", "rabbitmq")),
        # Per-queue depth, consumers, publishes and deliveries, which vigil.yaml's queue signals read
        # (RabbitMQ's aggregated /metrics has no queue label), as in the local stack.
        _pod_job(
            "rabbitmq-detailed",
            _NAME_LABEL,
            "rabbitmq",
            metrics_path="/metrics/detailed",
            params={"family": RABBITMQ_DETAILED_FAMILIES},
        ),
        # vigil re-exports the labels of the series it scores (job, instance, service): keep them.
        _pod_job("vigil", _NAME_LABEL, "vigil", honor_labels=True),
    ]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta("prometheus-scrape", labels("prometheus-scrape", "monitoring")),
        "data": {"marketplace-scrape.yml": dump_yaml({"scrape_configs": jobs})},
    }
