"""Start and stop detached service processes, tracked by pid files.

A pid file holds the pid and the kernel's start time of that process, so a pid that
was reused by an unrelated process after a crash is never mistaken for ours.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunAs:
    """The account a service process runs under (None fields: the current one)."""

    uid: int | None = None
    gid: int | None = None


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    state, start = fields[0], fields[19]
    return None if state in ("Z", "X") else start


class PidFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, pid: int) -> None:
        start = _start_time(pid)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{pid} {start}\n")

    def running_pid(self) -> int | None:
        """The recorded pid if that very process is still alive; stale files are removed."""
        try:
            pid_text, start = self.path.read_text().split()
        except (FileNotFoundError, ValueError):
            return None
        pid = int(pid_text)
        if _start_time(pid) == start:
            return pid
        self.path.unlink(missing_ok=True)
        return None

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def spawn(
    command: list[str],
    *,
    log_path: Path,
    env: dict[str, str],
    cwd: Path,
    run_as: RunAs = RunAs(),
) -> int:
    """Start ``command`` detached, in a session of its own, its output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n--- vigil stack: starting {' '.join(command)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            user=run_as.uid,
            group=run_as.gid,
            extra_groups=[] if run_as.uid is not None else None,
        )
    return process.pid


def is_alive(pid: int) -> bool:
    return _start_time(pid) is not None


def stop(pid: int, *, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> bool:
    """Ask ``pid`` to stop with ``sig``; after ``timeout`` kill its whole session.

    Returns True when the process stopped on its own. Either way, what is left of the
    process group it led (helpers it forked) is killed afterwards.
    """
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    graceful = not is_alive(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    while is_alive(pid):  # SIGKILL cannot be ignored; wait for the kernel to finish it off
        time.sleep(0.05)
    return graceful
