"""vigil's own /metrics: anomaly scores per signal (vmanomaly's names) and its health.

The per-series families (five samples a series, hundreds of thousands of lines at scale) are written
straight in the text exposition format: each series' label text is built once and kept, a cohort's
values come as arrays. ``prometheus_client`` builds a ``Sample`` and re-escapes every label of every
sample on each scrape, which took 80% of a round at 100k series. The small health families still go
through a ``prometheus_client`` collector, so any registry (``registry=``) can carry them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import compress
from weakref import WeakKeyDictionary

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vigil.runtime.cohorts import Chunk
from vigil.runtime.engine import Engine

SERIES_FAMILIES = {  # what (``exported`` in the config): name, help; in the order of a series' values
    "score": ("vigil_anomaly_score", "Anomaly score: 0-1 normal, above 1 anomalous"),
    "observed": ("vigil_observed", "Last observed value of the signal"),
    "expected": ("vigil_expected", "Value the detector expects"),
    "lower": ("vigil_expected_lower", "Lower edge of the normal band"),
    "upper": ("vigil_expected_upper", "Upper edge of the normal band"),
}
EVERYTHING = tuple(SERIES_FAMILIES)


def exposition(engine: Engine, registry: CollectorRegistry, exported: Sequence[str] = EVERYTHING) -> bytes:
    """The whole /metrics page: the registry's families, then every series' ``exported`` families."""
    return generate_latest(registry) + series_exposition(engine, exported).encode()


def series_exposition(engine: Engine, exported: Sequence[str] = EVERYTHING) -> str:
    """The per-series families in the text format (0.0.4); a sample whose value is unknown is left out.

    Only the ``exported`` families are written (``""`` stands for a family left out below).
    """
    chosen = [what in exported for what in SERIES_FAMILIES]
    names = [name if keep else "" for (name, _), keep in zip(SERIES_FAMILIES.values(), chosen, strict=True)]
    lines = [[f"# HELP {name} {text}\n# TYPE {name} gauge\n"] for name, text in SERIES_FAMILIES.values()]
    with engine.locked():  # no round changes the arrays while they are read
        for state in engine.series_unlocked():
            if state.chunk is None:
                band = state.band
                limits = (band.expected, band.lower, band.upper) if band is not None else ()
                values = (state.score, state.observed, *limits)
                for name, family, value in zip(names, lines, values, strict=False):
                    if name and value is not None and value == value:
                        family.append(f"{name}{state.exposition} {value!r}\n")
        for chunk in engine.chunks():
            occupied, labels = _members(chunk)
            observed = chunk.trails.last_observed(np.arange(len(chunk.states))) if chosen[1] else chunk.score
            for name, family, array in zip(names, lines, (chunk.score, observed, *chunk.bands), strict=True):
                if not name:
                    continue
                values = array[occupied]
                known = ~np.isnan(values)
                present = zip(compress(labels, known.tolist()), values[known].tolist(), strict=True)
                family.extend([f"{name}{label}{value!r}\n" for label, value in present])
    text = "".join([line for family, keep in zip(lines, chosen, strict=True) if keep for line in family])
    return text if "inf\n" not in text else _go_infinities(text)


_MEMBERS: WeakKeyDictionary[Chunk, tuple[int, np.ndarray, list[str]]] = WeakKeyDictionary()


def _members(chunk: Chunk) -> tuple[np.ndarray, list[str]]:
    """The chunk's occupied rows and their label text followed by a space, kept until series come or go."""
    cached = _MEMBERS.get(chunk)
    if cached is None or cached[0] != chunk.version:
        rows = [row for row, state in enumerate(chunk.states) if state is not None]
        labels = [f"{state.exposition} " for state in chunk.states if state is not None]
        cached = _MEMBERS[chunk] = (chunk.version, np.array(rows, dtype=int), labels)
    return cached[1], cached[2]


def _go_infinities(text: str) -> str:
    """Python writes infinities as ``inf``; the format (Go's ParseFloat) wants ``+Inf``/``-Inf``."""
    return text.replace(" inf\n", " +Inf\n").replace(" -inf\n", " -Inf\n")


class EngineCollector(Collector):
    """vigil's health: sources up and their outages, samples taken and dropped, series held."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "vigil_source_up", "1 if the source answered in the last round", labels=["source"]
        )
        gaps = CounterMetricFamily("vigil_source_gaps", "Outages of the source that ended", labels=["source"])
        for name, health in self.engine.sources.items():
            up.add_metric([name], 1.0 if health.up else 0.0)
            gaps.add_metric([name], len(health.gaps))
        yield up
        yield gaps
        c = self.engine.counters
        yield CounterMetricFamily("vigil_samples_ingested", "Points scored and learned", value=c.samples)
        rejected = CounterMetricFamily("vigil_samples_rejected", "Points dropped", labels=["reason"])
        rejected.add_metric(["non_finite"], c.non_finite)
        rejected.add_metric(["out_of_order"], c.out_of_order)
        yield rejected
        yield CounterMetricFamily(
            "vigil_series_evicted", "Series dropped at the max_series bound", value=c.evicted
        )
        yield GaugeMetricFamily("vigil_series", "Series held in memory", value=len(self.engine.series()))
        yield GaugeMetricFamily(
            "vigil_tick_duration_seconds", "Duration of the last round", value=c.last_tick_seconds
        )
