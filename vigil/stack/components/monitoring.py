"""Prometheus, Alertmanager and the exporters for PostgreSQL, Redis and Elasticsearch."""

from __future__ import annotations

import secrets
from pathlib import Path

import yaml

from vigil.alerts.alertmanager_config import render
from vigil.alerts.prometheus_rules import rule_files, write_rules
from vigil.demo_marketplace.catalog import SYSTEM
from vigil.stack.component import Component, http_probe
from vigil.stack.prometheus_config import alertmanager_config, prometheus_config


class Prometheus(Component):
    name = "prometheus"
    apt_packages = ("prometheus",)
    executables = ("prometheus",)

    @property
    def port(self) -> int:
        return self.settings.prometheus_port

    @property
    def targets_dir(self) -> Path:
        return self.directory / "targets"

    def prepare(self) -> None:
        rules = self.directory / "rules"
        for path in (self.directory / "data", self.targets_dir, self.targets_dir / "vigil", rules):
            path.mkdir(parents=True, exist_ok=True)
        write_rules(rules, rule_files(SYSTEM), prune=True)  # the demo's SLO burn and queue backlog alerts
        config = prometheus_config(self.settings, targets_dir=self.targets_dir, rules_dir=rules)
        (self.directory / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))

    def command(self) -> list[str]:
        return [
            "prometheus",
            f"--config.file={self.directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address={self.settings.host}:{self.port}",
            "--web.enable-lifecycle",  # lets `vigil` reload the config after writing rules
            # TSDB snapshots: `bench/detection.py record` keeps the data a fault matrix was judged on.
            "--web.enable-admin-api",
            "--storage.tsdb.retention.time=15d",
        ]

    def probe(self) -> None:
        http_probe(f"{self.url}/-/ready")


class Alertmanager(Component):
    name = "alertmanager"
    apt_packages = ("prometheus-alertmanager",)
    executables = ("prometheus-alertmanager",)

    @property
    def port(self) -> int:
        return self.settings.alertmanager_port

    @property
    def webhook_secret_file(self) -> Path:
        """The Bearer token Alertmanager sends to vigil's webhook; `vigil run` reads the same file."""
        return self.settings.webhook_secret_file

    def prepare(self) -> None:
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        if not self.webhook_secret_file.exists():  # kept across restarts: a running vigil still knows it
            self.webhook_secret_file.touch(mode=0o600)
            self.webhook_secret_file.write_text(secrets.token_urlsafe(32) + "\n")
        config = render(alertmanager_config(self.settings))
        (self.directory / "alertmanager.yml").write_text(config)

    def command(self) -> list[str]:
        return [
            "prometheus-alertmanager",
            f"--config.file={self.directory / 'alertmanager.yml'}",
            f"--storage.path={self.directory / 'data'}",
            f"--web.listen-address={self.settings.host}:{self.port}",
            "--cluster.listen-address=",  # a single instance: no gossip port
        ]

    def probe(self) -> None:
        http_probe(f"{self.url}/-/ready")


class PostgresExporter(Component):
    name = "postgres-exporter"
    apt_packages = ("prometheus-postgres-exporter",)
    executables = ("prometheus-postgres-exporter",)

    @property
    def port(self) -> int:
        return self.settings.postgres_exporter_port

    def environment(self) -> dict[str, str]:
        return {"DATA_SOURCE_NAME": f"{self.settings.postgres_dsn}?sslmode=disable"}

    def command(self) -> list[str]:
        return ["prometheus-postgres-exporter", f"--web.listen-address={self.settings.host}:{self.port}"]

    def probe(self) -> None:
        http_probe(f"{self.url}/metrics", expect="pg_up 1")


class ElasticsearchExporter(Component):
    name = "elasticsearch-exporter"
    apt_packages = ("prometheus-elasticsearch-exporter",)
    executables = ("prometheus-elasticsearch-exporter",)

    @property
    def port(self) -> int:
        return self.settings.elasticsearch_exporter_port

    def command(self) -> list[str]:
        s = self.settings
        return [
            "prometheus-elasticsearch-exporter",
            f"--es.uri={s.elasticsearch_url}",
            f"--web.listen-address={s.host}:{self.port}",
        ]

    def probe(self) -> None:
        http_probe(f"{self.url}/metrics", expect="elasticsearch_cluster_health_up 1")


class RedisExporter(Component):
    name = "redis-exporter"
    apt_packages = ("prometheus-redis-exporter",)
    executables = ("prometheus-redis-exporter",)

    @property
    def port(self) -> int:
        return self.settings.redis_exporter_port

    def command(self) -> list[str]:
        s = self.settings
        return [
            "prometheus-redis-exporter",
            f"-redis.addr=redis://{s.host}:{s.redis_port}",
            f"-web.listen-address={s.host}:{self.port}",
        ]

    def probe(self) -> None:
        http_probe(f"{self.url}/metrics", expect="redis_up 1")
