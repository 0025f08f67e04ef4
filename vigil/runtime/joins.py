"""Composite signals: several collected signals joined into the one input a detector needs.

Most detectors watch one series. A few need more than one number per step: the error-budget burn
rate needs bad *and* total events, the per-service isolation forest needs the service's RED+USE
signals side by side, the log novelty detector needs every template's count at once. A composite
names its input signals and the labels to join them on (``by``); each collection round it groups
the inputs' points by those labels and timestamp and builds the detector's input:

- ``events``: two inputs, (bad, total). A missing bad series means no bad events (PromQL drops the
  5xx series of a service that has none); a missing total means there is nothing to judge.
- ``vector``: one value per input in order, NaN where an input has no point (the detector imputes).
- ``counts``: one input; a dict from the input's other labels (e.g. ``template_id``) to its value.

Several series of one input landing on the same join key (``p99`` per route, joined by service)
are combined with ``max`` for ``vector`` (the worst route is the one to notice) and with ``sum``
otherwise (events and counts add up).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vigil.collectors.model import Labels, Point, SeriesKey

# (timestamp, detector input, value to show as "observed" or None)
Row = tuple[float, Any, float | None]


@dataclass(frozen=True)
class Composite:
    name: str
    kind: str  # "events" | "vector" | "counts"
    inputs: tuple[str, ...]
    by: tuple[str, ...]

    def __post_init__(self) -> None:
        expected = {"events": 2, "counts": 1}.get(self.kind)
        if self.kind not in ("events", "vector", "counts"):
            raise ValueError(f"composite {self.name!r}: {self.kind!r} detectors take one signal")
        if expected is not None and len(self.inputs) != expected:
            raise ValueError(
                f"composite {self.name!r}: a {self.kind!r} detector takes {expected} input signal(s), "
                f"got {len(self.inputs)}"
            )

    def _join_key(self, labels: Labels) -> Labels:
        return tuple((k, v) for k, v in labels if k in self.by)

    def assemble(self, series: Mapping[SeriesKey, Sequence[Point]]) -> dict[SeriesKey, list[Row]]:
        """The composite's rows per join key, in time order, from one round's collected points."""
        # cells[join key][timestamp][input index] -> values of that input's series there
        cells: dict[Labels, dict[float, dict[int, list[tuple[Labels, float]]]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(list))
        )
        for key, points in series.items():
            if key.signal not in self.inputs:
                continue
            index = self.inputs.index(key.signal)
            rest = tuple((k, v) for k, v in key.labels if k not in self.by)
            for point in points:
                if point.finite:
                    cells[self._join_key(key.labels)][point.timestamp][index].append((rest, point.value))
        out: dict[SeriesKey, list[Row]] = {}
        for join_key, by_time in cells.items():
            rows = [row for t in sorted(by_time) if (row := self._row(t, by_time[t])) is not None]
            if rows:
                out[SeriesKey(self.name, join_key)] = rows
        return out

    def _row(self, t: float, values: dict[int, list[tuple[Labels, float]]]) -> Row | None:
        if self.kind == "events":
            if 1 not in values:
                return None
            bad = sum(v for _, v in values.get(0, []))
            total = sum(v for _, v in values[1])
            return t, (bad, total), (bad / total if total > 0 else 0.0)
        if self.kind == "counts":
            counts: dict[str, float] = defaultdict(float)
            for rest, value in values[0]:
                counts[",".join(v for _, v in rest) or self.inputs[0]] += value
            return t, dict(counts), float(sum(counts.values()))
        vector = [max((v for _, v in values[i]), default=math.nan) for i in range(len(self.inputs))]
        return t, vector, None
