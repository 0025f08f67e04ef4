"""vigil's detection in Kubernetes: a StatefulSet whose replicas split the series between them.

Each pod runs ``vigil run --shard $(POD_NAME)/SHARDS``: the StatefulSet names its pods ``vigil-0``,
``vigil-1``, ..., and the ordinal after the last ``-`` is the pod's shard (``vigil.config.ShardConfig``),
so every series is scored by exactly one pod.
"""

from __future__ import annotations

import hashlib
from typing import Any

from vigil.demo_marketplace.deploy import vigil_config
from vigil.demo_marketplace.deploy.k8s_backing import (
    POD_RESTRICTED,
    RESTRICTED,
    Manifest,
    meta,
    resources,
    scrape_annotations,
    selector,
)
from vigil.demo_marketplace.deploy.shared import IMAGE, UID, dump_yaml, labels

NAME = "vigil"
CONFIGMAP = "vigil-config"
# The replica count IS the shard count: it is part of every pod's arguments. There is deliberately no
# HorizontalPodAutoscaler (one would change the replicas without telling the pods how many shards there are):
# to scale vigil, change SHARDS and regenerate. Every pod then restarts with the new split, and detectors
# re-learn the series that moved to another pod.
SHARDS = 2


def cluster_config_text() -> str:
    config = vigil_config.deployed_config(vigil_config.PROMETHEUS_URL, vigil_config.ELASTICSEARCH_URL)
    return dump_yaml(config)


def configmap() -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(CONFIGMAP, labels(CONFIGMAP, "configuration")),
        "data": {"vigil.yaml": cluster_config_text(), "system.yaml": vigil_config.system_file_text()},
    }


def _probe(period: int, **extra: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": "/healthz", "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        **extra,
    }


STATE_DIR = "/var/lib/vigil"


def statefulset() -> Manifest:
    pod_labels = labels(NAME, "detection")
    container: dict[str, Any] = {
        "name": NAME,
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        # $(POD_NAME) is expanded by the kubelet: vigil-1 scores shard 1 of SHARDS.
        "args": vigil_config.run_args(f"$(POD_NAME)/{SHARDS}"),
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "VIGIL_STATE_DIR", "value": STATE_DIR},
        ],
        "ports": [{"name": "http", "containerPort": vigil_config.PORT, "protocol": "TCP"}],
        # Memory grows with the series scored: see bench/engine.py for the bytes per series.
        "resources": resources("250m", "512Mi", "1", "1Gi"),
        # /healthz answers 200 while a source is down too ("degraded"): a Prometheus outage must not
        # restart the pods and throw away what the detectors learned.
        "readinessProbe": _probe(10, failureThreshold=3),
        "livenessProbe": _probe(20, initialDelaySeconds=30, failureThreshold=3),
        "securityContext": RESTRICTED,
        "volumeMounts": [
            {"name": "config", "mountPath": vigil_config.CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
            # Checkpoints and the alert outbox: a restarted pod keeps what it learned and what it told.
            {"name": "state", "mountPath": STATE_DIR},
        ],
    }
    # A new config rolls the pods (a mounted ConfigMap changes under a running vigil without being reread).
    checksum = hashlib.sha256(cluster_config_text().encode()).hexdigest()
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta(NAME, pod_labels, annotations={"description": "vigil: anomaly detection, sharded"}),
        "spec": {
            "serviceName": NAME,
            "replicas": SHARDS,
            # The shards are independent: start and replace them all at once, not one after another.
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector(pod_labels)},
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {
                        **scrape_annotations(vigil_config.PORT),
                        "checksum/vigil-config": checksum,
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    # fsGroup: the state volume is writable by the image's non-root user.
                    "securityContext": {**POD_RESTRICTED, "fsGroup": UID},
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": CONFIGMAP}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "state"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    }


def headless_service() -> Manifest:
    """A stable DNS name per pod (vigil-0.vigil) for its API; Prometheus finds the pods by annotation."""
    svc_labels = labels(NAME, "detection")
    port = {"name": "http", "port": vigil_config.PORT, "targetPort": "http", "protocol": "TCP"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(NAME, svc_labels),
        "spec": {"clusterIP": "None", "selector": selector(svc_labels), "ports": [port]},
    }


def disruption_budget() -> Manifest:
    """A node drain takes at most one shard away at a time."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(NAME, labels(NAME, "detection")),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(labels(NAME, "detection"))}},
    }


def vigil_manifests() -> list[Manifest]:
    return [configmap(), headless_service(), statefulset(), disruption_budget()]


NOTES = [
    f"vigil's anomaly detection: a StatefulSet of {SHARDS} replicas that split the series between them",
    f"(vigil run --shard $(POD_NAME)/{SHARDS}); the ConfigMap is the repository's vigil.yaml with in-cluster",
    "addresses.",
    "",
    "No HorizontalPodAutoscaler: the replica count is the shard count every pod is started with. To scale,",
    "change SHARDS in demo_marketplace/deploy/k8s_vigil.py and regenerate.",
    "",
    "These manifests run neither Prometheus nor Elasticsearch: vigil reads them at",
    f"{vigil_config.PROMETHEUS_URL} and {vigil_config.ELASTICSEARCH_URL}, so give them Services of",
    "those names in this namespace (an ExternalName Service pointing at yours will do) or change the URLs",
    "in demo_marketplace/deploy/vigil_config.py. Prometheus scrapes vigil with prometheus-scrape.yaml's",
    "vigil job.",
]
