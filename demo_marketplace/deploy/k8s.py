"""Kubernetes manifests of the marketplace: one file per catalog service, plus the shared objects."""

from __future__ import annotations

from typing import Any

from vigil.demo_marketplace.catalog import SERVICES, Service
from vigil.demo_marketplace.deploy import shared
from vigil.demo_marketplace.deploy.k8s_backing import (
    CONFIGMAP,
    POD_RESTRICTED,
    RESTRICTED,
    Manifest,
    backing_services,
    configmap,
    meta,
    namespace,
    resources,
    scrape_annotations,
    scrape_config,
    selector,
)
from vigil.demo_marketplace.deploy.k8s_vigil import NOTES as VIGIL_NOTES
from vigil.demo_marketplace.deploy.k8s_vigil import vigil_manifests
from vigil.demo_marketplace.deploy.shared import IMAGE, dump_yaml, header, labels

CPU_TARGET = 70  # percent of the CPU request, averaged over the replicas


def _probe(port: int, period: int, **extra: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": "/healthz", "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        **extra,
    }


def deployment(spec: Service) -> Manifest:
    pod_labels = labels(spec.name, shared.component(spec))
    container: dict[str, Any] = {
        "name": spec.name,
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        # $(POD_NAME) is expanded by the kubelet: each replica logs and labels itself by its pod.
        "args": shared.serve_args(spec, "$(POD_NAME)"),
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        "env": [
            {"name": "MARKETPLACE_SERVICE", "value": spec.name},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "envFrom": [{"configMapRef": {"name": CONFIGMAP}}],
        "resources": resources("250m", "256Mi", "1", "512Mi"),
        "readinessProbe": _probe(spec.port, 5, failureThreshold=2),
        "livenessProbe": _probe(spec.port, 10, initialDelaySeconds=15, failureThreshold=3),
        # Keep serving while the endpoints controller takes the pod out of the Service.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
        "securityContext": RESTRICTED,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    pod: dict[str, Any] = {"automountServiceAccountToken": False, "securityContext": POD_RESTRICTED}
    if "postgresql" in spec.uses:
        # Idempotent and serialised by an advisory lock: the first pod creates and seeds the schema.
        pod["initContainers"] = [
            {
                "name": "migrate",
                "image": IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "command": ["python", "-c", shared.MIGRATE_CODE],
                "envFrom": [{"configMapRef": {"name": CONFIGMAP}}],
                "resources": resources("100m", "128Mi", "1", "256Mi"),
                "securityContext": RESTRICTED,
            }
        ]
    pod["containers"] = [container]
    pod["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        # No spec.replicas: the HorizontalPodAutoscaler owns the count (minReplicas = the catalog default).
        "metadata": meta(spec.name, pod_labels, annotations={"description": spec.description}),
        "spec": {
            "selector": {"matchLabels": selector(pod_labels)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": scrape_annotations(spec.port)},
                "spec": pod,
            },
        },
    }


def service(spec: Service) -> Manifest:
    svc_labels = labels(spec.name, shared.component(spec))
    port = {"name": "http", "port": spec.port, "targetPort": "http", "protocol": "TCP"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(spec.name, svc_labels),
        "spec": {"type": "ClusterIP", "selector": selector(svc_labels), "ports": [port]},
    }


def autoscaler(spec: Service) -> Manifest:
    cpu = {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": CPU_TARGET}},
    }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(spec.name, labels(spec.name, shared.component(spec))),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "minReplicas": spec.default_replicas,
            "maxReplicas": shared.MAX_REPLICAS,
            "metrics": [cpu],
        },
    }


def _service_notes(spec: Service) -> list[str]:
    notes = [f"{spec.name}: {spec.description}.", f"In the cluster: http://{spec.name}:{spec.port}"]
    if spec.consumes:
        queues = ", ".join(spec.consumes)
        notes += [
            "",
            f"Queue-depth scaling: {spec.name} consumes {queues}; its backlog is a better signal than CPU.",
            "A HorizontalPodAutoscaler cannot see RabbitMQ queues by itself: install KEDA (a ScaledObject",
            "with the rabbitmq trigger, which then replaces this HPA) or a Prometheus adapter",
            "(prometheus-adapter) that exposes the queue's rabbitmq_queue_messages_ready as an External",
            "metric, and add that metric to the HPA.",
        ]
    return notes


def kubernetes_files() -> dict[str, list[Manifest]]:
    """``k8s/<file>.yaml`` -> the objects it holds, in apply order."""
    files: dict[str, list[Manifest]] = {
        "namespace.yaml": [namespace()],
        "configmap.yaml": [configmap()],
        "backing-services.yaml": backing_services(),
        "prometheus-scrape.yaml": [scrape_config()],
    }
    for spec in SERVICES:
        files[f"{spec.name}.yaml"] = [deployment(spec), service(spec), autoscaler(spec)]
    files["vigil.yaml"] = vigil_manifests()
    return files


def kubernetes_manifests() -> list[Manifest]:
    return [doc for docs in kubernetes_files().values() for doc in docs]


_FILE_NOTES = {
    "namespace.yaml": ["Apply first: kubectl apply -f namespace.yaml && kubectl apply -f ."],
    "configmap.yaml": [
        "The MARKETPLACE_* settings every service reads (ServiceSettings). MARKETPLACE_LOG_DIR is unset, so",
        "services log ECS JSON to stdout, where a node-level shipper (Filebeat, Fluent Bit) collects it.",
        "The DSN and AMQP URL carry the demo credentials: in production put them in a Secret",
        "(envFrom secretRef).",
    ],
    "backing-services.yaml": [
        "PostgreSQL, Redis and RabbitMQ as single-replica StatefulSets, with their Prometheus exporters:",
        "for demos only. Production uses managed services or operator-run clusters (CloudNativePG,",
        "the RabbitMQ Cluster Operator, a Redis operator) and points configmap.yaml at them.",
    ],
    "prometheus-scrape.yaml": [
        "A scrape configuration for your Prometheus (it needs RBAC to list pods in this namespace): every",
        "marketplace pod carries prometheus.io/scrape, /port and /path annotations. The job and service",
        "labels match the local stack, so vigil's queries work unchanged.",
    ],
    "vigil.yaml": VIGIL_NOTES,
}


def render_kubernetes() -> dict[str, str]:
    """Relative path -> file text for every manifest file."""
    by_name = {s.name: s for s in SERVICES}
    rendered = {}
    for name, docs in kubernetes_files().items():
        spec = by_name.get(name.removesuffix(".yaml"))
        notes = _service_notes(spec) if spec else _FILE_NOTES[name]
        rendered[f"k8s/{name}"] = header(*notes) + dump_yaml(*docs)
    return rendered
