"""Detectors by name, for configs, benchmarks and backtests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vigil.detectors.backlog import QueueBacklog
from vigil.detectors.base import AnyDetector
from vigil.detectors.burn_rate import BurnRate
from vigil.detectors.ensemble import Ensemble
from vigil.detectors.isolation_forest import ServiceIsolationForest
from vigil.detectors.log_novelty import LogNovelty
from vigil.detectors.rolling_mad import RollingMAD
from vigil.detectors.seasonal_baseline import SeasonalBaseline

DETECTORS: dict[str, Callable[..., AnyDetector]] = {
    "rolling_mad": RollingMAD,
    "seasonal_baseline": SeasonalBaseline,
    "backlog": QueueBacklog,
    "burn_rate": BurnRate,
    "ensemble": Ensemble,
    "isolation_forest": ServiceIsolationForest,
    "log_novelty": LogNovelty,
}


def _factory(name: str) -> Callable[..., AnyDetector]:
    try:
        return DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; known: {', '.join(sorted(DETECTORS))}") from None


def make(name: str, **params: Any) -> AnyDetector:
    return _factory(name)(**params)


def input_kind(name: str) -> str:
    """What the detector's ``x`` is: scalar, vector, counts or events (see ``vigil.detectors.base``)."""
    return str(getattr(_factory(name), "input_kind", "scalar"))
