"""Generated Prometheus and Alertmanager configuration."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from vigil.stack import StackSettings
from vigil.stack.components.monitoring import Alertmanager, Prometheus
from vigil.stack.prometheus_config import prometheus_config, write_targets


def test_prometheus_scrapes_every_stack_exporter_and_discovers_the_rest(tmp_path: Path) -> None:
    config = prometheus_config(StackSettings(), targets_dir=tmp_path / "t", rules_dir=tmp_path / "r")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {
        "prometheus",
        "alertmanager",
        "postgres",
        "redis",
        "elasticsearch",
        "rabbitmq",
        "rabbitmq-detailed",
        "file_sd",
        "vigil",
    }
    assert jobs["rabbitmq"]["static_configs"][0]["targets"] == ["127.0.0.1:15692"]
    assert jobs["file_sd"]["file_sd_configs"][0]["files"] == [str(tmp_path / "t" / "*.json")]


def test_write_targets_is_valid_file_sd_json(tmp_path: Path) -> None:
    groups = [{"targets": ["127.0.0.1:8101"], "labels": {"job": "marketplace", "service": "catalog"}}]
    path = write_targets(tmp_path, "marketplace", groups)
    assert json.loads(path.read_text()) == groups
    assert not path.with_suffix(".tmp").exists()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool comes with the prometheus package")
def test_generated_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    prometheus = Prometheus(StackSettings(home=tmp_path))
    prometheus.prepare()
    result = subprocess.run(
        ["promtool", "check", "config", str(prometheus.directory / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(
    shutil.which("amtool") is None and shutil.which("prometheus-alertmanager") is None,
    reason="amtool comes with the alertmanager package",
)
def test_generated_alertmanager_config_passes_amtool(tmp_path: Path) -> None:
    alertmanager = Alertmanager(StackSettings(home=tmp_path))
    alertmanager.prepare()
    path = alertmanager.directory / "alertmanager.yml"
    assert yaml.safe_load(path.read_text())["route"]["receiver"] == "default"
    amtool = shutil.which("amtool") or "amtool"
    result = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
