"""Install what the stack's components need: Debian packages and the Elasticsearch distribution."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

from vigil.stack.component import Component

POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


class InstallError(RuntimeError):
    pass


def _privileged(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return command
    if shutil.which("sudo") is None:
        raise InstallError(f"need root to run {' '.join(command)}; install sudo or run as root")
    return ["sudo", "--non-interactive", *command]


def apt_install(packages: Iterable[str], log: Callable[[str], None] = print) -> None:
    """``apt-get install`` the packages without letting Debian start its own copies of the services.

    Debian's maintainer scripts would start system-wide PostgreSQL, Redis and RabbitMQ on the
    very ports the stack uses; a temporary policy-rc.d (the documented switch for this) stops that.
    """
    wanted = sorted(set(packages))
    if not wanted:
        return
    log(f"installing Debian packages: {' '.join(wanted)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    placed_policy = False
    if not POLICY_RC_D.exists() and os.geteuid() == 0:
        POLICY_RC_D.write_text(
            "#!/bin/sh\n# written by vigil stack install; removed when it ends\nexit 101\n"
        )
        POLICY_RC_D.chmod(0o755)
        placed_policy = True
    try:
        for step in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *wanted],
        ):
            result = subprocess.run(_privileged(step), env=env, capture_output=True, text=True)
            if result.returncode != 0:
                raise InstallError(
                    f"{' '.join(step)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
                )
    finally:
        if placed_policy:
            POLICY_RC_D.unlink(missing_ok=True)


def install(components: list[Component], log: Callable[[str], None] = print) -> None:
    """Make every component startable; does nothing when all is in place."""
    apt_install([pkg for c in components if c.missing() for pkg in c.apt_packages], log)
    for component in components:
        if component.missing_artifacts():
            log(f"{component.name}: fetching {', '.join(component.missing_artifacts())}")
            component.install_artifacts()
        still = component.missing() + component.missing_artifacts()
        if still:
            raise InstallError(f"{component.name}: still missing after install: {', '.join(still)}")
