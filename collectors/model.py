"""What every collector produces: samples of labelled series, and what it knows about gaps.

A *signal* is one named quantity vigil watches (``checkout_p99_seconds``); it fans out into
*series*, one per label set (``service="gateway"``). Collectors return points per series and
report their source's health; they never raise for a source that is down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

Labels = tuple[tuple[str, str], ...]


def labels_of(mapping: dict[str, str]) -> Labels:
    """A hashable, order-independent label set.

    >>> labels_of({"service": "gateway", "route": "/api/checkout"})
    (('route', '/api/checkout'), ('service', 'gateway'))
    """
    return tuple(sorted(mapping.items()))


@dataclass(frozen=True, order=True)
class SeriesKey:
    signal: str
    labels: Labels = ()

    # The engine looks every series up several times a round: its hash is computed once and kept
    # (outside the fields, so equality and order ignore it, and left out of pickles: str hashes differ
    # between processes).
    def __hash__(self) -> int:
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.signal, self.labels))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __reduce__(self) -> tuple[type[SeriesKey], tuple[str, Labels]]:
        return SeriesKey, (self.signal, self.labels)

    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)

    def __str__(self) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.signal}{{{inner}}}"


@dataclass(frozen=True)
class Point:
    timestamp: float  # unix seconds
    value: float

    @property
    def finite(self) -> bool:
        return math.isfinite(self.value)


@dataclass
class Collection:
    """One round of collection from one source."""

    source: str
    series: dict[SeriesKey, list[Point]] = field(default_factory=dict)
    up: bool = True
    error: str | None = None  # why the source is down or a query failed

    def add(self, key: SeriesKey, point: Point) -> None:
        self.series.setdefault(key, []).append(point)

    @property
    def samples(self) -> int:
        return sum(len(points) for points in self.series.values())


class Collector(Protocol):
    """Reads one source. ``collect(now)`` returns what is new since the previous call."""

    name: str

    def collect(self, now: float) -> Collection: ...
