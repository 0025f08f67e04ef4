"""grafanalib building blocks that emit today's Grafana model instead of grafanalib's legacy fields.

Every panel builder takes its title, description and unit as required keyword arguments: a panel
nobody can read the meaning or unit of is a lint failure anyway, so it cannot be built. Layout is
done once, by :func:`layout`, from sections (rows) of panels with a width and height.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import attr
from grafanalib import core as g
from grafanalib import elasticsearch as es

from vigil.dashboards.datasources import ELASTICSEARCH, PROMETHEUS, TIME_FIELD

GRID_COLUMNS = 24
ROW_HEIGHT = 1


@dataclass(frozen=True)
class PromTarget:
    """A Prometheus query as Grafana 10+ stores it (grafanalib's Target adds Graphite-era keys and no
    datasource reference)."""

    expr: str
    legend: str = ""
    instant: bool = False
    ref_id: str = "A"

    def to_json_data(self) -> dict[str, Any]:
        return {
            "datasource": PROMETHEUS.ref(),
            "editorMode": "code",
            "expr": self.expr,
            "instant": self.instant,
            "legendFormat": self.legend,
            "range": not self.instant,
            "refId": self.ref_id,
        }


@attr.s
class LogsMetric:
    """Elasticsearch's raw ``logs`` metric (grafanalib has count/avg/... aggregations only)."""

    id: int = attr.ib(default=1)
    limit: int = attr.ib(default=100)

    def to_json_data(self) -> dict[str, Any]:
        return {"id": str(self.id), "type": "logs", "settings": {"limit": str(self.limit)}}


@dataclass(frozen=True)
class EsTarget:
    """grafanalib's Elasticsearch target plus the datasource reference it lacks."""

    target: es.ElasticsearchTarget
    ref_id: str = "A"

    def to_json_data(self) -> dict[str, Any]:
        data: dict[str, Any] = attr.evolve(self.target, refId=self.ref_id).to_json_data()
        data["datasource"] = ELASTICSEARCH.ref()
        return data


Target = PromTarget | EsTarget


def prom(expr: str, legend: str = "", *, instant: bool = False) -> PromTarget:
    return PromTarget(" ".join(expr.split()), legend, instant)


def log_counts(query: str, *, split_by: str) -> EsTarget:
    """Documents per time bucket matching the Lucene ``query``, one series per value of ``split_by``."""
    return EsTarget(
        es.ElasticsearchTarget(
            query=query,
            timeField=TIME_FIELD,
            metricAggs=[es.CountMetricAgg(id=1)],
            bucketAggs=[
                es.TermsGroupBy(id=2, field=split_by, orderBy="_count", size=10),
                es.DateHistogramGroupBy(id=3, field=TIME_FIELD, minDocCount=0),
            ],
        )
    )


def log_lines(query: str, *, limit: int = 100) -> EsTarget:
    return EsTarget(
        es.ElasticsearchTarget(
            query=query, timeField=TIME_FIELD, metricAggs=[LogsMetric(limit=limit)], bucketAggs=[]
        )
    )


def _with_ref_ids(targets: list[Target]) -> list[Target]:
    return [replace(t, ref_id=chr(ord("A") + i)) for i, t in enumerate(targets)]


@dataclass
class Sized:
    """A panel and the grid cells it takes; :func:`layout` gives it its place."""

    panel: Any
    width: int = 8
    height: int = 8


def timeseries(
    *,
    title: str,
    description: str,
    unit: str,
    targets: list[Target],
    width: int = 8,
    height: int = 8,
    stack: bool = False,
    bars: bool = False,
    threshold: float | None = None,
    overrides: list[dict[str, Any]] | None = None,
    repeat: str | None = None,
    soft_max: int | None = None,
) -> Sized:
    is_logs = any(isinstance(t, EsTarget) for t in targets)
    steps = [{"color": "green", "value": None}]
    if threshold is not None:
        steps.append({"color": "red", "value": threshold})  # type: ignore[dict-item]
    panel = g.TimeSeries(
        title=title,
        description=description,
        unit=unit,
        dataSource=(ELASTICSEARCH if is_logs else PROMETHEUS).ref(),
        targets=_with_ref_ids(targets),
        editable=False,
        drawStyle="bars" if bars else "line",
        fillOpacity=60 if bars else (20 if stack else 10),
        stacking={"mode": "normal", "group": "A"} if stack else {"mode": "none"},
        legendDisplayMode="table" if len(targets) > 1 or stack else "list",
        legendCalcs=["lastNotNull", "max"],
        tooltipMode="multi",
        thresholds=steps,
        thresholdsStyleMode="line" if threshold is not None else "off",
        overrides=overrides or [],
        repeat=g.Repeat("h", repeat, 3) if repeat else g.Repeat(),
        axisSoftMin=0,
        axisSoftMax=soft_max,
        maxDataPoints=None,
    )
    return Sized(panel, width, height)


def stat(
    *,
    title: str,
    description: str,
    unit: str,
    targets: list[Target],
    thresholds: tuple[tuple[str, float | None], ...] = (("green", None),),
    width: int = 4,
    height: int = 4,
) -> Sized:
    panel = g.Stat(
        title=title,
        description=description,
        format=unit,
        dataSource=PROMETHEUS.ref(),
        targets=_with_ref_ids(targets),
        editable=False,
        reduceCalc="lastNotNull",
        graphMode="area",
        colorMode="background",
        # grafanalib writes these into fieldConfig.defaults.thresholds, where Grafana 10 reads them.
        thresholds=[{"color": color, "value": value} for color, value in thresholds],
        maxDataPoints=None,
    )
    return Sized(panel, width, height)


def table(
    *, title: str, description: str, unit: str, targets: list[Target], width: int = 24, height: int = 6
) -> Sized:
    """An instant-query table with one row per series and its labels as columns."""
    panel = g.Table(
        title=title,
        description=description,
        unit=unit,
        dataSource=PROMETHEUS.ref(),
        targets=_with_ref_ids(targets),
        editable=False,
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
        ],
    )
    return Sized(panel, width, height)


def logs(*, title: str, description: str, targets: list[Target], width: int = 24, height: int = 10) -> Sized:
    panel = g.Logs(
        title=title,
        description=description,
        dataSource=ELASTICSEARCH.ref(),
        targets=_with_ref_ids(targets),
        editable=False,
        showTime=True,
        wrapLogMessages=True,
        enableLogDetails=True,
        sortOrder="Descending",
    )
    return Sized(panel, width, height)


@dataclass
class Section:
    """A titled row of panels, laid out left to right and wrapped at the grid's 24 columns."""

    title: str
    panels: list[Sized] = field(default_factory=list)


def layout(sections: list[Section]) -> list[Any]:
    """Rows and their panels with ids and grid positions, in reading order."""
    placed: list[Any] = []
    y = 0
    next_id = iter(range(1, 1000))
    for section in sections:
        placed.append(g.RowPanel(title=section.title, id=next(next_id), gridPos=g.GridPos(1, 24, 0, y)))
        y += ROW_HEIGHT
        x, row_height = 0, 0
        for sized in section.panels:
            if x + sized.width > GRID_COLUMNS:
                x, y, row_height = 0, y + row_height, 0
            grid = g.GridPos(h=sized.height, w=sized.width, x=x, y=y)
            placed.append(attr.evolve(sized.panel, id=next(next_id), gridPos=grid))
            x += sized.width
            row_height = max(row_height, sized.height)
        y += row_height
    return placed
