"""Grafana's substitution, panel expansion and legends, on hand-built dashboards (no network)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from vigil.dashboards.preview_panels import format_value, reduce_values
from vigil.dashboards.queries import (
    PanelQuery,
    expand_panels,
    filter_options,
    panel_queries,
    substitute,
)
from vigil.dashboards.query_runner import (
    QueryResult,
    Series,
    duration,
    grafana_interval,
    has_data,
    legend_name,
)

PROM = {"type": "prometheus", "uid": "${datasource}"}
LOGS = {"type": "elasticsearch", "uid": "${logs}"}


def prom_panel(panel_id: int, title: str, expr: str, **extra: Any) -> dict[str, Any]:
    target = {"datasource": PROM, "refId": "A", "expr": expr, "legendFormat": "{{route}}"}
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": PROM,
        "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
        "fieldConfig": {"defaults": {"unit": "reqps"}},
        "targets": [target],
        **extra,
    }


def test_one_value_is_substituted_as_itself_in_every_syntax() -> None:
    values = {"service": ["catalog"]}
    text = 'a{service="$service"} b{service="${service}"} c{service="[[service]]"}'
    assert substitute(text, values) == 'a{service="catalog"} b{service="catalog"} c{service="catalog"}'


def test_several_values_become_an_escaped_regex_alternation() -> None:
    values = {"route": ["/products", "/products/{product_id}"]}
    assert (
        substitute('x{route=~"$route"}', values) == 'x{route=~"(/products|/products/\\\\{product_id\\\\})"}'
    )


def test_the_regex_format_escapes_once_like_grafana() -> None:
    assert substitute("${v:regex}", {"v": ["a.b", "c"]}) == "(a\\.b|c)"
    assert substitute("${v:pipe}", {"v": ["a", "b"]}) == "a|b"


def test_lucene_dialect_quotes_and_ors_several_values() -> None:
    values = {"level": ["error", "critical"], "service": ["catalog"]}
    text = "service.name:$service AND log.level:$level"
    assert (
        substitute(text, values, dialect="lucene")
        == 'service.name:catalog AND log.level:("error" OR "critical")'
    )


def test_time_macros_use_the_given_durations_or_stay_when_none() -> None:
    expr = "rate(x[$__rate_interval]) + rate(x[$__interval]) + increase(x[$__range]) + y[${__range}]"
    assert substitute(expr, {}) == "rate(x[1m]) + rate(x[15s]) + increase(x[1h]) + y[1h]"
    assert substitute(expr, {}, rate_interval=None, interval=None, range_=None) == expr


def test_unknown_variables_and_longer_names_are_left_alone() -> None:
    assert substitute("$service_name $other $service", {"service": ["a"]}) == "$service_name $other a"


def test_variable_regex_keeps_matches_and_takes_the_capture_group() -> None:
    assert filter_options(["catalog", "cart", "orders"], "/^ca.*/") == ["catalog", "cart"]
    assert filter_options(["svc-catalog", "svc-cart", "x"], "/svc-(.*)/") == ["catalog", "cart"]
    assert filter_options(["Catalog"], "/catalog/i") == ["Catalog"]


def dashboard() -> dict[str, Any]:
    rate = (
        'sum by (route) (rate(http_server_request_duration_seconds_count{route=~"$route"}[$__rate_interval]))'
    )
    hidden = {"refId": "B", "expr": "up", "hide": True, "datasource": PROM}
    stat = prom_panel(3, "Routes", 'count(up{route=~"$route"})', type="stat")
    stat["targets"][0].update(instant=True, range=False, legendFormat="__auto")
    repeated = prom_panel(
        5, "Latency of $route", 'histogram_quantile(0.99, rate(b{route="$route"}[5m]))', repeat="route"
    )
    logs = {
        "id": 7,
        "type": "logs",
        "title": "Errors",
        "datasource": LOGS,
        "gridPos": {"x": 0, "y": 20, "w": 24, "h": 8},
        "targets": [{"refId": "A", "datasource": LOGS, "query": "service.name:$service", "metrics": []}],
    }
    return {
        "uid": "vigil-test",
        "title": "Test",
        "panels": [
            {"id": 1, "type": "row", "title": "HTTP", "collapsed": False, "panels": []},
            {**prom_panel(2, "Rate", rate), "targets": [prom_panel(2, "", rate)["targets"][0], hidden]},
            stat,
            {"id": 4, "type": "text", "title": "Notes", "options": {"content": "hi"}},
            {"id": 6, "type": "row", "title": "Logs", "collapsed": True, "panels": [repeated, logs]},
        ],
    }


VALUES = {"route": ["/a", "/b"], "service": ["catalog", "cart"], "datasource": ["vigil-prometheus"]}


def test_panel_queries_cover_every_visible_target_including_collapsed_rows() -> None:
    queries = panel_queries(dashboard(), VALUES)
    assert [(q.panel_id, q.ref_id) for q in queries] == [(2, "A"), (3, "A"), (5, "A"), (5, "A"), (7, "A")]
    rate, stat, *_, logs = queries
    assert rate.text.endswith('{route=~"(/a|/b)"}[$__rate_interval]))')  # the macro is left for run()
    assert (rate.kind, rate.unit, rate.legend, rate.instant) == ("prometheus", "reqps", "{{route}}", False)
    assert rate.dashboard_uid == "vigil-test"
    assert (stat.panel_type, stat.instant, stat.legend) == ("stat", True, "")
    assert (logs.kind, logs.text, logs.panel_type) == (
        "elasticsearch",
        'service.name:("catalog" OR "cart")',
        "logs",
    )


def test_a_repeated_panel_is_one_copy_per_value_with_that_value_pinned() -> None:
    copies = [q for q in panel_queries(dashboard(), VALUES) if q.panel_id == 5]
    assert [q.panel_title for q in copies] == ["Latency of /a", "Latency of /b"]
    assert [q.text for q in copies] == [
        'histogram_quantile(0.99, rate(b{route="/a"}[5m]))',
        'histogram_quantile(0.99, rate(b{route="/b"}[5m]))',
    ]


def test_repeat_titles_without_the_variable_get_the_value_as_suffix() -> None:
    panel = prom_panel(1, "Latency", "x", repeat="route", maxPerRow=2)
    expanded = expand_panels({"panels": [panel]}, {"route": ["/a", "/b", "/c"]})
    assert [p["title"] for p, _ in expanded] == ["Latency (/a)", "Latency (/b)", "Latency (/c)"]
    assert [(p["gridPos"]["x"], p["gridPos"]["y"], p["gridPos"]["w"]) for p, _ in expanded] == [
        (0, 0, 12),
        (12, 0, 12),
        (0, 8, 12),
    ]
    assert [values["route"] for _, values in expanded] == [["/a"], ["/b"], ["/c"]]


def test_expand_panels_keeps_rows_in_order_and_opens_collapsed_ones() -> None:
    kinds = [(p["type"], p.get("id")) for p, _ in expand_panels(dashboard(), VALUES)]
    assert kinds == [
        ("row", 1),
        ("timeseries", 2),
        ("stat", 3),
        ("text", 4),
        ("row", 6),
        ("timeseries", 5),
        ("timeseries", 5),
        ("logs", 7),
    ]


def test_legend_templating_fills_labels_and_falls_back_like_grafana() -> None:
    labels = {"__name__": "up", "service": "catalog", "instance": "a:1"}
    assert legend_name("{{service}} on {{ instance }}", labels, "up") == "catalog on a:1"
    assert legend_name("{{missing}}x", labels, "up") == "x"
    assert legend_name("", labels, "expr") == 'up{service="catalog", instance="a:1"}'
    assert legend_name("", {}, "sum(rate(x[1m]))") == "sum(rate(x[1m]))"
    assert legend_name("{{term log.level}}", {"log.level": "error"}, "Count") == "error"


@pytest.mark.parametrize(
    ("seconds", "points", "expected"),
    [(3600, 1000, 5.0), (6 * 3600, 1000, 20.0), (86400, 1000, 60.0), (600, 1000, 5.0)],
)
def test_grafana_interval_rounds_to_nice_steps_of_at_least_the_scrape_interval(
    seconds: int, points: int, expected: float
) -> None:
    assert grafana_interval(start=0, end=seconds, max_data_points=points, min_interval=5) == expected


def test_durations_are_written_in_whole_units() -> None:
    assert [duration(s) for s in (15, 60, 90, 3600, 86400)] == ["15s", "1m", "90s", "1h", "1d"]


def query() -> PanelQuery:
    return PanelQuery("d", 1, "t", "timeseries", "", "A", "prometheus", "up", "", False, {})


def test_has_data_needs_a_finite_value_or_hits() -> None:
    nan_only = Series("a", {}, np.array([1.0, 2.0]), np.array([math.nan, math.nan]))
    assert not has_data(QueryResult(query(), series=[nan_only]))
    assert has_data(
        QueryResult(query(), series=[nan_only, Series("b", {}, np.array([1.0]), np.array([0.0]))])
    )
    assert has_data(QueryResult(query(), hits=3))
    assert not has_data(QueryResult(query(), hits=0))
    assert not has_data(QueryResult(query(), hits=3, error="boom"))


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.25, "s", "250 ms"),
        (1.5, "s", "1.5 s"),
        (90, "s", "1.5 min"),
        (0.0312, "percentunit", "3.12%"),
        (1250, "reqps", "1.25 K req/s"),
        (3.5, "mps", "3.5 msg/s"),
        (3 * 1024**2, "bytes", "3 MiB"),
        (12.5, "none", "12.5"),
        (54_090, "short", "54.1 K"),
    ],
)
def test_values_are_formatted_in_their_unit(value: float, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_reducers_skip_missing_points() -> None:
    values = np.array([1.0, math.nan, 4.0, math.nan])
    assert reduce_values(values, "lastNotNull") == 4.0
    assert reduce_values(values, "max") == 4.0
    assert reduce_values(values, "mean") == 2.5
    assert math.isnan(reduce_values(np.array([math.nan]), "lastNotNull"))
