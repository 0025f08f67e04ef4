"""Bring the local stack up, down, and report its state.

``up`` is idempotent: components already running under our pid files are left alone.
``down`` stops only processes recorded in those pid files, never anything else.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vigil.stack import components as catalogue
from vigil.stack.component import Component, ProbeError, port_open
from vigil.stack.install import install
from vigil.stack.process import PidFile, is_alive, spawn, stop
from vigil.stack.settings import StackSettings
from vigil.stack.users import ensure_service_user, hand_over, run_as_for

State = Literal["healthy", "unhealthy", "stopped", "foreign"]


class StackError(RuntimeError):
    """A component could not be started; the message names it and its log file."""


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    state: State
    url: str
    pid: int | None
    detail: str
    log: Path


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


class Stack:
    def __init__(
        self,
        settings: StackSettings | None = None,
        names: list[str] | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.settings = settings or StackSettings()
        self.components = catalogue.build(self.settings, names)
        self.log = log

    def _pidfile(self, component: Component) -> PidFile:
        return PidFile(component.pid_path)

    # -- status -------------------------------------------------------------------------
    def status_of(self, component: Component) -> ComponentStatus:
        pid = self._pidfile(component).running_pid()
        state: State
        if pid is None:
            foreign = port_open(self.settings.host, component.port)
            state = "foreign" if foreign else "stopped"
            detail = f"port {component.port} is served by a process vigil did not start" if foreign else ""
        else:
            try:
                component.probe()
                state, detail = "healthy", ""
            except ProbeError as error:
                state, detail = "unhealthy", str(error)
        return ComponentStatus(component.name, state, component.url, pid, detail, component.log_path)

    def status(self) -> list[ComponentStatus]:
        return [self.status_of(c) for c in self.components]

    # -- up -----------------------------------------------------------------------------
    def up(self) -> list[ComponentStatus]:
        install(self.components, self.log)
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self.settings.home.chmod(0o755)
        ensure_service_user(self.settings.service_user, self.settings.home)

        to_start = [c for c in self.components if self._pidfile(c).running_pid() is None]
        busy = [c for c in to_start if port_open(self.settings.host, c.port)]
        if busy:
            raise StackError(
                "\n".join(
                    f"{c.name}: {self.settings.host}:{c.port} is in use by a process vigil did not start; "
                    f"stop it or choose another port with VIGIL_STACK_{c.name.upper().replace('-', '_')}_PORT"
                    for c in busy
                )
            )
        started = {c.name: (self._start(c), time.monotonic()) for c in to_start}
        # Components left starting by an interrupted earlier `up` are waited for too.
        for component in self.components:
            pid = self._pidfile(component).running_pid()
            if component.name not in started and pid is not None:
                started[component.name] = (pid, time.monotonic())
        self._wait_healthy(started)
        return self.status()

    def _start(self, component: Component) -> int:
        run_as = run_as_for(component)
        component.directory.mkdir(parents=True, exist_ok=True)
        hand_over(component.directory, run_as)
        component.prepare()
        hand_over(component.directory, run_as)
        component.log_path.parent.mkdir(parents=True, exist_ok=True)
        if run_as.uid is not None and component.log_path.exists():
            os.chown(component.log_path, run_as.uid, run_as.gid or -1)
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(component.directory),
            **component.environment(),
        }
        pid = spawn(
            component.command(), log_path=component.log_path, env=env, cwd=component.directory, run_as=run_as
        )
        self._pidfile(component).write(pid)
        self.log(f"{component.name}: started (pid {pid}), log {component.log_path}")
        return pid

    def _wait_healthy(self, started: dict[str, tuple[int, float]]) -> None:
        pending = [c for c in self.components if c.name in started]
        while pending:
            for component in list(pending):
                pid, since = started[component.name]
                if not is_alive(pid):
                    raise StackError(
                        f"{component.name} exited during start-up; its log is {component.log_path}:\n"
                        f"{log_tail(component.log_path)}"
                    )
                try:
                    component.probe()
                except ProbeError as error:
                    if time.monotonic() - since > component.start_timeout:
                        raise StackError(
                            f"{component.name} not healthy after {component.start_timeout:.0f}s "
                            f"({error}); its log is {component.log_path}:\n{log_tail(component.log_path)}"
                        ) from error
                    continue
                component.after_start()
                pending.remove(component)
                self.log(f"{component.name}: healthy at {component.url}")
            if pending:
                time.sleep(0.5)

    # -- down ---------------------------------------------------------------------------
    def down(self) -> list[str]:
        """Stop what our pid files record, last started first; returns the names stopped."""
        stopped = []
        for component in reversed(self.components):
            pidfile = self._pidfile(component)
            pid = pidfile.running_pid()
            if pid is None:
                continue
            graceful = stop(pid, sig=component.stop_signal, timeout=60)
            pidfile.remove()
            stopped.append(component.name)
            self.log(f"{component.name}: stopped (pid {pid}{'' if graceful else ', killed'})")
        return stopped
