"""Lint generated Grafana dashboards (plain dicts), after grafana/dashboard-linter's rules.

Runs in the unit tests on every generated dashboard, so a query that does not parse, a wrong unit or two
panels drawn on top of each other fail CI instead of turning up as an empty or garbled panel in Grafana.
Dashboard and panel rules live here, query rules in `lint_queries`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from vigil.dashboards import lint_queries
from vigil.dashboards.lint_context import DATASOURCE_VARIABLES, Finding, LintContext, Panel, mapping, mappings
from vigil.dashboards.lint_units import is_grafana_unit, known_units

__all__ = ["RULES", "Finding", "lint"]

RULES: dict[str, str] = {
    "dashboard-uid": "uid is present, at most 40 characters of [a-zA-Z0-9_-]",
    "dashboard-uneditable": "editable is false: the dashboard is generated, edits in the UI would be lost",
    "dashboard-title": "the dashboard has a title",
    "template-datasource": "datasource variables `datasource` (prometheus) and `logs` (elasticsearch) exist",
    "panel-datasource": "panels and targets use datasources as {type, uid: ${variable}} of a matching type",
    "panel-title-description": "every panel has a title and a description",
    "panel-units": "fieldConfig.defaults.unit is a Grafana unit id, required on timeseries/stat/table panels",
    "panel-no-targets": "panels other than text have targets, with unique refIds",
    "target-promql": "every Prometheus query parses as PromQL once Grafana's variables are substituted",
    "target-rate-interval": "rate/irate/increase use the range [$__rate_interval]",
    "target-counter-agg": "counters (_total, _count, _sum, _bucket) are only read through rate/increase/...",
    "target-legend": "range queries aggregated `by (...)` set a legendFormat naming the grouping labels",
    "es-query": "Elasticsearch targets have a Lucene query, a timeField, known metrics and a date_histogram",
    "variable-query": "query variables use label_values(); multi-value variables only in =~ / !~ matchers",
    "panel-overlap": "panels lie within the 24-column grid and do not overlap",
}

GRID_COLUMNS = 24
MAX_UID_LENGTH = 40  # Grafana rejects longer uids
UNIT_REQUIRED_PANEL_TYPES = frozenset({"timeseries", "stat", "gauge", "bargauge", "table"})
PANEL_TYPES_WITHOUT_QUERIES = frozenset({"text", "dashlist", "news", "annolist", "welcome"})
_UID = re.compile(r"[A-Za-z0-9_-]+")
_VARIABLE_UID = re.compile(r"\$\{?(\w+)\}?")


Rule = Callable[[LintContext], Iterator[Finding]]


def _dashboard_uid(ctx: LintContext) -> Iterator[Finding]:
    uid = ctx.dashboard.get("uid")
    if not isinstance(uid, str) or not uid:
        yield ctx.finding("dashboard-uid", "has no uid; set a stable one such as 'vigil-catalog'")
    elif len(uid) > MAX_UID_LENGTH:
        yield ctx.finding(
            "dashboard-uid", f"uid {uid!r} has {len(uid)} characters, at most {MAX_UID_LENGTH} allowed"
        )
    elif not _UID.fullmatch(uid):
        bad = sorted(set(_UID.sub("", uid)))
        yield ctx.finding("dashboard-uid", f"uid {uid!r} has characters {bad} outside [a-zA-Z0-9_-]")


def _dashboard_uneditable(ctx: LintContext) -> Iterator[Finding]:
    if ctx.dashboard.get("editable") is not False:
        editable = ctx.dashboard.get("editable")
        yield ctx.finding(
            "dashboard-uneditable", f"editable is {editable!r}; set it to false (generated from code)"
        )


def _dashboard_title(ctx: LintContext) -> Iterator[Finding]:
    if not str(ctx.dashboard.get("title") or "").strip():
        yield ctx.finding("dashboard-title", "has no title")


def _template_datasource(ctx: LintContext) -> Iterator[Finding]:
    kinds = {panel.kind(target) for panel in ctx.panels for target in panel.targets}
    for kind, name in DATASOURCE_VARIABLES.items():
        variable = ctx.variables.get(name, {})
        if kind in kinds and (variable.get("type"), variable.get("query")) != ("datasource", kind):
            yield ctx.finding(
                "template-datasource",
                f"panels query {kind} but there is no datasource variable {name!r} with query {kind!r}; "
                f"add {{'type': 'datasource', 'name': {name!r}, 'query': {kind!r}}} to templating.list",
            )


def _reference_problem(ctx: LintContext, reference: Any) -> str | None:
    if not isinstance(reference, Mapping) or not reference.get("type") or not reference.get("uid"):
        example = "{'type': 'prometheus', 'uid': '${datasource}'}"
        return f"datasource {reference!r} is not a {{type, uid}} reference like {example}"
    kind, uid = reference["type"], str(reference["uid"])
    variable_match = _VARIABLE_UID.fullmatch(uid)
    if variable_match is None:
        variable = DATASOURCE_VARIABLES.get(kind, "datasource")
        return f"datasource uid {uid!r} is hard-coded; use the variable '${{{variable}}}'"
    name = variable_match.group(1)
    if name == DATASOURCE_VARIABLES.get(kind):
        return None  # the standard variable; template-datasource checks that it exists and selects `kind`
    variable = ctx.variables.get(name, {})
    if variable.get("type") != "datasource":
        return f"datasource uid {uid!r} does not name a datasource variable"
    if variable.get("query") != kind:
        selected = variable.get("query")
        return f"datasource type {kind!r} does not match {uid}, which selects {selected!r} datasources"
    return None


def _panel_datasource(ctx: LintContext) -> Iterator[Finding]:
    for panel in ctx.panels:
        if panel.type in PANEL_TYPES_WITHOUT_QUERIES and not panel.targets:
            continue
        if problem := _reference_problem(ctx, panel.spec.get("datasource")):
            yield ctx.finding("panel-datasource", problem, panel)
        panel_kind = mapping(panel.spec.get("datasource")).get("type")
        for target in panel.targets:
            where = f"target {target.get('refId')}"
            if problem := _reference_problem(ctx, target.get("datasource")):
                yield ctx.finding("panel-datasource", f"{where}: {problem}", panel)
            elif panel_kind and target["datasource"]["type"] != panel_kind:
                kind = target["datasource"]["type"]
                yield ctx.finding(
                    "panel-datasource",
                    f"{where}: type {kind!r} differs from the panel's {panel_kind!r}",
                    panel,
                )
    for variable in ctx.variables.values():
        if variable.get("type") == "query" and (
            problem := _reference_problem(ctx, variable.get("datasource"))
        ):
            yield ctx.finding("panel-datasource", f"variable {variable.get('name')!r}: {problem}")
    for annotation in ctx.annotations:
        if not annotation.get("builtIn") and (
            problem := _reference_problem(ctx, annotation.get("datasource"))
        ):
            yield ctx.finding("panel-datasource", f"annotation {annotation.get('name')!r}: {problem}")


def _panel_title_description(ctx: LintContext) -> Iterator[Finding]:
    for panel in ctx.panels:
        for field in ("title", "description"):
            if not str(panel.spec.get(field) or "").strip():
                yield ctx.finding(
                    "panel-title-description",
                    f"{panel.type} panel {panel.spec.get('id')} has no {field}",
                    panel,
                )


def _panel_units(ctx: LintContext) -> Iterator[Finding]:
    for panel in ctx.panels:
        field_config = mapping(panel.spec.get("fieldConfig"))
        unit = mapping(field_config.get("defaults")).get("unit")
        override_units = [
            prop.get("value")
            for override in mappings(field_config.get("overrides"))
            for prop in mappings(override.get("properties"))
            if prop.get("id") == "unit"
        ]
        if not unit and panel.type in UNIT_REQUIRED_PANEL_TYPES:
            yield ctx.finding(
                "panel-units",
                "has no fieldConfig.defaults.unit; set e.g. 'reqps', 's', 'percentunit', 'short'",
                panel,
            )
        for value in ([unit] if unit else []) + override_units:
            if not is_grafana_unit(value):
                close = difflib.get_close_matches(str(value), known_units(), n=3)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                yield ctx.finding("panel-units", f"unit {value!r} is not a Grafana unit id{hint}", panel)


def _panel_no_targets(ctx: LintContext) -> Iterator[Finding]:
    for panel in ctx.panels:
        if not panel.targets and panel.type not in PANEL_TYPES_WITHOUT_QUERIES:
            yield ctx.finding("panel-no-targets", f"{panel.type} panel has no targets", panel)
        ref_ids = [target.get("refId") for target in panel.targets]
        if any(not ref_id for ref_id in ref_ids) or len(set(ref_ids)) != len(ref_ids):
            yield ctx.finding("panel-no-targets", f"refIds {ref_ids} must be present and unique", panel)


def _grid_rectangle(panel: Panel) -> tuple[int, int, int, int] | None:
    grid_pos = mapping(panel.spec.get("gridPos"))
    values = [grid_pos.get(key) for key in ("x", "y", "w", "h")]
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in values):
        return None
    x, y, w, h = values
    return x, y, w, h


def _describe(rectangle: tuple[int, int, int, int]) -> str:
    x, y, w, h = rectangle
    return f"(x={x}, y={y}, w={w}, h={h})"


def _panel_overlap(ctx: LintContext) -> Iterator[Finding]:
    placed: list[tuple[Panel, tuple[int, int, int, int]]] = []
    for panel in ctx.items:
        rectangle = _grid_rectangle(panel)
        if rectangle is None:
            yield ctx.finding(
                "panel-overlap", f"gridPos {panel.spec.get('gridPos')!r} needs integer x, y, w, h", panel
            )
            continue
        x, y, w, h = rectangle
        if x < 0 or y < 0 or w < 1 or h < 1 or x + w > GRID_COLUMNS:
            yield ctx.finding(
                "panel-overlap",
                f"gridPos {_describe(rectangle)} lies outside the {GRID_COLUMNS}-column grid",
                panel,
            )
        for other, other_rectangle in placed:
            ox, oy, ow, oh = other_rectangle
            same_grid = other.layout_group == panel.layout_group
            if same_grid and x < ox + ow and ox < x + w and y < oy + oh and oy < y + h:
                where = f"{other.type} {other.title!r} {_describe(other_rectangle)}"
                yield ctx.finding("panel-overlap", f"gridPos {_describe(rectangle)} overlaps {where}", panel)
        placed.append((panel, rectangle))


_CHECKS: dict[str, Rule] = {
    "dashboard-uid": _dashboard_uid,
    "dashboard-uneditable": _dashboard_uneditable,
    "dashboard-title": _dashboard_title,
    "template-datasource": _template_datasource,
    "panel-datasource": _panel_datasource,
    "panel-title-description": _panel_title_description,
    "panel-units": _panel_units,
    "panel-no-targets": _panel_no_targets,
    "target-promql": lint_queries.target_promql,
    "target-rate-interval": lint_queries.target_rate_interval,
    "target-counter-agg": lint_queries.target_counter_agg,
    "target-legend": lint_queries.target_legend,
    "es-query": lint_queries.es_query,
    "variable-query": lint_queries.variable_query,
    "panel-overlap": _panel_overlap,
}


def lint(dashboard: Mapping[str, Any]) -> list[Finding]:
    """All findings for one dashboard dict, rule by rule in the order of RULES; [] means it is clean."""
    ctx = LintContext.of(dashboard)
    return [finding for rule in RULES for finding in _CHECKS[rule](ctx)]
