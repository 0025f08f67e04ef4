"""The unprivileged system account the stack's services run under when started by root."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from vigil.stack.process import RunAs

if TYPE_CHECKING:
    from vigil.stack.component import Component


def ensure_service_user(name: str, home: Path) -> None:
    """Create the system user ``name`` unless it exists (only meaningful as root)."""
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--home-dir",
                str(home),
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            check=True,
            capture_output=True,
        )


def run_as_for(component: Component) -> RunAs:
    if os.geteuid() != 0 or not component.drops_privileges:
        return RunAs()
    entry = pwd.getpwnam(component.settings.service_user)
    return RunAs(uid=entry.pw_uid, gid=entry.pw_gid)


def hand_over(path: Path, run_as: RunAs) -> None:
    """Make ``path`` and everything below it belong to the account the service runs as."""
    if run_as.uid is None:
        return
    gid = run_as.gid if run_as.gid is not None else -1
    os.chown(path, run_as.uid, gid)
    for root, dirs, files in os.walk(path):
        for entry in dirs + files:
            os.chown(os.path.join(root, entry), run_as.uid, gid, follow_symlinks=False)
