"""Run the whole marketplace on one machine: N replicas per service behind HAProxy.

State lives under ``<stack home>/marketplace``: pid files, ECS logs, the faults file, the
ground-truth log and ``state.json`` (the replica counts ``up`` was given), so later commands —
fault injection restarting a crashed consumer, ``status``, ``down`` — act on what really runs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from vigil.demo_marketplace import schema
from vigil.demo_marketplace.catalog import SERVICES, service
from vigil.demo_marketplace.haproxy import STATS_PORT, haproxy_config
from vigil.stack.install import apt_install
from vigil.stack.manager import StackError, log_tail
from vigil.stack.process import PidFile, is_alive, spawn, stop
from vigil.stack.prometheus_config import write_targets
from vigil.stack.settings import StackSettings

DATABASE = "marketplace"


@dataclass(frozen=True)
class Replica:
    service: str
    index: int
    port: int

    @property
    def name(self) -> str:
        return f"{self.service}-{self.index}"


def parse_replicas(text: str) -> dict[str, int]:
    """``"catalog=3,gateway=2"`` -> counts, validated against the catalog."""
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, count = part.partition("=")
        service(name)  # raises with the known names
        if not count.isdigit() or not 1 <= int(count) <= 50:
            raise ValueError(f"replicas for {name!r} must be a number from 1 to 50, got {count!r}")
        counts[name] = int(count)
    return counts


class Marketplace:
    def __init__(self, stack: StackSettings | None = None, log: Callable[[str], None] = print) -> None:
        self.stack = stack or StackSettings()
        self.home = self.stack.home / "marketplace"
        self.log = log

    # -- layout ---------------------------------------------------------------------------
    @property
    def dsn(self) -> str:
        s = self.stack
        return f"postgresql://{s.postgres_user}:{s.postgres_password}@{s.host}:{s.postgres_port}/{DATABASE}"

    @property
    def faults_file(self) -> Path:
        return self.home / "faults.json"

    @property
    def ground_truth_file(self) -> Path:
        return self.home / "ground_truth.jsonl"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    def url(self, name: str) -> str:
        return f"http://{self.stack.host}:{service(name).port}"

    def _state(self) -> dict[str, object]:
        path = self.home / "state.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def replicas(self) -> dict[str, int]:
        counts = self._state().get("replicas", {})
        assert isinstance(counts, dict)
        return {s.name: int(counts.get(s.name, s.default_replicas)) for s in SERVICES}

    def replica_list(self, only: str | None = None) -> list[Replica]:
        counts = self.replicas()
        return [
            Replica(s.name, i, s.replica_port(i))
            for s in SERVICES
            if only in (None, s.name)
            for i in range(counts[s.name])
        ]

    def _pidfile(self, name: str) -> PidFile:
        return PidFile(self.home / "run" / f"{name}.pid")

    # -- processes ------------------------------------------------------------------------
    def _environment(self, replica: Replica, cache_enabled: bool) -> dict[str, str]:
        s = self.stack
        return {
            **os.environ,
            "MARKETPLACE_SERVICE": replica.service,
            "MARKETPLACE_REPLICA": str(replica.index),
            "MARKETPLACE_POSTGRES_DSN": self.dsn,
            "MARKETPLACE_REDIS_URL": s.redis_url,
            "MARKETPLACE_AMQP_URL": s.amqp_url,
            "MARKETPLACE_SERVICE_URLS": json.dumps({spec.name: self.url(spec.name) for spec in SERVICES}),
            "MARKETPLACE_LOG_DIR": str(self.log_dir),
            "MARKETPLACE_FAULTS_FILE": str(self.faults_file),
            "MARKETPLACE_CACHE_ENABLED": "true" if cache_enabled else "false",
        }

    def start_replica(self, replica: Replica) -> int:
        pidfile = self._pidfile(replica.name)
        if (pid := pidfile.running_pid()) is not None:
            return pid
        command = [
            sys.executable,
            "-m",
            "vigil.demo_marketplace.serve",
            replica.service,
            "--port",
            str(replica.port),
            "--replica",
            str(replica.index),
            "--host",
            self.stack.host,
        ]
        cache_enabled = bool(self._state().get("cache_enabled", True))
        pid = spawn(
            command,
            log_path=self.home / "stdout" / f"{replica.name}.log",
            env=self._environment(replica, cache_enabled),
            cwd=self.home,
        )
        pidfile.write(pid)
        return pid

    def kill_replicas(self, name: str) -> list[int]:
        """SIGKILL every replica of ``name`` (the crash faults); returns the pids killed."""
        return [pid for replica in self.replica_list(name) if (pid := self.kill_replica(replica)) is not None]

    def kill_replica(self, replica: Replica) -> int | None:
        """SIGKILL one replica; returns its pid, or None when it was not running."""
        pidfile = self._pidfile(replica.name)
        if (pid := pidfile.running_pid()) is None:
            return None
        stop(pid, sig=signal.SIGKILL, timeout=5)
        pidfile.remove()
        return pid

    def running(self, replica: Replica) -> bool:
        return self._pidfile(replica.name).running_pid() is not None

    def _start_helper(self, name: str, command: list[str]) -> None:
        pidfile = self._pidfile(name)
        if pidfile.running_pid() is None:
            pidfile.write(
                spawn(
                    command,
                    log_path=self.home / "stdout" / f"{name}.log",
                    env=dict(os.environ),
                    cwd=self.home,
                )
            )

    # -- up / down ------------------------------------------------------------------------
    def up(self, replicas: dict[str, int] | None = None, *, cache_enabled: bool = True) -> None:
        for path in (self.home, self.log_dir, self.home / "run"):
            path.mkdir(parents=True, exist_ok=True)
        state = self._state()
        previous = self.replicas() if state else {}
        counts = {**(previous or {s.name: s.default_replicas for s in SERVICES}), **(replicas or {})}
        if state and state.get("cache_enabled", True) != cache_enabled:
            for replica in self.replica_list():  # the cache switch is start-up configuration
                self._stop(replica.name)
        (self.home / "state.json").write_text(
            json.dumps({"replicas": counts, "cache_enabled": cache_enabled})
        )

        s = self.stack
        schema.ensure_database(s.postgres_dsn, DATABASE)
        schema.migrate(self.dsn)
        if not Path("/usr/sbin/haproxy").exists():
            apt_install(["haproxy"], self.log)

        for name, count in previous.items():  # scaled down: stop the surplus replicas
            for index in range(counts[name], count):
                self._stop(f"{name}-{index}")
        for replica in self.replica_list():
            self.start_replica(replica)
        self._restart_haproxy()
        self._start_helper(
            "logship",
            [
                sys.executable,
                "-m",
                "vigil.demo_marketplace.logship",
                "--log-dir",
                str(self.log_dir),
                "--es-url",
                s.elasticsearch_url,
                "--registry-file",
                str(self.home / "logship-registry.json"),
            ],
        )
        self._register_targets()
        self.wait_healthy()

    def _restart_haproxy(self) -> None:
        config = self.home / "haproxy.cfg"
        config.write_text(haproxy_config(self.replicas(), self.stack.host))
        self._stop("haproxy")
        self._start_helper("haproxy", ["/usr/sbin/haproxy", "-db", "-f", str(config)])

    def _register_targets(self) -> None:
        groups = [
            {
                "targets": [f"{self.stack.host}:{r.port}" for r in self.replica_list(spec.name)],
                "labels": {"job": "marketplace", "service": spec.name},
            }
            for spec in SERVICES
        ]
        groups.append({"targets": [f"{self.stack.host}:{STATS_PORT}"], "labels": {"job": "haproxy"}})
        write_targets(self.stack.home / "prometheus" / "targets", "marketplace", groups)

    def wait_healthy(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        for replica in self.replica_list():
            while True:
                pid = self._pidfile(replica.name).running_pid()
                log_path = self.home / "stdout" / f"{replica.name}.log"
                if pid is None or not is_alive(pid):
                    raise StackError(
                        f"{replica.name} exited during start-up; its output is {log_path}:\n"
                        f"{log_tail(log_path)}"
                    )
                try:
                    if requests.get(f"http://{self.stack.host}:{replica.port}/healthz", timeout=1).ok:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise StackError(
                        f"{replica.name} not healthy after {timeout:.0f}s; see {log_path}:\n"
                        f"{log_tail(log_path)}"
                    )
                time.sleep(0.3)
        for spec in SERVICES:  # and reachable through HAProxy
            while not _answers(f"{self.url(spec.name)}/healthz"):
                if time.monotonic() > deadline:
                    raise StackError(f"HAProxy does not route to {spec.name}; see {self.home / 'stdout'}")
                time.sleep(0.3)

    def _stop(self, name: str) -> bool:
        pidfile = self._pidfile(name)
        if (pid := pidfile.running_pid()) is None:
            return False
        stop(pid, timeout=15)
        pidfile.remove()
        return True

    def down(self) -> list[str]:
        names = ["haproxy", "logship", *(r.name for r in self.replica_list())]
        stopped = [name for name in names if self._stop(name)]
        targets = self.stack.home / "prometheus" / "targets" / "marketplace.json"
        targets.unlink(missing_ok=True)
        return stopped

    def status(self) -> list[tuple[str, int | None, str, bool]]:
        """(name, pid, url, healthy) for every replica and helper."""
        rows = []
        for replica in self.replica_list():
            url = f"http://{self.stack.host}:{replica.port}"
            rows.append(
                (replica.name, self._pidfile(replica.name).running_pid(), url, _answers(f"{url}/healthz"))
            )
        stats = f"http://{self.stack.host}:{STATS_PORT}/metrics"
        rows.append(("haproxy", self._pidfile("haproxy").running_pid(), stats, _answers(stats)))
        shipper = self._pidfile("logship").running_pid()
        rows.append(("logship", shipper, self.stack.elasticsearch_url, shipper is not None))
        return rows


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False
