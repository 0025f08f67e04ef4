"""The contract every stack component fulfils, and the probes they share."""

from __future__ import annotations

import os
import shutil
import signal
import socket
from pathlib import Path
from typing import ClassVar

import requests

from vigil.stack.settings import StackSettings


class ProbeError(Exception):
    """A component is not (yet) healthy; the message says why."""


class Component:
    """One service of the local stack.

    Subclasses declare what to install, how to prepare their files, the command that runs
    them in the foreground, and a probe that raises ``ProbeError`` until they serve requests.
    """

    name: ClassVar[str]
    apt_packages: ClassVar[tuple[str, ...]] = ()
    executables: ClassVar[tuple[str, ...]] = ()  # present once the packages are installed
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    start_timeout: ClassVar[float] = 60.0
    # Started as root, it runs as the stack's service user (required by PostgreSQL and Elasticsearch).
    drops_privileges: ClassVar[bool] = True

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings

    # -- layout -------------------------------------------------------------------------
    @property
    def directory(self) -> Path:
        return self.settings.home / self.name

    @property
    def log_path(self) -> Path:
        return self.settings.home / "logs" / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.settings.home / "run" / f"{self.name}.pid"

    # -- what subclasses provide ----------------------------------------------------------
    @property
    def port(self) -> int:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    def missing(self) -> list[str]:
        """Executables that installing ``apt_packages`` provides."""
        return [exe for exe in self.executables if not _exists(exe)]

    def missing_artifacts(self) -> list[str]:
        """What ``install_artifacts`` provides and is not there yet."""
        return []

    def install_artifacts(self) -> None:
        """Fetch what Debian's packages do not provide (only Elasticsearch needs this)."""

    def prepare(self) -> None:
        """Write config files and initialise data; must be idempotent."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return {}

    def probe(self) -> None:
        raise NotImplementedError

    def after_start(self) -> None:
        """One-off setup that needs the running service (databases, users); idempotent."""


def _exists(executable: str) -> bool:
    return Path(executable).exists() if os.sep in executable else shutil.which(executable) is not None


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_probe(url: str, *, expect: str | None = None, auth: tuple[str, str] | None = None) -> None:
    """Healthy when ``url`` answers 200 (and its body contains ``expect``, if given)."""
    try:
        response = requests.get(url, timeout=2, auth=auth)
    except requests.RequestException as error:
        raise ProbeError(f"no answer from {url}: {type(error).__name__}") from error
    if response.status_code != 200:
        raise ProbeError(f"{url} answered HTTP {response.status_code}: {response.text[:200]}")
    if expect is not None and expect not in response.text:
        raise ProbeError(f"{url} answered without {expect!r}: {response.text[:200]}")
