"""Learning history in one call (a warm start), with the state streaming the same points would give.

``fit(detector, times, values)`` leaves ``detector`` exactly as ``learn_one`` on each point in order
would: detectors with their own vectorised ``fit`` use it (``RollingMAD`` keeps its last window,
``Excluding`` masks its windows), the rest learn point by point. ``fit_many`` takes many series on
one time grid (a Prometheus range query answers on one; NaN where a series has no point) and fits
the seasonal baselines that share parameters together, through ``SeasonalBaselineBatch``: one numpy
step per timestamp for all of them rather than one Python step per point. Their learning is
path-dependent (a point that scores above 1 is not learned), so it cannot be one array operation in
time; across series it can. Calling either again on the next stretch of history continues it.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from vigil.detectors.base import AnyDetector
from vigil.detectors.seasonal_baseline import SeasonalBaseline
from vigil.detectors.seasonal_baseline_batch import SeasonalBaselineBatch

PARAMETERS = (  # SeasonalBaseline's: series that agree on all of them share one batch
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
)


def fit(detector: AnyDetector, times: Any, values: Any) -> AnyDetector:
    """Learn ``values`` observed at ``times`` (ascending, finite) as ``learn_one`` would, in order."""
    own = getattr(detector, "fit", None)
    if own is not None:
        own(np.asarray(times, dtype=float), np.asarray(values, dtype=float))
        return detector
    points = zip(
        np.asarray(times, dtype=float).tolist(), np.asarray(values, dtype=float).tolist(), strict=True
    )
    for t, x in points:
        detector.learn_one(x, t)
    return detector


def fit_many(detectors: Sequence[AnyDetector], times: Any, values: Any) -> None:
    """Fit ``detectors[i]`` on row ``i`` of ``values`` (one column per time; NaN: no point)."""
    times = np.asarray(times, dtype=float)
    values = np.asarray(values, dtype=float).reshape(len(detectors), len(times))
    seasonal: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for i, detector in enumerate(detectors):
        if type(detector) is SeasonalBaseline:
            seasonal[tuple(getattr(detector, name) for name in PARAMETERS)].append(i)
        else:
            present = ~np.isnan(values[i])
            fit(detector, times[present], values[i, present])
    for rows in seasonal.values():
        group = [d for d in (detectors[i] for i in rows) if isinstance(d, SeasonalBaseline)]
        batch = stack(group)
        block = values[rows]
        for j, t in enumerate(times.tolist()):
            batch.learn_many(block[:, j], t)
        unstack(batch, group)


def stack(detectors: Sequence[SeasonalBaseline]) -> SeasonalBaselineBatch:
    """One batch holding the state of ``detectors`` (which share their parameters)."""
    first = detectors[0]
    batch = SeasonalBaselineBatch(len(detectors), **{name: getattr(first, name) for name in PARAMETERS})
    for k, detector in enumerate(detectors):
        if detector.count_:  # learned something: its profile lists exist
            batch.center_[k], batch.spread_[k] = detector.center_, detector.spread_
            batch.count_[k], batch.periods_[k] = detector.count_, detector.periods_
            batch.last_period_[k] = detector.last_period_
        residuals = list(detector.residuals_)
        batch.residuals_.values[k, : len(residuals)] = residuals  # arrival order, as a ring not yet wrapped
        batch.residuals_.count[k] = len(residuals)
        batch.level_[k], batch.n_[k] = detector.level_, detector.n_
    return batch


def unstack(batch: SeasonalBaselineBatch, detectors: Sequence[SeasonalBaseline]) -> None:
    """Give each detector its row of ``batch``'s state."""
    lengths = batch.residuals_.lengths()
    chronological = batch.residuals_.chronological(np.arange(batch.n))
    for k, detector in enumerate(detectors):
        if batch.n_[k] == 0:
            continue  # no point at all: the detector stays as it was
        detector.center_, detector.spread_ = batch.center_[k].tolist(), batch.spread_[k].tolist()
        detector.count_, detector.periods_ = batch.count_[k].tolist(), batch.periods_[k].tolist()
        detector.last_period_ = batch.last_period_[k].tolist()
        detector.residuals_ = deque(chronological[k, : lengths[k]].tolist(), maxlen=detector.level_window)
        detector.level_, detector.n_ = float(batch.level_[k]), int(batch.n_[k])
