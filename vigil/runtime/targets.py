"""Prometheus file-based service discovery: how vigil (and anything else) asks Prometheus to scrape it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_targets(targets_dir: Path, name: str, groups: list[dict[str, Any]]) -> Path:
    """Register target ``groups`` (``{"targets": [...], "labels": {...}}``) for file-based discovery.

    Written atomically, as Prometheus may read the file at any moment.
    """
    targets_dir.mkdir(parents=True, exist_ok=True)
    path = targets_dir / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups, indent=2))
    tmp.replace(path)
    return path
