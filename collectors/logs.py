"""Elasticsearch logs -> per-service line, error and template counts over closed, aligned time windows.

Every round reads the windows ``[start, start + window)`` that closed since the previous round, each
completely (point in time + ``search_after``, so paging is exact however many documents there are and
however many share a timestamp), and emits one point per series at the window's end. A window is
marked processed only after all of its documents were read, so an Elasticsearch outage delays the
counts instead of losing or halving them.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from vigil.collectors.log_templates import LogTemplates
from vigil.collectors.model import Collection, Point, SeriesKey, labels_of

log = logging.getLogger(__name__)

LINES, ERRORS, TEMPLATE_LINES = "log_lines", "log_errors", "log_template_lines"
SOURCE_FIELDS = ("service.name", "log.level", "message", "error.message")
# Reads the documents of one window [start, end), oldest first; raises when it cannot read them all.
DocumentReader = Callable[[float, float], Iterable[Mapping[str, Any]]]
_KEEP_ALIVE = "1m"


def ecs_field(source: Mapping[str, Any], dotted: str) -> Any:
    """A field of ``_source`` whether the shipper wrote it flat (``"log.level": ..``) or nested."""
    if dotted in source:
        return source[dotted]
    head, _, rest = dotted.partition(".")
    inner = source.get(head)
    return ecs_field(inner, rest) if rest and isinstance(inner, Mapping) else None


def line_of(source: Mapping[str, Any]) -> tuple[str, str, str]:
    """An ECS document's service, level (lower case) and message."""
    service = str(ecs_field(source, "service.name") or "unknown")
    level = str(ecs_field(source, "log.level") or "").lower()
    return service, level, str(ecs_field(source, "message") or ecs_field(source, "error.message") or "")


class _WindowCounts:
    """What one window holds, before templates are mined (so a failed read leaves Drain untouched)."""

    def __init__(self) -> None:
        self.lines: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        # Distinct messages per service: Drain only has to see each distinct message once per window.
        self.messages: Counter[tuple[str, str]] = Counter()


class LogCollector:
    """Counts log lines per service, error lines and lines per Drain template, one window at a time."""

    def __init__(
        self,
        name: str,
        es: Elasticsearch | None,
        *,
        reader: DocumentReader | None = None,
        index: str = "logs-marketplace-*",
        window: float = 60,
        settle: float = 5,
        page_size: int = 1000,
        initial_lookback: float = 600,
        max_lookback: float = 3 * 3600,
        templates: LogTemplates | None = None,
        clock: Callable[[], float] = time.time,
        error_levels: Sequence[str] = ("error", "critical", "fatal", "emergency", "alert"),
        request_timeout: float = 10,
        template_zero_ttl: float = 3600,
    ) -> None:
        if window <= 0 or page_size <= 0:
            raise ValueError("window and page_size must be positive")
        if (es is None) == (reader is None):
            raise ValueError("give either an Elasticsearch client or a document reader (a recording's)")
        self.reader = reader
        self.name, self.es, self.index = name, es, index
        self.window, self.settle, self.page_size = float(window), float(settle), page_size
        self.initial_lookback, self.max_lookback = float(initial_lookback), float(max_lookback)
        self.templates = templates if templates is not None else LogTemplates()
        self.clock = clock
        self.error_levels = frozenset(level.lower() for level in error_levels)
        self.request_timeout = request_timeout
        self.template_zero_ttl = template_zero_ttl
        self.next_start: float | None = None  # start of the first window not processed yet
        # Services ever seen get explicit zeros: a service that stops logging is a signal, not a gap.
        self.services: set[str] = set()
        # Template series get zeros only for a while after their last line, so that templates with
        # an unmasked variable part cannot grow the number of series forever.
        self._template_last_seen: dict[tuple[str, str], float] = {}

    def pending_windows(self, now: float) -> list[tuple[float, float]]:
        """The closed windows the next ``collect(now)`` would read, oldest first."""
        # Lines reach Elasticsearch a little after they are written (shipper interval, refresh): a
        # window is read only once it ended at least `settle` seconds ago.
        last_end = math.floor((now - self.settle) / self.window) * self.window
        start = last_end - self._whole_windows(self.initial_lookback)
        if self.next_start is not None:
            # After a long outage only the most recent `max_lookback` is read: older windows would be
            # stale for detection and reading them all would keep the collector busy for too long.
            start = max(self.next_start, last_end - self._whole_windows(self.max_lookback))
        count = max(0, round((last_end - start) / self.window))
        return [(start + i * self.window, start + (i + 1) * self.window) for i in range(count)]

    def collect(self, now: float | None = None) -> Collection:
        now = self.clock() if now is None else now
        result = Collection(source=self.name)
        for start, end in self.pending_windows(now):
            try:
                counts = self._read_window(start, end)
            except (ApiError, TransportError, _PartialResults) as exc:
                # Windows read so far are kept; this one and later ones are read again next round.
                result.up = False
                result.error = f"elasticsearch {self.index} [{start:.0f}, {end:.0f}): {_describe(exc)}"
                log.warning("%s: %s", self.name, result.error)
                break
            self._emit(result, counts, end)
            self.next_start = end
        return result

    def _whole_windows(self, seconds: float) -> float:
        return max(1, math.floor(seconds / self.window)) * self.window

    def _read_window(self, start: float, end: float) -> _WindowCounts:
        counts = _WindowCounts()
        for source in self._documents(start, end):
            service, level, message = line_of(source)
            counts.lines[service] += 1
            if level in self.error_levels:
                counts.errors[service] += 1
            counts.messages[service, message] += 1
        return counts

    def _documents(self, start: float, end: float) -> Iterable[Mapping[str, Any]]:
        if self.reader is not None:
            return self.reader(start, end)
        assert self.es is not None  # one of the two, checked in __init__
        es = self.es.options(request_timeout=self.request_timeout)
        return read_documents(es, self.index, start, end, self.page_size, self.name)

    def _emit(self, result: Collection, counts: _WindowCounts, end: float) -> None:
        self.services.update(counts.lines)
        for service in sorted(self.services):
            labels = {"service": service}
            result.add(SeriesKey(LINES, labels_of(labels)), Point(end, float(counts.lines[service])))
            result.add(SeriesKey(ERRORS, labels_of(labels)), Point(end, float(counts.errors[service])))
        per_template: Counter[tuple[str, str]] = Counter()
        for (service, message), n in counts.messages.items():
            template_id, _ = self.templates.add(message)
            per_template[service, template_id] += n
        for key in per_template:
            self._template_last_seen[key] = end
        for key, last_seen in list(self._template_last_seen.items()):
            if end - last_seen > self.template_zero_ttl:
                del self._template_last_seen[key]
                continue
            service, template_id = key
            series = SeriesKey(TEMPLATE_LINES, labels_of({"service": service, "template_id": template_id}))
            result.add(series, Point(end, float(per_template[key])))


def read_documents(
    es: Elasticsearch,
    index: str,
    start: float,
    end: float,
    page_size: int = 1000,
    name: str = "logs",
    fields: Sequence[str] = SOURCE_FIELDS,
) -> Iterator[Mapping[str, Any]]:
    """Every document of ``index`` with ``@timestamp`` in [start, end), oldest first, each exactly once
    (a point in time and ``search_after``); raises on an error or a partial result."""
    window_range = {
        "range": {
            "@timestamp": {"gte": round(start * 1000), "lt": round(end * 1000), "format": "epoch_millis"}
        }
    }
    # The range as index_filter lets Elasticsearch leave out daily indices of other days entirely;
    # ignore_unavailable makes a missing index (nothing shipped yet, deleted by retention) empty.
    pit = es.open_point_in_time(
        index=index, keep_alive=_KEEP_ALIVE, ignore_unavailable=True, index_filter=window_range
    )
    pit_id: str = pit["id"]
    try:
        search_after: list[Any] | None = None
        while True:
            page = es.search(
                pit={"id": pit_id, "keep_alive": _KEEP_ALIVE},
                query=window_range,
                # _shard_doc breaks ties between lines of the same millisecond, so no page boundary
                # can skip or repeat one; unmapped_type tolerates an index without @timestamp.
                sort=[{"@timestamp": {"order": "asc", "unmapped_type": "date"}}, {"_shard_doc": "asc"}],
                search_after=search_after,
                size=page_size,
                source={"includes": list(fields)},
                track_total_hits=False,
                allow_partial_search_results=False,
            )
            body = page.body
            if body.get("_shards", {}).get("failed"):
                raise _PartialResults(body["_shards"])
            pit_id = body.get("pit_id", pit_id)  # the id may change between pages
            hits = body["hits"]["hits"]
            for hit in hits:
                yield hit.get("_source") or {}
            if len(hits) < page_size:
                return
            search_after = hits[-1]["sort"]
    finally:
        try:
            es.close_point_in_time(id=pit_id)
        except (ApiError, TransportError) as exc:  # it expires after keep_alive anyway
            log.debug("%s: closing a point in time failed: %s", name, exc)


class _PartialResults(Exception):
    """Some shards failed: counts would be too low, so the window must be read again."""


def _describe(exc: Exception) -> str:
    if isinstance(exc, ApiError):
        return f"{exc.meta.status} {exc.message}"
    return f"{type(exc).__name__}: {exc}"
