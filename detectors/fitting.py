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

from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from vigil.detectors.base import AnyDetector
from vigil.detectors.batches import batch_key, parameters
from vigil.detectors.seasonal_baseline import SeasonalBaseline
from vigil.detectors.seasonal_baseline_batch import SeasonalBaselineBatch


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
    seasonal: dict[Hashable, list[int]] = defaultdict(list)
    for i, detector in enumerate(detectors):
        if type(detector) is SeasonalBaseline:
            seasonal[batch_key(detector)].append(i)
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
    batch = SeasonalBaselineBatch(len(detectors), **parameters(detectors[0]))
    for k, detector in enumerate(detectors):
        batch.put(k, detector)
    return batch


def unstack(batch: SeasonalBaselineBatch, detectors: Sequence[SeasonalBaseline]) -> None:
    """Give each detector its row of ``batch``'s state."""
    for k, detector in enumerate(detectors):
        batch.take(k, detector)
