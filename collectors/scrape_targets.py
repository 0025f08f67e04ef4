"""Where the scrape collector reads ``/metrics`` from: targets, Prometheus file_sd files, the HTTP fetch."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import yaml

# Ask for the classic text format: a server that negotiates would otherwise answer OpenMetrics or
# protobuf, which the text parser does not read.
ACCEPT = "text/plain;version=0.0.4;q=1.0, */*;q=0.1"


@dataclass(frozen=True)
class ScrapeTarget:
    """One ``/metrics`` endpoint and the labels every series scraped from it gets (``job``, ``service``)."""

    url: str
    # hash=False: a dict is unhashable, and the URL alone identifies a target.
    labels: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def instance(self) -> str:
        """``host:port``, the label Prometheus names ``instance``."""
        return urlsplit(self.url).netloc


def targets_from_file_sd(path: str | Path) -> list[ScrapeTarget]:
    """The targets of a Prometheus file_sd file (JSON, or YAML by suffix): ``http://<target>/metrics``.

    Like Prometheus, the group labels ``__scheme__`` and ``__metrics_path__`` change the URL and other
    ``__``-prefixed labels are dropped.
    """
    path = Path(path)
    try:
        text = path.read_text()
        groups: Any = yaml.safe_load(text) if path.suffix in (".yml", ".yaml") else json.loads(text)
    # ValueError: not UTF-8, not JSON, a YAML integer of over 4300 digits; RecursionError: nested too deeply
    except (ValueError, yaml.YAMLError, RecursionError) as error:
        raise ValueError(f"{path}: not a file_sd file: {error}") from error
    if not isinstance(groups, list):
        raise ValueError(f"{path}: a file_sd file holds a list of target groups, not {type(groups).__name__}")
    targets: list[ScrapeTarget] = []
    for number, group in enumerate(groups):
        addresses = group.get("targets", []) if isinstance(group, dict) else None
        labels = (group.get("labels") or {}) if isinstance(group, dict) else None
        if (
            not isinstance(addresses, list)
            or not all(isinstance(address, str) for address in addresses)
            or not isinstance(labels, dict)
        ):
            raise ValueError(f"{path}: group {number} is not {{'targets': [...], 'labels': {{...}}}}")
        labels = {str(k): str(v) for k, v in labels.items()}
        scheme = labels.pop("__scheme__", "http")
        metrics_path = labels.pop("__metrics_path__", "/metrics")
        labels = {k: v for k, v in labels.items() if not k.startswith("__")}
        targets.extend(
            ScrapeTarget(f"{scheme}://{address}{metrics_path}", dict(labels)) for address in addresses
        )
    return targets


def http_fetch(url: str, timeout: float) -> str:
    """The exposition text at ``url``; raises for a refused connection, a timeout or a non-2xx answer."""
    response = requests.get(url, timeout=timeout, headers={"Accept": ACCEPT})
    response.raise_for_status()
    if response.encoding is None or "charset" not in response.headers.get("Content-Type", ""):
        response.encoding = "utf-8"  # the text format is UTF-8; requests would guess ISO-8859-1
    return response.text
