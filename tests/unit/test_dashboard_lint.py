"""The dashboard linter: a clean hand-built dashboard, and one broken variant per rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from vigil.dashboards.lint import RULES, Finding, lint
from vigil.dashboards.lint_promql import (
    counters_outside_rate,
    fixed_rate_ranges,
    grouping_labels,
    parse,
    parse_label_values,
    substitute_variables,
)

PROMETHEUS = {"type": "prometheus", "uid": "${datasource}"}
LOGS = {"type": "elasticsearch", "uid": "${logs}"}
REQUESTS = "http_server_request_duration_seconds"


def prometheus_target(
    expr: str, legend: str = "", ref_id: str = "A", *, instant: bool = False
) -> dict[str, Any]:
    return {
        "datasource": dict(PROMETHEUS),
        "refId": ref_id,
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
        "editorMode": "code",
    }


def panel(
    title: str, kind: str, grid: tuple[int, int, int, int], targets: list[Any], **extra: Any
) -> dict[str, Any]:
    x, y, w, h = grid
    datasource = LOGS if targets and "query" in targets[0] else PROMETHEUS
    spec: dict[str, Any] = {
        "id": abs(hash(title)) % 1000,
        "type": kind,
        "title": title,
        "description": f"What {title} shows and why it matters.",
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "datasource": dict(datasource),
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": extra.pop("unit", "short")}, "overrides": []},
    }
    return spec | extra


def row(title: str, y: int, *, panels: list[Any] | None = None) -> dict[str, Any]:
    collapsed = panels is not None
    return {
        "type": "row",
        "title": title,
        "id": y + 900,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "collapsed": collapsed,
        "panels": panels or [],
    }


def good_dashboard() -> dict[str, Any]:
    request_rate = (
        f'sum by (route) (rate({REQUESTS}_count{{service="$service", route=~"$route"}}[$__rate_interval]))'
    )
    latency = (
        f"histogram_quantile(0.95, sum by (le) (rate({REQUESTS}_bucket"
        f'{{service="$service", route=~"${{route:regex}}"}}[$__rate_interval])))'
    )
    errors = (
        f'sum(rate({REQUESTS}_count{{service="$service", code=~"5.."}}[$__rate_interval])) '
        f'/ sum(rate({REQUESTS}_count{{service="$service"}}[$__rate_interval]))'
    )
    by_level = {
        "datasource": dict(LOGS),
        "refId": "A",
        "query": 'service.name:"catalog" AND log.level:(error OR critical)',
        "timeField": "@timestamp",
        "metrics": [{"id": "1", "type": "count"}],
        "bucketAggs": [
            {"id": "2", "type": "terms", "field": "log.level", "settings": {"size": "10"}},
            {"id": "3", "type": "date_histogram", "field": "@timestamp", "settings": {"interval": "auto"}},
        ],
    }
    error_logs = {
        "datasource": dict(LOGS),
        "refId": "A",
        "query": 'service.name:"catalog" AND log.level:error',
        "timeField": "@timestamp",
        "metrics": [{"id": "1", "type": "logs", "settings": {"limit": "100"}}],
        "bucketAggs": [],
    }
    route_latency = f'sum(rate({REQUESTS}_sum{{route="$route"}}[$__rate_interval]))'
    logs_row = [
        panel("Error logs", "logs", (0, 22, 24, 10), [error_logs]),
        {
            "id": 99,
            "type": "text",
            "title": "About",
            "description": "How to read this dashboard.",
            "gridPos": {"x": 0, "y": 32, "w": 24, "h": 3},
            "options": {"mode": "markdown", "content": "..."},
        },
    ]
    return {
        "uid": "vigil-catalog",
        "title": "Catalog",
        "tags": ["vigil"],
        "editable": False,
        "time": {"from": "now-1h", "to": "now"},
        "links": [],
        "templating": {
            "list": [
                {"type": "datasource", "name": "datasource", "query": "prometheus"},
                {"type": "datasource", "name": "logs", "query": "elasticsearch"},
                {"type": "custom", "name": "service", "query": "catalog", "current": {"value": "catalog"}},
                {
                    "type": "query",
                    "name": "route",
                    "datasource": dict(PROMETHEUS),
                    "query": f'label_values({REQUESTS}_count{{service="$service"}}, route)',
                    "multi": True,
                    "includeAll": True,
                    "allValue": ".+",
                },
            ]
        },
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "name": "Annotations",
                },
                {
                    "datasource": dict(PROMETHEUS),
                    "enable": True,
                    "expr": 'vigil_incident_open{service="catalog"}',
                    "name": "vigil incidents",
                },
            ]
        },
        "panels": [
            row("Traffic", 0),
            panel(
                "Request rate",
                "timeseries",
                (0, 1, 12, 8),
                [prometheus_target(request_rate, "{{route}}")],
                unit="reqps",
            ),
            panel("Latency p95", "timeseries", (12, 1, 12, 8), [prometheus_target(latency, "p95")], unit="s"),
            panel(
                "Error ratio",
                "stat",
                (0, 9, 6, 4),
                [prometheus_target(errors, instant=True)],
                unit="percentunit",
            ),
            panel("Errors by level", "timeseries", (6, 9, 18, 4), [by_level]),
            # Repeated per route: `$route` is one value in each copy, so `=` is right here.
            panel(
                "Latency $route",
                "timeseries",
                (0, 13, 24, 8),
                [prometheus_target(route_latency, "{{route}}")],
                unit="s",
                repeat="route",
                repeatDirection="h",
                maxPerRow=4,
            ),
            row("Logs", 21, panels=logs_row),
        ],
    }


def find_panel(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    for spec in dashboard["panels"]:
        if spec["title"] == title:
            return spec
        for nested in spec.get("panels", []):
            if nested["title"] == title:
                return nested
    raise KeyError(title)


def expr_of(dashboard: dict[str, Any], title: str) -> str:
    return str(find_panel(dashboard, title)["targets"][0]["expr"])


def set_expr(title: str, expr: Callable[[str], str]) -> Callable[[dict[str, Any]], None]:
    def mutate(dashboard: dict[str, Any]) -> None:
        find_panel(dashboard, title)["targets"][0]["expr"] = expr(expr_of(dashboard, title))

    return mutate


def set_field(title: str, path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set (or with value=None delete) a dotted path inside a panel, e.g. 'targets.0.query'."""

    def mutate(dashboard: dict[str, Any]) -> None:
        node: Any = find_panel(dashboard, title)
        *parents, last = path.split(".")
        for parent in parents:
            node = node[int(parent)] if isinstance(node, list) else node[parent]
        key: Any = int(last) if isinstance(node, list) else last
        if value is None:
            del node[key]
        else:
            node[key] = value

    return mutate


def set_dashboard(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(dashboard: dict[str, Any]) -> None:
        if value is None:
            del dashboard[key]
        else:
            dashboard[key] = value

    return mutate


def set_variable(name: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(dashboard: dict[str, Any]) -> None:
        variables = dashboard["templating"]["list"]
        if key == "":
            variables[:] = [variable for variable in variables if variable["name"] != name]
        else:
            next(variable for variable in variables if variable["name"] == name)[key] = value

    return mutate


def duplicate_target(dashboard: dict[str, Any]) -> None:
    targets = find_panel(dashboard, "Latency p95")["targets"]
    targets.append(dict(targets[0]))


# (rule, mutation, text the message must contain)
BROKEN_VARIANTS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("dashboard-uid", set_dashboard("uid", "vigil catalog!"), "[' ', '!'] outside"),
    ("dashboard-uid", set_dashboard("uid", "v" * 41), "41 characters"),
    ("dashboard-uid", set_dashboard("uid", None), "has no uid"),
    ("dashboard-uneditable", set_dashboard("editable", True), "editable is True"),
    ("dashboard-uneditable", set_dashboard("editable", None), "editable is None"),
    ("dashboard-title", set_dashboard("title", " "), "has no title"),
    ("template-datasource", set_variable("logs", "", None), "'logs' with query 'elasticsearch'"),
    (
        "template-datasource",
        set_variable("datasource", "query", "loki"),
        "'datasource' with query 'prometheus'",
    ),
    (
        "panel-datasource",
        set_field("Request rate", "datasource", "Prometheus"),
        "'Prometheus' is not a {type, uid}",
    ),
    (
        "panel-datasource",
        set_field("Request rate", "targets.0.datasource.uid", "vigil-prometheus"),
        "hard-coded",
    ),
    ("panel-datasource", set_field("Request rate", "datasource.uid", "${logs}"), "selects 'elasticsearch'"),
    ("panel-datasource", set_field("Request rate", "targets.0.datasource.uid", "${nope}"), "'${nope}'"),
    ("panel-title-description", set_field("Latency p95", "description", ""), "has no description"),
    ("panel-title-description", set_field("About", "title", None), "has no title"),
    ("panel-units", set_field("Request rate", "fieldConfig.defaults.unit", "req/s"), "'req/s'"),
    ("panel-units", set_field("Error logs", "fieldConfig.defaults.unit", "secs"), "'secs'"),
    ("panel-units", set_field("Error ratio", "fieldConfig.defaults.unit", None), "has no fieldConfig"),
    ("panel-no-targets", set_field("Latency p95", "targets", []), "timeseries panel has no targets"),
    ("panel-no-targets", duplicate_target, "['A', 'A']"),
    ("target-promql", set_expr("Request rate", lambda e: e[:-1]), "unclosed left parenthesis"),
    ("target-promql", set_expr("Latency p95", lambda e: e.replace("$service", "$servce")), "$servce"),
    ("target-promql", set_expr("Error ratio", lambda e: e.replace("sum(", "summ(", 1)), "summ"),
    ("target-rate-interval", set_expr("Latency p95", lambda e: e.replace("$__rate_interval", "5m")), "[5m]"),
    ("target-counter-agg", set_expr("Error ratio", lambda e: f"{e} + sum(x_total)"), "x_total"),
    (
        "target-counter-agg",
        set_expr("Latency p95", lambda e: e.replace("rate(", "(").replace("[$__rate_interval]", "")),
        "_bucket",
    ),
    ("target-legend", set_field("Request rate", "targets.0.legendFormat", ""), "'{{route}}'"),
    ("target-legend", set_field("Request rate", "targets.0.legendFormat", "requests"), "'requests'"),
    ("es-query", set_field("Errors by level", "targets.0.query", ""), "Lucene query is empty"),
    ("es-query", set_field("Error logs", "targets.0.query", "log.level:(error"), "unclosed parenthesis"),
    ("es-query", set_field("Errors by level", "targets.0.metrics.0.type", "median"), "'median'"),
    ("es-query", set_field("Errors by level", "targets.0.bucketAggs.1.type", "histogram"), "date_histogram"),
    ("es-query", set_field("Errors by level", "targets.0.timeField", None), "timeField is missing"),
    ("variable-query", set_variable("route", "query", "query_result(up)"), "'query_result(up)'"),
    (
        "variable-query",
        set_variable("route", "query", f'label_values({REQUESTS}{{a="b", route)'),
        "not valid PromQL",
    ),
    ("variable-query", set_expr("Request rate", lambda e: e.replace('=~"$route"', '="$route"')), '"$route"'),
    (
        "panel-overlap",
        set_field("Error ratio", "gridPos.y", 5),
        "(x=0, y=5, w=6, h=4) overlaps timeseries 'Request rate' (x=0, y=1",
    ),
    ("panel-overlap", set_field("Latency p95", "gridPos.w", 16), "outside the 24-column grid"),
    ("panel-overlap", set_field("Error logs", "gridPos", None), "needs integer x, y, w, h"),
]


def test_good_dashboard_has_no_findings() -> None:
    assert lint(good_dashboard()) == []


def test_every_rule_has_a_broken_variant() -> None:
    assert {rule for rule, _, _ in BROKEN_VARIANTS} == set(RULES)


@pytest.mark.parametrize(
    ("rule", "mutate", "expected"),
    BROKEN_VARIANTS,
    ids=[f"{rule}-{index}" for index, (rule, _, _) in enumerate(BROKEN_VARIANTS)],
)
def test_broken_variant_gives_exactly_that_rule(
    rule: str, mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    dashboard = good_dashboard()
    mutate(dashboard)
    findings = lint(dashboard)
    assert [finding.rule for finding in findings] == [rule], findings
    assert expected in findings[0].message
    assert findings[0].dashboard == dashboard.get("uid", "")


def test_panel_findings_name_the_panel() -> None:
    dashboard = good_dashboard()
    set_expr("Latency p95", lambda e: e.replace("$__rate_interval", "5m"))(dashboard)
    [finding] = lint(dashboard)
    assert finding == Finding(
        dashboard="vigil-catalog",
        panel="Latency p95",
        rule="target-rate-interval",
        message=finding.message,
    )
    assert finding.message.startswith("panel 'Latency p95': target A: rate(...[5m])")
    assert "histogram_quantile(0.95" in finding.message


def test_collapsed_row_panels_are_linted_and_expanded_rows_work_the_same() -> None:
    dashboard = good_dashboard()
    logs_row = dashboard["panels"].pop()
    dashboard["panels"] += [logs_row | {"collapsed": False, "panels": []}, *logs_row["panels"]]
    assert lint(dashboard) == []
    set_field("About", "gridPos.y", 25)(dashboard)
    assert [finding.rule for finding in lint(dashboard)] == ["panel-overlap"]


def test_malformed_input_is_reported_not_raised() -> None:
    rules = {
        finding.rule
        for finding in lint(
            {"panels": [{"type": "timeseries", "targets": [{"expr": "sum("}], "gridPos": 3}, "x"]}
        )
    }
    assert {"dashboard-uid", "dashboard-title", "panel-units", "target-promql", "panel-overlap"} <= rules


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("rate(x[$__rate_interval])", "rate(x[1m])"),
        ('x{route=~"${route:regex}", service="$service"}', 'x{route=~".+", service="value"}'),
        ("topk($n, x) > $__range_s", "topk(5, x) > 60"),
        ('label_replace(x, "a", "$1", "b", "(.*)")', 'label_replace(x, "a", "$1", "b", "(.*)")'),
        ("sum by ($group) (x)", "sum by (value) (x)"),
    ],
)
def test_variables_are_substituted_like_grafana(expr: str, expected: str) -> None:
    variables = {
        "route": {"type": "query", "multi": True},
        "service": {"type": "query"},
        "n": {"type": "custom", "current": {"value": "5"}},
        "group": {"type": "custom", "current": {"value": ["a", "b"]}},
    }
    assert substitute_variables(expr, variables=variables) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("sum(increase(x_total[$__range]))", []),
        ("rate(x_total[${__rate_interval}]) / irate(y_total[1m])", ["irate(...[1m])"]),
        ("rate(x_total[$__interval])", ["rate(...[$__interval])"]),
        ("max_over_time(rate(x_total[$__rate_interval])[1h:5m])", []),
        ("increase(rate(x_total[$__rate_interval])[1h:])", ["increase(...[1h:])"]),
    ],
)
def test_fixed_rate_ranges(expr: str, expected: list[str]) -> None:
    assert fixed_rate_ranges(expr) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("label_values(route)", ("", "route")),
        ('label_values(x_count{a="1", b=~"$c"}, route)', ('x_count{a="1", b=~"$c"}', "route")),
        ("metrics(x_.*)", None),
    ],
)
def test_parse_label_values(query: str, expected: tuple[str, str] | None) -> None:
    assert parse_label_values(query) == expected


@pytest.mark.parametrize(
    ("expr", "labels", "uses_without"),
    [
        ("count(count by (incident) (x)) or vector(0)", set(), False),
        ("histogram_quantile(0.9, sum by (le, route) (rate(x_bucket[1m])))", {"route"}, False),
        ("topk(5, sum by (route) (rate(x_total[1m])))", {"route"}, False),
        (
            "sum by (route) (rate(a_total[1m])) / on (route) sum by (route) (rate(b_total[1m]))",
            {"route"},
            False,
        ),
        ("-(sum without (instance) (x))", set(), True),
        ("rate(x_total[1m])", set(), False),
    ],
)
def test_grouping_labels_follow_the_result(expr: str, labels: set[str], uses_without: bool) -> None:
    assert grouping_labels(parse(expr)) == (labels, uses_without)


@pytest.mark.parametrize(
    ("expr", "counters"),
    [
        ('sum(pg_stat_activity_count{state="active"})', []),  # postgres_exporter's gauge
        ('sum(db_client_connection_count{state="used"})', []),  # OpenTelemetry's UpDownCounter
        ("sum(requests_count)", ["requests_count"]),
        ("sum(rate(requests_count[1m]))", []),
    ],
)
def test_gauges_named_like_counters_may_be_read_directly(expr: str, counters: list[str]) -> None:
    assert counters_outside_rate(parse(expr)) == counters
