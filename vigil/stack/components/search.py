"""Elasticsearch, from the integ-test-zip distribution on Maven Central (no bundled JDK)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import requests

from vigil.stack.component import Component, ProbeError

MAVEN_ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip"


def java_home() -> Path | None:
    java = shutil.which("java")
    return Path(java).resolve().parent.parent if java else None


def extract_zip(archive: Path, target: Path) -> None:
    """Unpack ``archive`` keeping the executable bits that ``zipfile`` alone would drop."""
    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.infolist():
            path = Path(bundle.extract(member, target))
            mode = (member.external_attr >> 16) & 0o777
            if mode:
                path.chmod(mode)


class Elasticsearch(Component):
    name = "elasticsearch"
    # Java to run it, Maven to fetch it from Maven Central with the machine's own settings.
    apt_packages = ("default-jre-headless", "maven")
    executables = ("java", "mvn")
    start_timeout = 240.0

    @property
    def port(self) -> int:
        return self.settings.elasticsearch_port

    @property
    def distribution(self) -> Path:
        return self.directory / "dist" / f"elasticsearch-{self.settings.elasticsearch_version}"

    def missing_artifacts(self) -> list[str]:
        if (self.distribution / "bin" / "elasticsearch").exists():
            return []
        return [f"elasticsearch {self.settings.elasticsearch_version} distribution"]

    def install_artifacts(self) -> None:
        artifact = MAVEN_ARTIFACT.format(version=self.settings.elasticsearch_version)
        with tempfile.TemporaryDirectory() as download:
            result = subprocess.run(
                [
                    "mvn",
                    "--batch-mode",
                    "--quiet",
                    "dependency:copy",
                    f"-Dartifact={artifact}",
                    f"-DoutputDirectory={download}",
                ],
                capture_output=True,
                text=True,
                cwd=download,
            )
            archives = list(Path(download).glob("*.zip"))
            if result.returncode != 0 or not archives:
                raise RuntimeError(
                    f"maven could not fetch {artifact}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
                )
            extract_zip(archives[0], self.distribution.parent)

    @property
    def config_dir(self) -> Path:
        return self.directory / "config"

    def prepare(self) -> None:
        if not (self.config_dir / "jvm.options").exists():
            shutil.copytree(self.distribution / "config", self.config_dir, dirs_exist_ok=True)
        for sub in ("data", "logs", "tmp"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        settings = {
            "cluster.name": "vigil",
            "node.name": "vigil-1",
            "path.data": str(self.directory / "data"),
            "path.logs": str(self.directory / "logs"),
            "network.host": self.settings.host,
            "http.port": str(self.port),
            "transport.port": str(self.settings.elasticsearch_transport_port),
            "discovery.type": "single-node",
            # A dev machine's disk can be nearly full; never flip indices to read-only for it.
            "cluster.routing.allocation.disk.threshold_enabled": "false",
        }
        if (self.distribution / "modules" / "x-pack-security").exists():
            settings["xpack.security.enabled"] = "false"
        (self.config_dir / "elasticsearch.yml").write_text(
            "".join(f"{key}: {value}\n" for key, value in settings.items())
        )

    def environment(self) -> dict[str, str]:
        home = java_home()
        heap = self.settings.elasticsearch_heap
        return {
            "ES_JAVA_HOME": str(home) if home else "",
            "ES_PATH_CONF": str(self.config_dir),
            "ES_TMPDIR": str(self.directory / "tmp"),
            "ES_JAVA_OPTS": f"-Xms{heap} -Xmx{heap}",
        }

    def command(self) -> list[str]:
        return [str(self.distribution / "bin" / "elasticsearch")]

    def probe(self) -> None:
        try:
            health = requests.get(f"{self.url}/_cluster/health", timeout=2).json()
        except (requests.RequestException, ValueError) as error:
            raise ProbeError(f"no answer from {self.url}: {type(error).__name__}") from error
        if health.get("status") not in ("green", "yellow"):
            raise ProbeError(f"cluster health is {health.get('status')!r}")
