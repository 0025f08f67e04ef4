"""The stack manager on a private home and private ports: up, idempotence, down, and its errors."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from vigil.stack import Stack, StackError, StackSettings
from vigil.stack.components.databases import Redis
from vigil.stack.private_prometheus import free_port
from vigil.stack.process import PidFile, is_alive, spawn, stop


@pytest.fixture
def home() -> Iterator[Path]:
    # Not under pytest's tmp_path: as root the services run as the stack's system user,
    # which must be able to enter every parent directory.
    path = Path(tempfile.mkdtemp(prefix="vigil-stack-test-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def redis_stack(home: Path) -> Iterator[Stack]:
    stack = Stack(StackSettings(home=home, redis_port=free_port()), names=["redis"], log=lambda _l: None)
    yield stack
    stack.down()


def test_up_is_idempotent_and_down_stops_only_what_it_started(redis_stack: Stack) -> None:
    first = redis_stack.up()
    assert [(s.name, s.state) for s in first] == [("redis", "healthy")]
    again = redis_stack.up()
    assert again[0].pid == first[0].pid, "a second `up` must not start another process"

    assert redis_stack.down() == ["redis"]
    assert [s.state for s in redis_stack.status()] == ["stopped"]
    assert redis_stack.down() == [], "nothing left to stop"


def test_up_refuses_a_port_held_by_someone_else(home: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        stack = Stack(StackSettings(home=home, redis_port=port), names=["redis"], log=lambda _l: None)
        assert stack.status()[0].state == "foreign"
        with pytest.raises(StackError, match=r"redis: 127\.0\.0\.1:\d+ is in use .* VIGIL_STACK_REDIS_PORT"):
            stack.up()


def test_a_component_that_dies_at_start_is_named_with_its_log(
    redis_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Redis, "command", lambda self: ["redis-server", "--port", "not-a-port"])
    with pytest.raises(StackError, match=r"redis exited during start-up; its log is .*redis\.log") as error:
        redis_stack.up()
    assert "not-a-port" in str(error.value), "the log tail explains the failure"


def test_unknown_component_names_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"unknown component.*nosuch.*known: postgresql"):
        Stack(names=["nosuch"])


def test_bad_port_in_environment_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_STACK_REDIS_PORT", "70000")
    with pytest.raises(ValueError, match="redis_port"):
        StackSettings()


def test_pidfile_ignores_a_reused_pid(tmp_path: Path) -> None:
    pidfile = PidFile(tmp_path / "x.pid")
    pid = spawn(["sleep", "30"], log_path=tmp_path / "x.log", env=dict(os.environ), cwd=tmp_path)
    pidfile.write(pid)
    assert pidfile.running_pid() == pid
    # Same pid, other start time: what a pid file left by a crash looks like after pid reuse.
    pidfile.path.write_text(f"{pid} 1\n")
    assert pidfile.running_pid() is None
    assert not pidfile.path.exists()
    assert stop(pid, sig=signal.SIGTERM, timeout=5)


def test_stop_kills_a_process_that_ignores_its_signal(tmp_path: Path) -> None:
    pid = spawn(
        ["bash", "-c", "trap '' TERM; sleep 30"],
        log_path=tmp_path / "x.log",
        env=dict(os.environ),
        cwd=tmp_path,
    )
    subprocess.run(["sleep", "0.2"], check=True)  # let bash install its trap
    assert stop(pid, sig=signal.SIGTERM, timeout=0.5) is False
    assert not is_alive(pid)
