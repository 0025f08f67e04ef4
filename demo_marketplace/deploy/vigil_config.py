"""vigil's configuration in the deployments: the repository's ``vigil.yaml`` with the deployment's addresses.

The repository's ``vigil.yaml`` stays the one list of signals and detectors. It sits at the repository root,
outside every package, so it is read from the source tree when the files are generated (a development step,
like the drift test); what it becomes (``compose/vigil.yaml`` and the ConfigMap in ``k8s/vigil.yaml``) is
committed and shipped as this package's data, so nothing reads the root file at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vigil.config import VigilConfig, read_config
from vigil.demo_marketplace.catalog import SYSTEM_FILE

REPO_CONFIG = Path(__file__).resolve().parents[2] / "vigil.yaml"
CONFIG_DIR = "/etc/vigil"  # where the containers find it
CONFIG_PATH = f"{CONFIG_DIR}/vigil.yaml"
SYSTEM_PATH = f"{CONFIG_DIR}/system.yaml"  # the marketplace's system file, shipped beside it
PORT = 9400  # vigil's /metrics, /healthz and API

# Compose service names; in Kubernetes, Services of these names in the namespace (see k8s_vigil.py).
PROMETHEUS_URL = "http://prometheus:9090"
ELASTICSEARCH_URL = "http://elasticsearch:9200"


def deployed_config(prometheus_url: str, elasticsearch_url: str) -> dict[str, Any]:
    """The repository's config, reading the given Prometheus and Elasticsearch, serving on all interfaces."""
    if not REPO_CONFIG.exists():
        raise FileNotFoundError(
            f"{REPO_CONFIG}: the deployment files are generated from a source checkout of the repository"
        )
    config = read_config(REPO_CONFIG)
    sources = config["sources"]
    sources["prometheus"] = {**sources["prometheus"], "url": prometheus_url}
    sources["elasticsearch"] = {**sources["elasticsearch"], "url": elasticsearch_url}
    # In a container the API must answer on the pod's address, not on its loopback.
    config["server"] = {**config.get("server", {}), "host": "0.0.0.0", "port": PORT}
    # Prometheus finds vigil by its pod annotations (Kubernetes) or a static target (Compose), not a file.
    config["register_targets"] = None
    VigilConfig.model_validate({**config, "system": str(SYSTEM_FILE)})  # fail at generation, not in the pods
    return {**config, "system": SYSTEM_PATH}


def system_file_text() -> str:
    """The system file as shipped to the containers (the demo's own, verbatim)."""
    return SYSTEM_FILE.read_text()


def run_args(shard: str) -> list[str]:
    """Arguments of the image's ``vigil`` entrypoint: detection for shard ``INDEX/COUNT``."""
    return ["run", "--config", CONFIG_PATH, "--shard", shard]
