"""What the scrape collector computes from raw samples: signal definitions and PromQL-like aggregation.

A signal reads one metric and is the equivalent of one PromQL expression over a single scrape interval:

- ``rate``:     ``sum by (by) (rate(metric[interval]))``
- ``gauge``:    ``sum|max|min|avg by (by) (metric)``
- ``quantile``: ``histogram_quantile(q, sum by (by, le) (rate(metric_bucket[interval])))``
- ``ratio``:    ``sum by (by) (rate(metric{numerator_match})) / sum by (by) (rate(metric))``
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from vigil.collectors.model import SeriesKey, labels_of

Kind = Literal["rate", "gauge", "quantile", "ratio"]
Aggregation = Literal["sum", "max", "min", "avg"]
Matcher = Callable[[Mapping[str, str]], bool]
Group = tuple[str, ...]

STATEFUL_KINDS = frozenset({"rate", "quantile", "ratio"})  # need the previous raw value of a series


@dataclass(frozen=True)
class ScrapeSignal:
    name: str
    metric: str  # family name: `cache_requests_total` (or `cache_requests`), a histogram's base name
    kind: Kind
    by: tuple[str, ...] = ()
    # Exact label values; a value starting with `~` is a fully anchored regex, as in PromQL's `=~`.
    # hash=False on the dicts: unhashable, and a signal is identified by its name.
    match: dict[str, str] = field(default_factory=dict, hash=False)
    quantile: float | None = None
    numerator_match: dict[str, str] = field(default_factory=dict, hash=False)
    aggregation: Aggregation = "sum"
    # quantile and ratio: groups seeing fewer events per second than this are left out (a "p99" over a
    # handful of requests is the slowest request, a ratio over three requests is noise).
    min_rate: float | None = None
    labels: dict[str, str] = field(default_factory=dict, hash=False)  # added to every series it makes
    rename: dict[str, str] = field(default_factory=dict, hash=False)  # grouping label -> its name in series
    scale: float = 1.0  # e.g. the step in seconds, to turn a per-second rate into events per step

    def __post_init__(self) -> None:
        problem = None
        if self.kind not in ("rate", "gauge", "quantile", "ratio"):
            problem = f"kind must be rate, gauge, quantile or ratio, not {self.kind!r}"
        elif self.kind == "quantile" and (self.quantile is None or not 0 <= self.quantile <= 1):
            problem = f"a quantile signal needs quantile between 0 and 1, not {self.quantile}"
        elif self.kind == "quantile" and "le" in self.by:
            problem = "`le` is the bucket label and cannot be in `by`"
        elif self.kind == "ratio" and not self.numerator_match:
            problem = "a ratio signal needs numerator_match (the share of what it measures)"
        elif self.aggregation not in ("sum", "max", "avg", "min"):
            problem = f"aggregation must be sum, max, min or avg, not {self.aggregation!r}"
        elif self.min_rate is not None and self.kind not in ("quantile", "ratio"):
            problem = "min_rate applies to quantile and ratio signals only"
        elif set(self.labels) & set(self.by):
            problem = f"labels {sorted(set(self.labels) & set(self.by))} would overwrite grouping labels"
        elif set(self.rename) - set(self.by):
            problem = f"rename {sorted(set(self.rename) - set(self.by))}: only grouping labels can be renamed"
        elif clash := set(self.rename.values()) & ({*self.by, *self.labels} - set(self.rename)):
            problem = f"rename to {sorted(clash)} would overwrite another label"
        if problem:
            raise ValueError(f"signal {self.name}: {problem}")
        compile_match(self.match)  # raises now for a bad regex rather than at the first scrape
        compile_match(self.numerator_match)

    def sample_names(self) -> tuple[str, ...]:
        """The exposition sample names this signal reads."""
        m = self.metric
        if self.kind == "gauge":
            return (m,)
        if self.kind == "quantile":
            return (m if m.endswith("_bucket") else f"{m}_bucket",)
        # A counter family parses as `x` with samples `x_total`; a histogram's request count is `x_count`.
        return tuple(dict.fromkeys((m, f"{m}_total", f"{m}_count")))


def compile_match(match: Mapping[str, str]) -> Matcher:
    """A predicate on label sets; an absent label matches "" as in PromQL."""
    exact = [(k, v) for k, v in match.items() if not v.startswith("~")]
    try:
        regex = [(k, re.compile(v[1:])) for k, v in match.items() if v.startswith("~")]
    except re.error as error:
        raise ValueError(f"bad label regex in {dict(match)}: {error}") from error
    if not exact and not regex:
        return lambda _labels: True

    def matches(labels: Mapping[str, str]) -> bool:
        return all(labels.get(k, "") == v for k, v in exact) and all(
            r.fullmatch(labels.get(k, "")) for k, r in regex
        )

    return matches


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float:
    """Prometheus' ``histogram_quantile`` over classic buckets ``{upper bound: cumulative count}``.

    Linear interpolation inside the bucket holding rank ``q * count``, from 0 for the lowest bucket when
    its bound is positive (its bound when it is not). Ranks in the +Inf bucket give the highest finite
    bound. NaN without a +Inf bucket, with fewer than two buckets or no observations.
    """
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    bounds = sorted(buckets)  # a dict keyed by float bound: buckets with the same `le` are already summed
    if not bounds or bounds[-1] != math.inf or len(bounds) < 2:
        return math.nan
    counts = [buckets[b] for b in bounds]
    # Float noise from summing rates can make counts dip by ~1e-16; Prometheus flattens relative dips
    # up to 1e-12, then forces monotonicity, so the search below sees a non-decreasing sequence.
    previous = counts[0]
    for i in range(1, len(counts)):
        delta = abs(counts[i] - previous)
        if delta == 0:
            continue
        if counts[i] != 0 and delta / counts[i] <= 1e-12:
            counts[i] = previous
        else:
            previous = counts[i]
    for i in range(1, len(counts)):
        counts[i] = max(counts[i], counts[i - 1])
    observations = counts[-1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(counts) - 1) if counts[i] >= rank), len(counts) - 1)
    if b == len(counts) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, count = 0.0, bounds[b], counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * (rank / count)


class Accumulator:
    """One round's aggregation of one signal; ``add`` gets each matching sample's rate or value."""

    def __init__(self, signal: ScrapeSignal) -> None:
        self.signal = signal
        self.by = signal.by
        self.matches = compile_match(signal.match)
        self.stateful = signal.kind in STATEFUL_KINDS
        self._numerator = compile_match(signal.numerator_match)
        # group -> [sum, count, max] | [numerator, denominator] | {le: summed bucket rate}
        self._groups: dict[Group, list[float]] = {}
        self._buckets: dict[Group, dict[float, float]] = {}

    def add(self, labels: Mapping[str, str], value: float) -> None:
        group = tuple(labels.get(b, "") for b in self.by)
        kind = self.signal.kind
        if kind == "quantile":
            try:
                le = float(labels["le"])  # "+Inf" parses as inf; "1" and "1.0" are the same bucket
            except (KeyError, ValueError):
                return  # not a bucket: PromQL ignores samples without a usable `le` too
            buckets = self._buckets.setdefault(group, {})
            buckets[le] = buckets.get(le, 0.0) + value
        elif kind == "ratio":
            acc = self._groups.setdefault(group, [0.0, 0.0])
            if self._numerator(labels):
                acc[0] += value
            acc[1] += value
        else:
            acc = self._groups.setdefault(group, [0.0, 0, -math.inf, math.inf])
            acc[0] += value
            acc[1] += 1
            acc[2] = max(acc[2], value)
            acc[3] = min(acc[3], value)

    def results(self) -> Iterator[tuple[SeriesKey, float]]:
        """One finite value per group; groups whose value is undefined (no requests: 0/0) are left out."""
        signal = self.signal
        floor = signal.min_rate if signal.min_rate is not None else -math.inf
        for group, acc in self._groups.items():
            if signal.kind == "ratio":
                value = acc[0] / acc[1] if acc[1] > 0 and acc[1] >= floor else math.nan
            elif signal.kind == "gauge" and signal.aggregation == "max":
                value = acc[2]
            elif signal.kind == "gauge" and signal.aggregation == "min":
                value = acc[3]
            elif signal.kind == "gauge" and signal.aggregation == "avg":
                value = acc[0] / acc[1]
            else:
                value = acc[0]
            if math.isfinite(value):
                yield self._key(group), value * signal.scale
        for group, buckets in self._buckets.items():
            if buckets.get(math.inf, 0.0) < floor:  # the +Inf bucket's rate is the event rate
                continue
            value = histogram_quantile(signal.quantile if signal.quantile is not None else math.nan, buckets)
            if math.isfinite(value):
                yield self._key(group), value * signal.scale

    def _key(self, group: Group) -> SeriesKey:
        # An empty value is an absent label in PromQL, so it does not appear in the series' labels.
        kept = {self.signal.rename.get(k, k): v for k, v in zip(self.by, group, strict=True) if v}
        return SeriesKey(self.signal.name, labels_of({**kept, **self.signal.labels}))
