"""Which scalar detectors have a batch twin, and how series that share one are grouped.

A batch twin (``RollingMADBatch`` for ``RollingMAD``, ``SeasonalBaselineBatch`` for
``SeasonalBaseline``) holds many series' learned state in arrays, one row each, and scores and learns
any subset of its rows in one numpy step, bit for bit as the scalar detector would. Series can share
a batch only when their detectors agree on every parameter: ``batch_key`` says which batch a
detector's series belongs in (None: no twin, or a wrapper such as ``Calibrated``, which stays scalar).
``put`` loads a scalar detector's state into a row and ``take`` gives it back, so checkpoints and warm
starts keep working on scalar detectors.

The queue backlog detector has a batch twin too, but it is not used here: it forecasts
(``time_to_threshold``), which the alert path asks of each series, and queues are few (one series each).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Protocol

import numpy as np

from vigil.detectors.base import AnyDetector
from vigil.detectors.rolling_mad import RollingMAD, RollingMADBatch
from vigil.detectors.seasonal_baseline import SeasonalBaseline
from vigil.detectors.seasonal_baseline_batch import SeasonalBaselineBatch


class Batch(Protocol):
    """The row-wise contract of a batch twin (``rows``: distinct row indices; ``x`` aligned with them)."""

    n: int

    def score_rows(self, rows: np.ndarray, x: np.ndarray, t: float) -> np.ndarray: ...

    def learn_rows(self, rows: np.ndarray, x: np.ndarray, t: float) -> None: ...

    def expected_rows(self, rows: np.ndarray, t: float) -> np.ndarray: ...

    def put(self, k: int, detector: Any) -> None: ...

    def take(self, k: int, detector: Any) -> Any: ...


PARAMETERS: dict[type, tuple[str, ...]] = {  # the parameters each batchable detector's twin takes
    RollingMAD: ("window", "warmup", "threshold", "min_deviation"),
    SeasonalBaseline: (
        "period",
        "bucket",
        "weekly",
        "offset",
        "alpha",
        "threshold",
        "direction",
        "min_abs",
        "min_rel",
        "level_window",
        "min_bucket_points",
        "min_bucket_periods",
        "warmup",
        "clip",
    ),
}
TWINS: dict[type, type] = {RollingMAD: RollingMADBatch, SeasonalBaseline: SeasonalBaselineBatch}


def parameters(detector: AnyDetector) -> dict[str, Any]:
    return {name: getattr(detector, name) for name in PARAMETERS[type(detector)]}


def batch_key(detector: AnyDetector) -> Hashable | None:
    """Equal for detectors whose series can share one batch; None for a detector without a twin."""
    kind = type(detector)  # exactly: a subclass may learn differently from its parent's twin
    if kind not in TWINS:
        return None
    return (kind.__name__, *(getattr(detector, name) for name in PARAMETERS[kind]))


def new_batch(like: AnyDetector, n: int) -> Batch:
    """An empty batch of ``n`` rows for detectors with ``like``'s parameters."""
    batch: Batch = TWINS[type(like)](n, **parameters(like))
    return batch
