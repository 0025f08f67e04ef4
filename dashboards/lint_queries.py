"""Query rules of the dashboard linter: PromQL targets, Elasticsearch targets and template variables."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import promql_parser

from vigil.dashboards import lint_promql
from vigil.dashboards.lint_context import Finding, LintContext, mapping, mappings

ES_METRIC_TYPES = frozenset(
    {"count", "logs", "avg", "sum", "max", "min", "cardinality", "percentiles", "raw_data"}
)
ES_DOCUMENT_METRICS = frozenset({"logs", "raw_data"})  # return documents, not buckets
_LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def _parsed(ctx: LintContext, expr: str) -> promql_parser.Expr | str:
    return lint_promql.parse(lint_promql.substitute_variables(expr, variables=ctx.variables))


def target_promql(ctx: LintContext) -> Iterator[Finding]:
    for panel, where, expr in ctx.prometheus_queries():
        if not expr.strip():
            yield ctx.finding("target-promql", f"{where} has an empty expr", panel)
            continue
        for name in lint_promql.unknown_variables(expr, variables=ctx.variables):
            yield ctx.finding(
                "target-promql", f"{where}: ${name} is not a dashboard variable in `{expr}`", panel
            )
        result = _parsed(ctx, expr)
        if isinstance(result, str):
            yield ctx.finding("target-promql", f"{where}: `{expr}` is not valid PromQL: {result}", panel)


def target_rate_interval(ctx: LintContext) -> Iterator[Finding]:
    for panel, where, expr in ctx.prometheus_queries():
        for call in lint_promql.fixed_rate_ranges(expr):
            yield ctx.finding(
                "target-rate-interval",
                f"{where}: {call} in `{expr}` uses a fixed range; use [$__rate_interval], which "
                "Grafana keeps at least four scrape intervals wide",
                panel,
            )


def target_counter_agg(ctx: LintContext) -> Iterator[Finding]:
    for panel, where, expr in ctx.prometheus_queries():
        ast = _parsed(ctx, expr)
        if isinstance(ast, str):
            continue  # target-promql reports it
        for counter in lint_promql.counters_outside_rate(ast):
            yield ctx.finding(
                "target-counter-agg",
                f"{where}: counter {counter} is used outside rate/irate/increase/resets in `{expr}`; "
                f"read it as rate({counter}[$__rate_interval])",
                panel,
            )


def _is_range_query(target: Mapping[str, Any]) -> bool:
    return bool(target.get("range", not target.get("instant", False)))


def target_legend(ctx: LintContext) -> Iterator[Finding]:
    for panel in ctx.panels:
        for target in panel.targets:
            expr = str(target.get("expr") or "")
            if panel.kind(target) != "prometheus" or not _is_range_query(target):
                continue
            ast = _parsed(ctx, expr)
            if isinstance(ast, str):
                continue
            labels, uses_without = lint_promql.grouping_labels(ast)
            if not labels and not uses_without:
                continue
            where, legend = f"target {target.get('refId')}", str(target.get("legendFormat") or "")
            wanted = " ".join(f"{{{{{label}}}}}" for label in sorted(labels)) or "{{label}}"
            if not legend or legend == "__auto":
                message = (
                    f"{where}: `{expr}` returns a series per group but has no legendFormat; set '{wanted}'"
                )
                yield ctx.finding("target-legend", message, panel)
            elif labels and not labels & set(_LEGEND_LABEL.findall(legend)):
                message = (
                    f"{where}: legendFormat {legend!r} names no grouping label of `{expr}`; use '{wanted}'"
                )
                yield ctx.finding("target-legend", message, panel)


def _lucene_problem(query: str) -> str | None:
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', "", query)
    if '"' in unquoted:
        return "has an unclosed double quote"
    depth = 0
    for character in unquoted.replace("\\(", "").replace("\\)", ""):
        depth += {"(": 1, ")": -1}.get(character, 0)
        if depth < 0:
            return "closes a parenthesis it never opened"
    return "has an unclosed parenthesis" if depth else None


def _es_target_problems(target: Mapping[str, Any]) -> Iterator[str]:
    query = target.get("query")
    if not isinstance(query, str) or not query.strip():
        yield "Lucene query is empty; use e.g. 'service.name:\"catalog\"' ('*' matches every document)"
    elif problem := _lucene_problem(query):
        yield f"Lucene query {query!r} {problem}"
    time_field = target.get("timeField")
    if not time_field:
        yield "timeField is missing; set '@timestamp'"
    metric_types = [str(metric.get("type")) for metric in mappings(target.get("metrics"))]
    if not metric_types:
        yield "metrics are missing; use [{'id': '1', 'type': 'count'}] or a 'logs' metric"
    for unknown in [kind for kind in metric_types if kind not in ES_METRIC_TYPES]:
        yield f"metric type {unknown!r} is not one of {sorted(ES_METRIC_TYPES)}"
    if any(kind not in ES_DOCUMENT_METRICS for kind in metric_types):
        aggregations = mappings(target.get("bucketAggs"))
        kinds = [str(aggregation.get("type")) for aggregation in aggregations]
        if not kinds or kinds[-1] != "date_histogram":
            yield f"bucketAggs {kinds} must end in a date_histogram on the time field"
        elif time_field and aggregations[-1].get("field") not in (None, time_field):
            field = aggregations[-1].get("field")
            yield f"date_histogram field {field!r} is not the timeField {time_field!r}"


def es_query(ctx: LintContext) -> Iterator[Finding]:
    for panel in ctx.panels:
        for target in panel.targets:
            if panel.kind(target) == "elasticsearch":
                for problem in _es_target_problems(target):
                    yield ctx.finding("es-query", f"target {target.get('refId')}: {problem}", panel)


def _variable_query(variable: Mapping[str, Any]) -> str:
    query = variable.get("query")
    return str(query.get("query") or "") if isinstance(query, Mapping) else str(query or "")


def _variable_problems(ctx: LintContext, variable: Mapping[str, Any]) -> Iterator[str]:
    query = _variable_query(variable)
    parts = lint_promql.parse_label_values(query)
    if parts is None:
        yield f"query {query!r} is not label_values(selector, label) or label_values(label)"
        return
    selector, label = parts
    if not re.fullmatch(r"[a-zA-Z_]\w*", label):
        yield f"label {label!r} in {query!r} is not a label name"
    if selector and isinstance(result := _parsed(ctx, selector), str):
        yield f"selector `{selector}` in {query!r} is not valid PromQL: {result}"


def _prometheus_query_variables(ctx: LintContext) -> dict[str, Mapping[str, Any]]:
    return {
        name: variable
        for name, variable in ctx.variables.items()
        if variable.get("type") == "query"
        and mapping(variable.get("datasource")).get("type", "prometheus") == "prometheus"
    }


def variable_query(ctx: LintContext) -> Iterator[Finding]:
    query_variables = _prometheus_query_variables(ctx)
    for name, variable in query_variables.items():
        for problem in _variable_problems(ctx, variable):
            yield ctx.finding("variable-query", f"variable {name!r}: {problem}")
    # A repeated panel gets one value per copy, so its repeat variable may be matched with `=`.
    queries = [
        (panel, where, expr, panel.single_valued if panel else frozenset())
        for panel, where, expr in ctx.prometheus_queries()
    ]
    queries += [
        (None, f"variable {name!r}", _variable_query(v), frozenset()) for name, v in query_variables.items()
    ]
    multi_valued = {name for name, v in ctx.variables.items() if v.get("multi") or v.get("includeAll")}
    for panel, where, expr, single_valued in queries:
        for name, literal in lint_promql.variables_in_equality_matchers(expr):
            if name in multi_valued - single_valued:
                yield ctx.finding(
                    "variable-query",
                    f"{where}: multi-value variable ${name} is matched with = in {literal} of `{expr}`; "
                    "Grafana substitutes a regex like (a|b) for several values or All, so use =~",
                    panel,
                )
