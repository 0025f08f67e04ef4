"""PostgreSQL (primary store) and Redis (cache)."""

from __future__ import annotations

import signal
import subprocess
import tempfile
from pathlib import Path

import psycopg
import redis

from vigil.stack.component import Component, ProbeError
from vigil.stack.users import run_as_for


def _postgres_bindir() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    return candidates[-1].parent if candidates else None


class PostgreSQL(Component):
    name = "postgresql"
    apt_packages = ("postgresql",)
    stop_signal = signal.SIGINT  # "fast" shutdown: do not wait for clients to disconnect

    @property
    def port(self) -> int:
        return self.settings.postgres_port

    @property
    def url(self) -> str:
        s = self.settings
        return f"postgresql://{s.postgres_user}@{s.host}:{s.postgres_port}/{s.postgres_db}"

    def missing(self) -> list[str]:
        return [] if _postgres_bindir() else ["postgres server binaries"]

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    def prepare(self) -> None:
        (self.directory / "run").mkdir(exist_ok=True)  # the unix socket and its lock file
        if (self.data_dir / "PG_VERSION").exists():
            return
        bindir = _postgres_bindir()
        assert bindir is not None, "install step did not provide PostgreSQL"
        run_as = run_as_for(self)
        with tempfile.NamedTemporaryFile("w", dir=self.directory, suffix=".pw") as pwfile:
            pwfile.write(self.settings.postgres_password)
            pwfile.flush()
            Path(pwfile.name).chmod(0o644)
            subprocess.run(
                [
                    str(bindir / "initdb"),
                    "--pgdata",
                    str(self.data_dir),
                    "--username",
                    self.settings.postgres_user,
                    f"--pwfile={pwfile.name}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                user=run_as.uid,
                group=run_as.gid,
            )

    def command(self) -> list[str]:
        bindir = _postgres_bindir()
        assert bindir is not None
        return [
            str(bindir / "postgres"),
            "-D",
            str(self.data_dir),
            "-c",
            f"listen_addresses={self.settings.host}",
            "-c",
            f"port={self.port}",
            "-c",
            f"unix_socket_directories={self.directory / 'run'}",
            "-c",
            "max_connections=300",
            "-c",
            "logging_collector=off",
        ]

    def _connect(self, dbname: str) -> psycopg.Connection:
        s = self.settings
        return psycopg.connect(
            host=s.host,
            port=s.postgres_port,
            user=s.postgres_user,
            password=s.postgres_password,
            dbname=dbname,
            connect_timeout=2,
            autocommit=True,
        )

    def probe(self) -> None:
        try:
            with self._connect("postgres") as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as error:
            raise ProbeError(f"cannot connect: {str(error).strip()}") from error

    def after_start(self) -> None:
        with self._connect("postgres") as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.settings.postgres_db,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.settings.postgres_db}"')


class Redis(Component):
    name = "redis"
    apt_packages = ("redis-server",)
    executables = ("redis-server",)

    @property
    def port(self) -> int:
        return self.settings.redis_port

    @property
    def url(self) -> str:
        return self.settings.redis_url

    def prepare(self) -> None:
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        (self.directory / "redis.conf").write_text(
            "\n".join(
                [
                    f"bind {self.settings.host}",
                    f"port {self.port}",
                    f"dir {self.directory / 'data'}",
                    "daemonize no",
                    "protected-mode yes",
                    "save 300 100",
                    "appendonly no",
                    "maxmemory 512mb",
                    "maxmemory-policy allkeys-lru",
                    "",
                ]
            )
        )

    def command(self) -> list[str]:
        return ["redis-server", str(self.directory / "redis.conf")]

    def probe(self) -> None:
        try:
            redis.Redis(host=self.settings.host, port=self.port, socket_timeout=2).ping()
        except redis.RedisError as error:
            raise ProbeError(f"PING failed: {error}") from error
