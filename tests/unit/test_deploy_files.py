"""The committed deployment files are exactly what the catalog generates, and structurally sound.

No Docker engine or Kubernetes cluster is needed: the Kubernetes objects are validated against the API's
models from the ``kubernetes`` client (unknown or misspelt fields fail), the Compose file structurally.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from vigil.config import ShardConfig, VigilConfig, load_config
from vigil.demo_marketplace.catalog import QUEUES, SERVICES, SYSTEM_FILE, Service
from vigil.demo_marketplace.common.settings import ServiceSettings
from vigil.demo_marketplace.deploy import k8s_vigil, shared, vigil_config
from vigil.demo_marketplace.deploy.generate import (
    GENERATED_DIRS,
    compose_file,
    generated_files,
    kubernetes_manifests,
    write_all,
)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "demo_marketplace" / "deploy"
REGENERATE = "regenerate with: python -m vigil.demo_marketplace.deploy.generate demo_marketplace/deploy"

# The API objects we generate and their models: anything else is a mistake (a typo in apiVersion or kind).
MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("v1", "Namespace"): kubernetes.client.V1Namespace,
    ("v1", "ConfigMap"): kubernetes.client.V1ConfigMap,
    ("v1", "Service"): kubernetes.client.V1Service,
    ("apps/v1", "Deployment"): kubernetes.client.V1Deployment,
    ("apps/v1", "StatefulSet"): kubernetes.client.V1StatefulSet,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): kubernetes.client.V2HorizontalPodAutoscaler,
    ("policy/v1", "PodDisruptionBudget"): kubernetes.client.V1PodDisruptionBudget,
}
# Properties of a Compose service (compose-spec), enough to catch a misspelt key in what we generate.
COMPOSE_SERVICE_KEYS = {
    "build", "cap_add", "cap_drop", "command", "container_name", "depends_on", "deploy", "entrypoint",
    "env_file", "environment", "expose", "extra_hosts", "healthcheck", "hostname", "image", "init", "labels",
    "logging", "mem_limit", "network_mode", "networks", "ports", "profiles", "pull_policy", "read_only",
    "restart", "secrets", "security_opt", "stop_grace_period", "tmpfs", "ulimits", "user", "volumes",
    "working_dir",
}  # fmt: skip
DEPENDS_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def _tree(directory: Path) -> dict[str, str]:
    paths = [directory / "docker-compose.yml"]
    paths += [p for d in GENERATED_DIRS if (directory / d).is_dir() for p in (directory / d).rglob("*")]
    return {p.relative_to(directory).as_posix(): p.read_text() for p in paths if p.is_file()}


def _objects(kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in kubernetes_manifests() if o["kind"] == kind}


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


# --- drift ------------------------------------------------------------------------------------------------


def test_committed_files_are_what_the_catalog_generates(tmp_path: Path) -> None:
    write_all(tmp_path)
    regenerated, committed = _tree(tmp_path), _tree(DEPLOY)
    assert sorted(committed) == sorted(regenerated), REGENERATE
    for name, text in regenerated.items():
        assert committed[name] == text, f"{name} drifted from the catalog; {REGENERATE}"


def test_generation_is_deterministic_and_drops_stale_files(tmp_path: Path) -> None:
    write_all(tmp_path)
    (tmp_path / "k8s" / "retired-service.yaml").write_text("kind: Deployment\n")
    write_all(tmp_path)
    assert _tree(tmp_path) == generated_files()


def test_generated_yaml_parses_back_to_the_generated_objects() -> None:
    files = generated_files()
    for name, text in files.items():
        if name.endswith((".yml", ".yaml")):
            assert all(doc is not None for doc in yaml.safe_load_all(text)), name
    assert yaml.safe_load(files["docker-compose.yml"]) == compose_file()
    k8s = [doc for name, text in files.items() if name.startswith("k8s/") for doc in yaml.safe_load_all(text)]
    assert k8s == kubernetes_manifests()


# --- Kubernetes -------------------------------------------------------------------------------------------


def test_objects_are_known_api_types_that_validate_against_the_api_models() -> None:
    for obj in kubernetes_manifests():
        model = MODELS.get((obj.get("apiVersion"), obj.get("kind")))
        assert model is not None, f"unexpected apiVersion/kind {obj.get('apiVersion')}/{obj.get('kind')}"
        # The models forbid unknown fields and check required ones and types; the round trip catches
        # anything coerced on the way (a number where the API wants a string).
        parsed = model.model_validate(obj)
        assert parsed.model_dump(by_alias=True, exclude_none=True, mode="json") == obj


def test_objects_are_unique_named_and_in_the_namespace() -> None:
    objects = kubernetes_manifests()
    (namespace,) = [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"]
    keys = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys))
    for obj in objects:
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", obj["metadata"]["name"])
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace
            assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "vigil-marketplace"


def test_every_catalog_service_has_a_file_with_deployment_service_and_autoscaler() -> None:
    files = generated_files()
    for spec in SERVICES:
        docs = list(yaml.safe_load_all(files[f"k8s/{spec.name}.yaml"]))
        assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
            ("Deployment", spec.name), ("Service", spec.name), ("HorizontalPodAutoscaler", spec.name),
        ]  # fmt: skip
    for name in ("namespace", "configmap", "backing-services", "prometheus-scrape", "vigil"):
        assert f"k8s/{name}.yaml" in files


def test_autoscalers_target_existing_deployments_on_cpu() -> None:
    deployments = _objects("Deployment")
    for spec in SERVICES:
        hpa = _objects("HorizontalPodAutoscaler")[spec.name]["spec"]
        target = hpa["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        assert target["name"] in deployments
        assert hpa["minReplicas"] == spec.default_replicas <= hpa["maxReplicas"]
        (metric,) = hpa["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
        assert "replicas" not in deployments[spec.name]["spec"], "the HPA owns the replica count"


def test_consumers_document_queue_depth_scaling() -> None:
    for spec in SERVICES:
        text = generated_files()[f"k8s/{spec.name}.yaml"]
        assert ("KEDA" in text and "Prometheus adapter" in text) == bool(spec.consumes), spec.name
    assert {q.consumer for q in QUEUES} == {s.name for s in SERVICES if s.consumes}


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_deployment_runs_the_service_safely_on_its_port(spec: Service) -> None:
    deployment = _objects("Deployment")[spec.name]
    pod = deployment["spec"]["template"]
    container = _container(deployment)
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"]["cpu"], "the HPA computes utilisation from the CPU request"
    assert container["resources"]["limits"]["memory"]
    assert container["ports"] == [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": spec.port}
    assert container["args"] == shared.serve_args(spec, "$(POD_NAME)")
    env = {e["name"]: e for e in container["env"]}
    assert env["MARKETPLACE_SERVICE"]["value"] == spec.name
    assert [ref["configMapRef"]["name"] for ref in container["envFrom"]] == ["marketplace-config"]
    for key in ("app.kubernetes.io/name", "app.kubernetes.io/part-of"):
        assert pod["metadata"]["labels"][key] == deployment["spec"]["selector"]["matchLabels"][key]
    annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": str(spec.port)}
    assert pod["metadata"]["annotations"] == {**annotations, "prometheus.io/path": "/metrics"}
    init = {c["name"] for c in pod["spec"].get("initContainers", [])}
    assert ("migrate" in init) == ("postgresql" in spec.uses)


def test_services_select_their_pods_and_expose_the_catalog_port() -> None:
    pods = {
        name: o["spec"]["template"]["metadata"]["labels"]
        for kind in ("Deployment", "StatefulSet")
        for name, o in _objects(kind).items()
    }
    services = _objects("Service")
    for name, svc in services.items():
        assert svc["spec"]["selector"].items() <= pods[name].items(), name
    for spec in SERVICES:
        (port,) = services[spec.name]["spec"]["ports"]
        assert (port["port"], port["targetPort"]) == (spec.port, "http")
    for name, statefulset in _objects("StatefulSet").items():
        assert statefulset["spec"]["serviceName"] in services, name


def test_references_between_objects_resolve() -> None:
    configmaps = _objects("ConfigMap")
    for kind in ("Deployment", "StatefulSet"):
        for name, obj in _objects(kind).items():
            pod = obj["spec"]["template"]["spec"]
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            claims = {c["metadata"]["name"] for c in obj["spec"].get("volumeClaimTemplates", [])}
            for container in pod["containers"] + pod.get("initContainers", []):
                for ref in container.get("envFrom", []):
                    assert ref["configMapRef"]["name"] in configmaps, name
                for mount in container.get("volumeMounts", []):
                    assert mount["name"] in volumes.keys() | claims, (name, mount)
            for volume in volumes.values():
                if "configMap" in volume:
                    assert volume["configMap"]["name"] in configmaps, name


def test_configmap_is_what_service_settings_read(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _objects("ConfigMap")["marketplace-config"]["data"]
    fields = {f"MARKETPLACE_{name.upper()}" for name in ServiceSettings.model_fields}
    assert set(data) <= fields
    assert "MARKETPLACE_LOG_DIR" not in data, "in Kubernetes the services log to stdout"
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MARKETPLACE_SERVICE", "gateway")
    settings = ServiceSettings()
    assert settings.service_urls == {s.name: f"http://{s.name}:{s.port}" for s in SERVICES}
    assert "@postgres:5432/marketplace" in settings.postgres_dsn


def test_scrape_config_is_a_valid_prometheus_fragment() -> None:
    (text,) = _objects("ConfigMap")["prometheus-scrape"]["data"].values()
    jobs = {job["job_name"]: job for job in yaml.safe_load(text)["scrape_configs"]}
    assert set(jobs) == {"marketplace", "postgres", "redis", "rabbitmq", "rabbitmq-detailed", "vigil"}
    for job in jobs.values():
        assert job["kubernetes_sd_configs"][0]["role"] == "pod"
        for rule in job["relabel_configs"]:
            re.compile(rule.get("regex", "(.*)"))
    # vigil's scores carry the labels of the series they judge (job, instance, service): keep them.
    assert jobs["vigil"]["honor_labels"] is True
    assert jobs["rabbitmq-detailed"]["metrics_path"] == "/metrics/detailed"
    path_rules = [
        r for r in jobs["rabbitmq-detailed"]["relabel_configs"] if r.get("target_label") == "__metrics_path__"
    ]
    assert path_rules == [], "the pod's /metrics annotation must not override the detailed endpoint"


# --- Compose ----------------------------------------------------------------------------------------------


def test_compose_runs_every_catalog_service_with_its_replicas_and_health_check() -> None:
    services = compose_file()["services"]
    for spec in SERVICES:
        svc = services[spec.name]
        assert svc["deploy"]["replicas"] == spec.default_replicas
        assert svc["environment"]["MARKETPLACE_SERVICE"] == spec.name
        assert svc["environment"]["MARKETPLACE_LOG_DIR"] == shared.LOG_DIR
        assert f"http://127.0.0.1:{spec.port}/healthz" in " ".join(svc["healthcheck"]["test"])
        assert svc["healthcheck"]["test"][:3] == ["CMD", "python", "-c"]
        assert f"serve {spec.name} --port {spec.port} --host 0.0.0.0" in svc["entrypoint"][-1]
        for host in shared.backing_hosts(spec):
            assert svc["depends_on"][host] == {"condition": "service_healthy"}


def test_compose_structure() -> None:
    compose = compose_file()
    services = compose["services"]
    assert set(compose) <= {"name", "services", "volumes", "networks", "configs", "secrets"}
    for name, svc in services.items():
        assert set(svc) <= COMPOSE_SERVICE_KEYS, (name, set(svc) - COMPOSE_SERVICE_KEYS)
        assert "image" in svc or "build" in svc, name
        if "build" in svc:
            context = (DEPLOY / svc["build"]["context"]).resolve()
            assert context == ROOT, "the Dockerfile's build context is the repository root"
            assert (context / svc["build"]["dockerfile"]).is_file()
        for target, dependency in svc.get("depends_on", {}).items():
            assert target in services, (name, target)
            assert dependency["condition"] in DEPENDS_CONDITIONS
            if dependency["condition"] == "service_healthy":
                assert "healthcheck" in services[target], (
                    f"{name} waits for {target}, which has no healthcheck"
                )
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)
            else:
                assert source in compose["volumes"], (name, source)


def test_compose_publishes_only_on_loopback_and_each_host_port_once() -> None:
    published = [port for svc in compose_file()["services"].values() for port in svc.get("ports", [])]
    assert published
    for port in published:
        assert re.fullmatch(r"127\.0\.0\.1:\d+:\d+", port), port
    host_ports = [port.split(":")[1] for port in published]
    assert len(host_ports) == len(set(host_ports))
    # The replicas are reached through HAProxy, which owns each catalog port on the host.
    for spec in SERVICES:
        assert "ports" not in compose_file()["services"][spec.name], "replicas cannot share a host port"
        assert f"127.0.0.1:{spec.port}:{spec.port}" in compose_file()["services"]["haproxy"]["ports"]


def test_compose_interpolation_is_escaped() -> None:
    # Compose substitutes $VAR from the host; a literal dollar for the container's shell must be $$.
    text = generated_files()["docker-compose.yml"]
    assert not re.search(r"(?<!\$)\$(?!\$)", text.replace("$$", "")), "unescaped $ in docker-compose.yml"


def test_compose_configuration_files_cover_the_catalog() -> None:
    files = generated_files()
    prometheus = yaml.safe_load(files["compose/prometheus.yml"])
    (marketplace,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "marketplace"]
    discovered = {(c["names"][0], c["port"]) for c in marketplace["dns_sd_configs"]}
    assert discovered == {(s.name, s.port) for s in SERVICES}
    assert all(c["type"] == "A" for c in marketplace["dns_sd_configs"])
    targets = [
        t for job in prometheus["scrape_configs"] for c in job.get("static_configs", []) for t in c["targets"]
    ]
    compose_services = compose_file()["services"]
    for target in targets:
        assert target.split(":")[0] in compose_services.keys() | {"localhost"}, target
    haproxy = files["compose/haproxy.cfg"]
    for spec in SERVICES:
        assert f"bind :{spec.port}\n" in haproxy
        assert f" {spec.name}:{spec.port} check resolvers docker" in haproxy
    assert files["compose/rabbitmq_enabled_plugins"] == "[rabbitmq_management,rabbitmq_prometheus].\n"


# --- the image and the command it runs --------------------------------------------------------------------


def test_dockerfile_builds_a_non_root_vigil_image_from_the_repository() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "docker build -f demo_marketplace/deploy/Dockerfile ." in dockerfile.replace(
        "-t vigil-marketplace:latest ", ""
    )
    assert re.search(r"^FROM python:3\.11-slim\s*$", dockerfile, re.M)
    assert re.search(rf"^USER {shared.UID}(:{shared.UID})?$", dockerfile, re.M)
    assert '\nENTRYPOINT ["vigil"]\n' in dockerfile
    # Every directory pyproject installs must be copied in (the context's .venv and .git must not be).
    package_dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for directory in package_dirs.values():
        assert f"\nCOPY {directory}/ {directory}/\n" in dockerfile, directory
    assert "\nCOPY . " not in dockerfile


def test_the_cli_accepts_the_serve_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from vigil import cli
    from vigil.demo_marketplace import serve

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(serve, "serve", lambda *args: calls.append(args))
    spec = SERVICES[0]
    result = CliRunner().invoke(cli.app, shared.serve_args(spec, "replica-a"))
    assert result.exit_code == 0, result.output
    assert calls == [(spec.name, spec.port, "replica-a", "0.0.0.0")]


def test_the_migration_command_names_a_real_function() -> None:
    from vigil.demo_marketplace import schema

    assert "from vigil.demo_marketplace.schema import migrate" in shared.MIGRATE_CODE
    assert callable(schema.migrate)


# --- vigil's detection ------------------------------------------------------------------------------------


def _vigil_statefulset() -> dict[str, Any]:
    return _objects("StatefulSet")["vigil"]


def _cluster_config() -> dict[str, Any]:
    """The ConfigMap's vigil.yaml, its ``system:`` at the demo's file (shipped beside it, verbatim)."""
    data = _objects("ConfigMap")[k8s_vigil.CONFIGMAP]["data"]
    assert set(data) == {Path(vigil_config.CONFIG_PATH).name, Path(vigil_config.SYSTEM_PATH).name}
    assert data[Path(vigil_config.SYSTEM_PATH).name] == SYSTEM_FILE.read_text()
    config: dict[str, Any] = yaml.safe_load(data[Path(vigil_config.CONFIG_PATH).name])
    assert config["system"] == vigil_config.SYSTEM_PATH
    return {**config, "system": str(SYSTEM_FILE)}


def test_vigil_statefulset_runs_one_shard_per_replica() -> None:
    statefulset = _vigil_statefulset()
    replicas = statefulset["spec"]["replicas"]
    assert replicas == k8s_vigil.SHARDS >= 1
    assert statefulset["spec"]["podManagementPolicy"] == "Parallel"
    container = _container(statefulset)
    assert container["args"] == [
        "run",
        "--config",
        vigil_config.CONFIG_PATH,
        "--shard",
        f"$(POD_NAME)/{replicas}",
    ]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # The StatefulSet names its pods <name>-0 .. <name>-(replicas-1): each parses to its own shard.
    shards = []
    for ordinal in range(replicas):
        pod_name = f"{statefulset['metadata']['name']}-{ordinal}"
        shards.append(ShardConfig.parse(container["args"][-1].replace("$(POD_NAME)", pod_name)))
    assert shards == [ShardConfig(index=i, count=replicas) for i in range(replicas)]


def test_vigil_is_scaled_by_its_shard_count_not_by_an_autoscaler() -> None:
    targets = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in _objects("HorizontalPodAutoscaler").values()}
    assert "vigil" not in targets
    assert "SHARDS" in generated_files()["k8s/vigil.yaml"], "the file says how to scale vigil"
    (budget,) = _objects("PodDisruptionBudget").values()
    assert budget["spec"]["maxUnavailable"] == 1
    pod_labels = _vigil_statefulset()["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_vigil_pod_is_restricted_probed_and_scraped_like_the_others() -> None:
    statefulset = _vigil_statefulset()
    pod = statefulset["spec"]["template"]
    container = _container(statefulset)
    marketplace_pod = _objects("Deployment")[SERVICES[0].name]["spec"]["template"]["spec"]
    # The same restrictions, plus the group that makes its state volume writable.
    assert pod["spec"]["securityContext"] == {**marketplace_pod["securityContext"], "fsGroup": 10001}
    assert (
        container["securityContext"]
        == _container({"spec": {"template": {"spec": marketplace_pod}}})["securityContext"]
    )
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["limits"]["memory"]
    (port,) = container["ports"]
    assert port["containerPort"] == vigil_config.PORT == 9400
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
        assert container[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(vigil_config.PORT)
    assert annotations["prometheus.io/path"] == "/metrics"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts[str(Path(vigil_config.CONFIG_PATH).parent)] == "config"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == k8s_vigil.CONFIGMAP
    # Each replica keeps its checkpoints and outbox on its own claim across restarts and reschedules.
    assert mounts["/var/lib/vigil"] == "state"
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "state"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["VIGIL_STATE_DIR"] == "/var/lib/vigil"


def test_vigil_cluster_config_is_the_repository_config_with_cluster_addresses() -> None:
    raw = _cluster_config()
    config = VigilConfig.model_validate(raw)
    assert config.register_targets is None
    assert config.server.host == "0.0.0.0"
    assert config.server.port == _container(_vigil_statefulset())["ports"][0]["containerPort"]
    assert config.sources.prometheus is not None
    assert config.sources.elasticsearch is not None
    assert config.sources.prometheus.url == vigil_config.PROMETHEUS_URL
    assert config.sources.elasticsearch.url == vigil_config.ELASTICSEARCH_URL
    assert config.shard == ShardConfig(), (
        "the shard comes from each pod's --shard, not from the shared config"
    )
    repository = load_config(ROOT / "vigil.yaml")
    assert config.signals == repository.signals
    assert config.exclude == repository.exclude


def test_the_cli_runs_the_generated_vigil_commands(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from vigil import cli
    from vigil.runtime import service

    runs: list[VigilConfig] = []
    monkeypatch.setattr(service, "run", runs.append)
    config_file = tmp_path / "vigil.yaml"
    config_file.write_text(yaml.safe_dump(_cluster_config()))
    k8s_args = _container(_vigil_statefulset())["args"]
    compose_args = compose_file()["services"]["vigil"]["entrypoint"][1:]  # after the `vigil` executable
    for args, pod_name, shard in (
        (k8s_args, "vigil-1", ShardConfig(index=1, count=k8s_vigil.SHARDS)),
        (compose_args, "unused", ShardConfig(index=0, count=1)),
    ):
        argv = [a.replace(vigil_config.CONFIG_PATH, str(config_file)) for a in args]
        argv = [a.replace("$(POD_NAME)", pod_name) for a in argv]
        result = CliRunner().invoke(cli.app, argv)
        assert result.exit_code == 0, result.output
        assert runs[-1].shard == shard


def test_compose_runs_vigil_as_one_shard_on_the_compose_network() -> None:
    services = compose_file()["services"]
    vigil = services["vigil"]
    assert vigil["entrypoint"] == ["vigil", *vigil_config.run_args("0/1")]
    assert vigil["image"] == shared.IMAGE
    assert f"http://127.0.0.1:{vigil_config.PORT}/healthz" in " ".join(vigil["healthcheck"]["test"])
    mounts = dict(reversed(m.split(":")[:2]) for m in vigil["volumes"])
    assert mounts[vigil_config.SYSTEM_PATH] == "../system.yaml"  # the demo's own file, next to deploy/
    files = generated_files()
    raw = yaml.safe_load(files[mounts[vigil_config.CONFIG_PATH].removeprefix("./")])
    assert raw["system"] == vigil_config.SYSTEM_PATH
    config = VigilConfig.model_validate({**raw, "system": str(SYSTEM_FILE)})
    assert config.register_targets is None
    assert config.server.host == "0.0.0.0"
    assert config.sources.prometheus is not None
    assert config.sources.elasticsearch is not None
    for url in (config.sources.prometheus.url, config.sources.elasticsearch.url):
        host = url.split("//")[1].split(":")[0]
        assert host in services, url
        assert host in vigil["depends_on"], "vigil starts once what it reads is up"
    prometheus = yaml.safe_load(files["compose/prometheus.yml"])
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["vigil"]["static_configs"] == [{"targets": [f"vigil:{vigil_config.PORT}"]}]
    assert jobs["vigil"]["honor_labels"] is True
    assert jobs["rabbitmq-detailed"]["metrics_path"] == "/metrics/detailed"


def test_the_image_carries_the_vigil_cli() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["vigil"] == "vigil.cli:app"
    assert "vigil.runtime" in pyproject["tool"]["setuptools"]["packages"]
    assert re.search(rf"^EXPOSE .*\b{vigil_config.PORT}\b", (DEPLOY / "Dockerfile").read_text(), re.M)


def test_compose_alertmanager_reads_the_webhook_secret_from_a_compose_secret() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    (name,) = compose["secrets"]
    assert compose["secrets"][name] == {"environment": "VIGIL_WEBHOOK_SECRET"}  # never a file in the repo
    assert compose["services"]["alertmanager"]["secrets"] == [name]
    config = yaml.safe_load((DEPLOY / "compose" / "alertmanager.yml").read_text())
    webhooks = [w for r in config["receivers"] for w in r.get("webhook_configs", [])]
    assert webhooks
    for webhook in webhooks:
        assert webhook["url"].startswith("http://vigil:9400/")
        assert webhook["http_config"]["authorization"]["credentials_file"] == f"/run/secrets/{name}"
