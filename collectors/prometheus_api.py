"""Signals read from Prometheus' HTTP API with range queries, incrementally.

Each round asks, per signal, for the steps evaluated since the previous round: one ``query_range``
per signal (chunked only when the range is long), on timestamps aligned to multiples of the step so
that rounds line up and no step is read twice or skipped. A round that fails leaves the signal's
position where it was, so the next round catches up (within ``max_lookback``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from vigil.collectors.model import Collection, Point, SeriesKey, labels_of
from vigil.collectors.prometheus_client import (
    PrometheusClient,
    PrometheusError,
    PromQLError,
    Series,
    SourceUnavailable,
)

__all__ = [
    "PromQLError",
    "PromSignal",
    "PrometheusClient",
    "PrometheusCollection",
    "PrometheusCollector",
    "SourceUnavailable",
]

# Prometheus refuses a range query with more than 11,000 steps; stay well clear of it.
MAX_POINTS_PER_REQUEST = 10_000


@dataclass(frozen=True)
class PromSignal:
    name: str
    query: str  # PromQL
    step: float  # seconds between evaluations
    keep_labels: tuple[str, ...] | None = None  # None: every label except __name__

    def __post_init__(self) -> None:
        if not self.step > 0:
            raise ValueError(f"signal {self.name}: step must be positive, not {self.step}")

    def key(self, metric: dict[str, str]) -> SeriesKey:
        if self.keep_labels is None:
            kept = {k: v for k, v in metric.items() if k != "__name__"}
        else:
            kept = {k: metric[k] for k in self.keep_labels if k in metric}
        return SeriesKey(self.name, labels_of(kept))


@dataclass
class PrometheusCollection(Collection):
    """A ``Collection`` that also says how many samples were left out, and why."""

    dropped_non_finite: int = 0  # NaN/±Inf values (histogram_quantile over no requests) or timestamps
    dropped_out_of_order: int = 0  # duplicate or older timestamps, e.g. series merged by keep_labels
    requests: int = 0  # query_range calls made this round
    errors: list[str] = field(default_factory=list)


def align_up(t: float, step: float) -> float:
    return _clean(math.ceil(_clean(t / step)) * step)


def align_down(t: float, step: float) -> float:
    return _clean(math.floor(_clean(t / step)) * step)


def _clean(x: float) -> float:
    # 0.1 * 3 == 0.30000000000000004: round away float noise so aligned timestamps compare equal.
    return round(x, 6)


def chunks(
    start: float, end: float, step: float, max_points: int = MAX_POINTS_PER_REQUEST
) -> Iterator[tuple[float, float]]:
    """Split the aligned, inclusive range [start, end] into ranges of at most ``max_points`` steps."""
    span = (max_points - 1) * step
    while start <= end:
        chunk_end = min(end, _clean(start + span))
        yield start, chunk_end
        start = _clean(chunk_end + step)


class PrometheusCollector:
    """Implements the ``Collector`` protocol over a ``PrometheusClient``."""

    def __init__(
        self,
        name: str,
        client: PrometheusClient,
        signals: Iterable[PromSignal],
        *,
        initial_lookback: float = 600,
        max_lookback: float = 3 * 3600,
        clock: Callable[[], float] = time.time,
        max_points_per_request: int = MAX_POINTS_PER_REQUEST,
    ) -> None:
        self.name = name
        self.client = client
        self.signals = list(signals)
        names = [s.name for s in self.signals]
        if len(set(names)) != len(names):
            raise ValueError(f"collector {name}: signal names must be unique, got {names}")
        self.initial_lookback = initial_lookback
        self.max_lookback = max_lookback
        self.clock = clock
        self.max_points_per_request = max_points_per_request
        # Last evaluated (and delivered) step per signal: the next round starts one step after it.
        self._last: dict[str, float] = {}
        # Newest timestamp delivered per series of each signal, to drop duplicates within and across rounds.
        self._series_last: dict[str, dict[SeriesKey, float]] = {}

    def position(self, signal: str) -> float | None:
        """The last timestamp read for ``signal`` (None before the first successful round)."""
        return self._last.get(signal)

    def collect(self, now: float | None = None) -> PrometheusCollection:
        now = self.clock() if now is None else now
        result = PrometheusCollection(source=self.name)
        for signal in self.signals:
            try:
                self._collect_signal(signal, now, result)
            except SourceUnavailable as exc:
                # The source is down: the other signals would only wait through the same retries.
                result.up = False
                result.errors.append(str(exc))
                break
            except PrometheusError as exc:  # bad PromQL: Prometheus answered; other signals go on
                result.errors.append(str(exc))
        result.error = "; ".join(result.errors) or None
        return result

    def window(self, signal: PromSignal, now: float) -> tuple[float, float]:
        """The aligned, inclusive range to read for ``signal`` at ``now`` (empty when start > end)."""
        end = align_down(now, signal.step)
        earliest = align_up(now - self.max_lookback, signal.step)
        last = self._last.get(signal.name)
        if last is None:
            start = align_up(now - self.initial_lookback, signal.step)
        else:
            start = max(_clean(align_down(last, signal.step) + signal.step), earliest)
        return start, end

    def _collect_signal(self, signal: PromSignal, now: float, result: PrometheusCollection) -> None:
        start, end = self.window(signal, now)
        self._forget_before(signal.name, start)
        for chunk_start, chunk_end in chunks(start, end, signal.step, self.max_points_per_request):
            result.requests += 1
            found = self.client.query_range(
                signal.query, chunk_start, chunk_end, signal.step, name=signal.name
            )
            self._add(signal, found, result)
            # Advance per chunk: after a failure mid-way the next round resumes after the last good chunk.
            self._last[signal.name] = chunk_end

    def _add(self, signal: PromSignal, found: list[Series], result: PrometheusCollection) -> None:
        seen = self._series_last.setdefault(signal.name, {})
        for series in found:
            key = signal.key(series.metric)
            newest = seen.get(key, -math.inf)
            for timestamp, value in series.values:
                if not (math.isfinite(value) and math.isfinite(timestamp)):
                    result.dropped_non_finite += 1
                elif timestamp <= newest:
                    result.dropped_out_of_order += 1
                else:
                    result.add(key, Point(timestamp, value))
                    newest = timestamp
            if newest > -math.inf:
                seen[key] = newest

    def _forget_before(self, signal: str, start: float) -> None:
        # Series that stopped before this round's range cannot clash with it; forgetting them keeps
        # memory bounded when labels churn (pods, instances come and go).
        seen = self._series_last.get(signal, {})
        for key in [k for k, t in seen.items() if t < start]:
            del seen[key]
