"""Run a dashboard's panel queries the way Grafana does, against the real Prometheus and Elasticsearch.

Errors from either backend are captured in the result rather than raised: a broken panel is a finding
to show a reviewer, not a reason to stop looking at the others.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
from elasticsearch import ApiError, Elasticsearch, TransportError

from vigil.alerts.prometheus_rules import duration as prometheus_duration
from vigil.collectors.logs import ecs_field
from vigil.collectors.prometheus_client import PrometheusClient, PrometheusError
from vigil.collectors.prometheus_client import Series as PromSeries
from vigil.dashboards.datasources import TIME_FIELD
from vigil.dashboards.queries import PanelQuery, epoch_seconds, substitute
from vigil.system.telemetry import LogTelemetry

# Grafana's kbn.roundInterval: a raw interval snaps to the nearest of these (seconds).
NICE_INTERVALS = [
    1,
    2,
    5,
    10,
    15,
    20,
    30,
    60,
    120,
    300,
    600,
    900,
    1200,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
]
DEFAULT_LOGS = LogTelemetry()  # ECS fields in logs-*: OpenTelemetry's and Elastic's defaults
MAX_PROMETHEUS_POINTS = 11_000  # Prometheus refuses range queries with more points per series
LEGEND_FIELD = re.compile(r"\{\{\s*(?:term\s+)?(.+?)\s*\}\}")
FIELD_METRICS = ("avg", "sum", "min", "max", "cardinality")


@dataclass(frozen=True)
class Series:
    name: str  # the legend: legendFormat (Prometheus) or alias (Elasticsearch) filled from the labels
    labels: dict[str, str]
    times: np.ndarray  # seconds since the epoch
    values: np.ndarray


@dataclass(frozen=True)
class LogLine:
    timestamp: datetime
    level: str
    message: str
    service: str = ""


@dataclass(frozen=True)
class QueryResult:
    query: PanelQuery
    series: list[Series] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    hits: int | None = None  # Elasticsearch: documents matching in the time range
    error: str | None = None


def has_data(result: QueryResult) -> bool:
    """Whether the panel would draw something: any finite value, any log line or any matching document."""
    if result.error:
        return False
    finite = any(np.isfinite(series.values).any() for series in result.series)
    return finite or bool(result.logs) or bool(result.hits)


def grafana_interval(*, start: float, end: float, max_data_points: int, min_interval: float = 5.0) -> float:
    """``$__interval`` in seconds: the range over the panel's data points, rounded like Grafana."""
    raw = (end - start) / max(max_data_points, 1)
    midpoints = ((small, (small + large) / 2) for small, large in itertools.pairwise(NICE_INTERVALS))
    rounded = next((small for small, midpoint in midpoints if raw < midpoint), max(raw, NICE_INTERVALS[-1]))
    return max(rounded, min_interval)


def duration(seconds: float) -> str:
    """A Prometheus duration such as ``15s``, ``2m`` or ``1h``, rounded to whole seconds (at least 1)."""
    return prometheus_duration(max(round(seconds), 1))


def legend_name(legend: str, labels: Mapping[str, str], fallback: str) -> str:
    """Grafana's legend: ``{{label}}`` templating, else ``name{a="b"}``, else the query itself."""
    if legend:
        return LEGEND_FIELD.sub(lambda m: str(labels.get(m.group(1), "")), legend)
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    if not labels:
        return fallback
    inner = ", ".join(f'{k}="{v}"' for k, v in shown.items())
    return f"{labels.get('__name__', '')}{{{inner}}}" if inner else labels.get("__name__", fallback)


def run(
    query: PanelQuery,
    *,
    start: datetime,
    end: datetime,
    prometheus_url: str,
    elasticsearch_url: str,
    logs: LogTelemetry = DEFAULT_LOGS,
    step: float | None = None,
    scrape_interval: float = 5.0,
    timeout: float = 30.0,
) -> QueryResult:
    """Run one panel query over ``start``..``end``; ``step`` defaults to Grafana's ``$__interval``.

    ``logs`` says where the system's logs are: the index Elasticsearch queries search and the fields a log
    line's level and service are read from."""
    begin, finish = epoch_seconds(start), epoch_seconds(end)
    if step is None:
        step = grafana_interval(
            start=begin, end=finish, max_data_points=query.max_data_points, min_interval=scrape_interval
        )
    if query.kind == "elasticsearch":
        return _run_elasticsearch(
            query, start=begin, end=finish, interval=step, url=elasticsearch_url, logs=logs
        )
    step = max(step, (finish - begin) / MAX_PROMETHEUS_POINTS)
    text = substitute(
        query.text,
        {},
        interval=duration(step),
        # Grafana: at least four scrapes, so rate() always sees two samples even if one scrape is lost.
        rate_interval=duration(max(step + scrape_interval, 4 * scrape_interval)),
        range_=duration(finish - begin),
    )
    grid = None
    try:
        with PrometheusClient(prometheus_url, timeout=timeout) as client:
            if query.instant:
                found = client.query(text, finish)
            else:  # Grafana aligns the range to the step so that refreshes hit the same points
                grid = np.arange(
                    math.floor(begin / step) * step, math.ceil(finish / step) * step + step / 2, step
                )
                found = client.query_range(text, float(grid[0]), float(grid[-1]), step)
    except PrometheusError as exc:
        return QueryResult(query, error=str(exc))
    return QueryResult(query, series=[_prometheus_series(item, query, text, grid) for item in found])


def _prometheus_series(item: PromSeries, query: PanelQuery, text: str, grid: np.ndarray | None) -> Series:
    """A range result spread over the whole step grid, NaN where a point is missing.

    Grafana does the same (nulls at missing steps), which is why a series that stops shows a gap.
    """
    times = np.array([t for t, _ in item.values])
    values = np.array([v for _, v in item.values])
    if grid is not None and len(grid) > 1 and len(times):
        filled = np.full(len(grid), np.nan)
        filled[np.clip(np.rint((times - grid[0]) / (grid[1] - grid[0])).astype(int), 0, len(grid) - 1)] = (
            values
        )
        times, values = grid, filled
    return Series(
        name=legend_name(query.legend, item.metric, text), labels=item.metric, times=times, values=values
    )


@lru_cache(maxsize=4)
def _client(url: str) -> Elasticsearch:
    return Elasticsearch(url, request_timeout=30)


def _run_elasticsearch(
    query: PanelQuery, *, start: float, end: float, interval: float, url: str, logs: LogTelemetry
) -> QueryResult:
    target = query.target
    time_field = target.get("timeField") or TIME_FIELD
    search: dict[str, Any] = {
        "bool": {
            "filter": [
                {
                    "range": {
                        time_field: {
                            "gte": int(start * 1000),
                            "lte": int(end * 1000),
                            "format": "epoch_millis",
                        }
                    }
                },
                {"query_string": {"query": query.text or "*", "analyze_wildcard": True}},
            ]
        }
    }
    metrics = list(target.get("metrics") or [{"id": "1", "type": "count"}])
    buckets = list(target.get("bucketAggs") or [])
    try:
        if metrics[0]["type"] in ("logs", "raw_data", "raw_document"):
            limit = int(
                metrics[0].get("settings", {}).get("limit")
                or metrics[0].get("settings", {}).get("size")
                or 100
            )
            response = _client(url).search(
                index=logs.index,
                query=search,
                size=limit,
                sort=[{time_field: {"order": "desc", "unmapped_type": "boolean"}}],
                track_total_hits=True,
            )
            lines = [_log_line(hit["_source"], time_field, logs) for hit in response["hits"]["hits"]]
            return QueryResult(query, logs=lines, hits=response["hits"]["total"]["value"])
        aggs = _aggregations(buckets, metrics, start=start, end=end, interval=interval, time_field=time_field)
        response = _client(url).search(
            index=logs.index, query=search, size=0, aggs=aggs, track_total_hits=True
        )
    except (ApiError, TransportError, ValueError) as exc:
        return QueryResult(query, error=f"Elasticsearch: {str(exc)[:500]}")
    hits = response["hits"]["total"]["value"]
    top = {**response.get("aggregations", {}), "doc_count": hits}
    series = list(_es_series(top, buckets, metrics, labels={}, query=query, end=end))
    return QueryResult(query, series=series, hits=hits)


def _aggregations(
    buckets: list[Mapping[str, Any]],
    metrics: list[Mapping[str, Any]],
    *,
    start: float,
    end: float,
    interval: float,
    time_field: str,
) -> dict[str, Any]:
    """Grafana's nesting: each bucket aggregation inside the previous one, the metrics innermost."""
    aggs: dict[str, Any] = {
        m["id"]: {m["type"]: {"field": m["field"]}} for m in metrics if m["type"] in FIELD_METRICS
    }
    for bucket in reversed(buckets):
        settings = bucket.get("settings", {})
        if bucket["type"] == "terms":
            order_by = {"_term": "_key"}.get(
                settings.get("orderBy", "_count"), settings.get("orderBy", "_count")
            )
            body: dict[str, Any] = {
                "terms": {
                    "field": bucket["field"],
                    "size": int(settings.get("size") or 0) or 500,  # Grafana: 0 means "no limit", sent as 500
                    "order": {order_by: settings.get("order", "desc")},
                    "min_doc_count": int(settings.get("min_doc_count") or 1),
                }
            }
        elif bucket["type"] == "date_histogram":
            fixed = settings.get("interval", "auto")
            body = {
                "date_histogram": {
                    "field": bucket.get("field") or time_field,
                    "fixed_interval": duration(interval) if fixed in ("auto", "", None) else fixed,
                    "min_doc_count": int(settings.get("min_doc_count") or 0),
                    "extended_bounds": {"min": int(start * 1000), "max": int(end * 1000)},
                    "format": "epoch_millis",
                }
            }
        else:
            raise ValueError(f"unsupported bucket aggregation {bucket['type']!r}")
        if aggs:
            body["aggs"] = aggs
        aggs = {bucket["id"]: body}
    return aggs


def _metric_value(bucket: Mapping[str, Any], metric: Mapping[str, Any]) -> float:
    if metric["type"] == "count":
        return float(bucket["doc_count"])
    value = bucket.get(metric["id"], {}).get("value")
    return math.nan if value is None else float(value)


def _es_series(
    response: Mapping[str, Any],
    buckets: list[Mapping[str, Any]],
    metrics: list[Mapping[str, Any]],
    *,
    labels: dict[str, str],
    query: PanelQuery,
    end: float,
) -> Iterator[Series]:
    """One series per (terms path, metric); a date histogram gives its points, else one point at ``end``."""
    histogram = buckets[0] if buckets and buckets[0]["type"] == "date_histogram" else None
    if buckets and histogram is None:
        for bucket in response[buckets[0]["id"]]["buckets"]:
            deeper = {**labels, buckets[0]["field"]: str(bucket.get("key_as_string", bucket["key"]))}
            yield from _es_series(bucket, buckets[1:], metrics, labels=deeper, query=query, end=end)
        return
    points = response[histogram["id"]]["buckets"] if histogram else [response]
    times = np.array([float(b["key"]) / 1000 for b in points]) if histogram else np.array([end])
    for metric in metrics:
        name_labels = {**labels, "metric": metric["type"].capitalize()}
        fallback = " ".join(labels.values()) or name_labels["metric"]
        if len(metrics) > 1 and labels:
            fallback += f" {name_labels['metric']}"
        yield Series(
            name=legend_name(query.legend, name_labels, fallback) if query.legend else fallback,
            labels=dict(labels),
            times=times,
            values=np.array([_metric_value(b, metric) for b in points]),
        )


def _log_line(source: Mapping[str, Any], time_field: str, logs: LogTelemetry) -> LogLine:
    stamp = datetime.fromisoformat(str(ecs_field(source, time_field)).replace("Z", "+00:00"))
    return LogLine(
        timestamp=stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC),
        level=str(ecs_field(source, logs.level_field) or ""),
        message=str(ecs_field(source, "message") or ""),
        service=str(ecs_field(source, logs.service_field) or ""),
    )
