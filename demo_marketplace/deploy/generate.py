"""Generate the deployment files from the service catalog, so they never drift from it.

    python -m vigil.demo_marketplace.deploy.generate [OUT_DIR]

writes, into OUT_DIR (default: this package's directory, where the files are committed):

- ``docker-compose.yml`` and the configuration it mounts from ``compose/`` (``vigil.yaml`` among it);
- ``k8s/``: ``namespace.yaml``, ``configmap.yaml``, ``backing-services.yaml``, ``prometheus-scrape.yaml``,
  one file per catalog service with its Deployment, Service and HorizontalPodAutoscaler, and ``vigil.yaml``
  with vigil's sharded detection (ConfigMap, headless Service, StatefulSet, PodDisruptionBudget).

Run it from a source checkout: vigil's configuration is made from the repository's ``vigil.yaml``.

``tests/unit/test_deploy_files.py`` regenerates them and fails when the committed files differ.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vigil.demo_marketplace.deploy.compose import compose_file
from vigil.demo_marketplace.deploy.compose_configs import render_compose_configs
from vigil.demo_marketplace.deploy.k8s import kubernetes_manifests, render_kubernetes
from vigil.demo_marketplace.deploy.shared import dump_yaml, header

__all__ = ["GENERATED_DIRS", "compose_file", "generated_files", "kubernetes_manifests", "main", "write_all"]

HERE = Path(__file__).resolve().parent
GENERATED_DIRS = ("compose", "k8s")  # wholly generated: files in them that are not generated are removed

_COMPOSE_NOTES = (
    "Run the whole marketplace on one Docker host (Docker Compose v2):",
    "  docker compose -f demo_marketplace/deploy/docker-compose.yml up -d --build",
    "The services and their replicas sit behind HAProxy on their catalog ports (127.0.0.1:8000 is the",
    "storefront gateway); Prometheus 127.0.0.1:9090, Alertmanager :9093, Grafana :3000, Elasticsearch :9200,",
    "RabbitMQ management :15672, vigil's anomaly scores and API :9400. Every published port is bound to",
    "127.0.0.1 only.",
    "Services write ECS JSON logs to the shared marketplace-logs volume (MARKETPLACE_LOG_DIR), which the",
    "logship service ships to Elasticsearch.",
)


def generated_files() -> dict[str, str]:
    """Path relative to the output directory -> the text of every generated file."""
    files = {"docker-compose.yml": header(*_COMPOSE_NOTES) + dump_yaml(compose_file())}
    files |= render_compose_configs()
    files |= render_kubernetes()
    return files


def write_all(out_dir: Path) -> list[Path]:
    """Write every generated file under ``out_dir``; drop stale ones (a service removed from the catalog)."""
    files = generated_files()
    for directory in GENERATED_DIRS:
        if (out_dir / directory).is_dir():
            for path in (out_dir / directory).iterdir():
                if path.is_file() and path.relative_to(out_dir).as_posix() not in files:
                    path.unlink()
    written = []
    for relative, text in files.items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out_dir", nargs="?", type=Path, default=HERE, help="default: %(default)s")
    args = parser.parse_args(argv)
    for path in write_all(args.out_dir):
        print(path)


if __name__ == "__main__":
    main()
