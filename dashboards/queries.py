"""Grafana's query side of a dashboard, in Python: resolve its variables, substitute them, expand repeats.

With :mod:`vigil.dashboards.query_runner`, which runs the resulting queries against the real Prometheus and
Elasticsearch, this tells whether a generated dashboard draws data before anyone opens Grafana. Only what
our generated dashboards use is covered, but that part follows Grafana's rules, so a panel that is empty
here is empty in Grafana too.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from vigil.collectors.prometheus_client import PrometheusClient, PrometheusError
from vigil.dashboards.datasources import ELASTICSEARCH, PROMETHEUS
from vigil.dashboards.promql import quote  # a Lucene phrase escapes what a PromQL string does: \ and "

# Grafana's variable syntaxes: $var, [[var]] (deprecated) and ${var} / ${var:format}.
VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?::([^}]+))?\}")
LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(.*),\s*)?(\w+)\s*\)\s*$", re.DOTALL)
PROMQL_REGEX_SPECIALS = re.compile(r"[$^*{}\[\]'+?.()|]")
JS_REGEX_SPECIALS = re.compile(r"[\\^$*+?.()|\[\]{}/]")
DEFAULT_UIDS = {PROMETHEUS.type: PROMETHEUS.uid, ELASTICSEARCH.type: ELASTICSEARCH.uid}


class VariableError(RuntimeError):
    """A query variable could not be resolved (bad query, or Prometheus answered with an error)."""


@dataclass(frozen=True)
class PanelQuery:
    """One target of one (possibly repeated) panel, with the dashboard's variables substituted.

    ``text`` still holds Grafana's time macros (``$__rate_interval``, ``$__interval``, ``$__range``):
    they depend on the time range and step, so :func:`run` fills them in.
    """

    dashboard_uid: str
    panel_id: int
    panel_title: str
    panel_type: str
    unit: str
    ref_id: str
    kind: str  # "prometheus" | "elasticsearch"
    text: str
    legend: str
    instant: bool
    target: Mapping[str, Any]
    max_data_points: int = 1000  # Grafana uses the panel's width in pixels unless the panel sets it


# --- substitution -------------------------------------------------------------------------------------------


def _promql_regex_escape(value: str) -> str:
    # Doubled backslashes: the alternation lands inside a PromQL string literal (Grafana does the same).
    return PROMQL_REGEX_SPECIALS.sub(lambda m: "\\\\" + m.group(0), value.replace("\\", "\\\\\\\\"))


def _format(values: list[str], fmt: str | None, dialect: str) -> str:
    """One variable's values as Grafana formats them for ``dialect`` or an explicit ``${var:fmt}``."""
    if fmt == "raw":
        return ",".join(values)
    if fmt == "regex":
        escaped = [JS_REGEX_SPECIALS.sub(lambda m: "\\" + m.group(0), v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt == "pipe":
        return "|".join(values)
    if fmt == "csv":
        return ",".join(values)
    if fmt == "lucene" or (fmt is None and dialect == "lucene"):
        return values[0] if len(values) == 1 else "(" + " OR ".join(quote(v) for v in values) + ")"
    if len(values) == 1:
        return values[0]
    return "(" + "|".join(_promql_regex_escape(v) for v in values) + ")"


def substitute(
    text: str,
    values: Mapping[str, list[str]],
    *,
    dialect: str = "prometheus",
    rate_interval: str | None = "1m",
    interval: str | None = "15s",
    range_: str | None = "1h",
) -> str:
    """Replace Grafana variables in ``text``; unknown variables (and macros passed as None) stay as written.

    ``dialect`` is ``"prometheus"`` (several values become a regex alternation ``(a|b)``) or ``"lucene"``
    (several values become ``("a" OR "b")``), Grafana's defaults for the two datasources.
    """
    macros = {"__rate_interval": rate_interval, "__interval": interval, "__range": range_}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(5)
        if name in macros:
            macro = macros[name]
            return match.group(0) if macro is None else macro
        if name not in values:
            return match.group(0)
        return _format(list(values[name]), fmt, dialect)

    return VARIABLE.sub(replace, text)


# --- variables ----------------------------------------------------------------------------------------------


def filter_options(options: list[str], regex: str) -> list[str]:
    """Grafana's variable regex: ``/pattern/flags`` or a bare pattern; a capture group picks the value."""
    flags = 0
    slashed = re.fullmatch(r"/(.*)/([gimsuy]*)", regex, re.DOTALL)
    if slashed:
        regex, flags = slashed.group(1), re.IGNORECASE if "i" in slashed.group(2) else 0
    pattern = re.compile(regex, flags)
    kept = []
    for option in options:
        match = pattern.search(option)
        if match:
            groups = match.groupdict()
            picked = groups.get("value") or groups.get("text") or (match.group(1) if match.groups() else None)
            kept.append(picked or option)
    return kept


def _label_values(query: str, *, prometheus_url: str, start: float, end: float, timeout: float) -> list[str]:
    """Values of the label on the series the selector matches in the range, as Grafana's label_values()."""
    parsed = LABEL_VALUES.match(query)
    if not parsed:
        raise VariableError(f"only label_values(...) queries are supported, got {query!r}")
    selector, label = (parsed.group(1) or f'{{{parsed.group(2)}!=""}}').strip(), parsed.group(2)
    try:
        with PrometheusClient(prometheus_url, timeout=timeout) as client:
            found = client.series([selector], start, end)
    except PrometheusError as exc:
        raise VariableError(f"variable query {query!r}: {exc}") from exc
    return [labels[label] for labels in found if label in labels]


def resolve_variables(
    dashboard: Mapping[str, Any],
    *,
    prometheus_url: str,
    timeout: float = 10,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, list[str]]:
    """Every variable's options, as Grafana lists them for ``start``..``end`` (default: the last hour).

    Datasource variables resolve to their current (provisioned) uid. A query variable may use earlier ones.
    """
    end = end or datetime.now(UTC)
    start = start or end - timedelta(hours=1)
    resolved: dict[str, list[str]] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        name, kind = variable["name"], variable.get("type", "query")
        query = variable.get("query", "")
        if isinstance(query, Mapping):  # Grafana 10 may store {"query": ..., "refId": ...}
            query = query.get("query", "")
        if kind == "datasource":
            current = variable.get("current", {}).get("value") or DEFAULT_UIDS.get(query, "")
            resolved[name] = [current] if isinstance(current, str) else list(current)
            continue
        if kind == "query":
            options = _label_values(
                substitute(query, resolved),
                prometheus_url=prometheus_url,
                start=epoch_seconds(start),
                end=epoch_seconds(end),
                timeout=timeout,
            )
        elif kind == "custom":
            options = [part.strip() for part in query.split(",") if part.strip()]
        elif kind in ("constant", "textbox"):
            options = [query]
        else:
            continue
        if variable.get("regex"):
            options = filter_options(options, variable["regex"])
        resolved[name] = sorted(set(options)) if kind == "query" else options
    return resolved


# --- panels -------------------------------------------------------------------------------------------------


def _sections(dashboard: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any] | None, list[Any]]]:
    """(row or None, its panels) in order; a collapsed row keeps its panels in its own ``panels`` list."""
    row: Mapping[str, Any] | None = None
    members: list[Any] = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            if row is not None or members:
                yield row, members
            row, members = panel, list(panel.get("panels", []))
        else:
            members.append(panel)
    if row is not None or members:
        yield row, members


def _repeat_copies(
    panel: Mapping[str, Any], values: Mapping[str, list[str]]
) -> Iterator[tuple[dict[str, Any], dict[str, list[str]]]]:
    """The panel once per value of its repeat variable (with that value pinned), laid out like Grafana."""
    variable = panel.get("repeat")
    if not variable or variable not in values:
        yield copy.deepcopy(dict(panel)), dict(values)
        return
    options = values[variable]
    grid = dict(panel.get("gridPos", {"x": 0, "y": 0, "w": 12, "h": 8}))
    horizontal = panel.get("repeatDirection", "h") == "h" and panel.get("type") != "row"
    per_row = min(len(options), int(panel.get("maxPerRow") or 4)) if horizontal else 1
    width = max(24 // max(per_row, 1), 1) if horizontal else grid.get("w", 12)
    for index, option in enumerate(options):
        pinned = {**values, variable: [option]}
        clone = copy.deepcopy(dict(panel))
        title = substitute(clone.get("title", ""), pinned)
        clone["title"] = title if option in title else f"{title} ({option})"
        if horizontal:
            position = {
                "x": (index % per_row) * width,
                "y": grid.get("y", 0) + (index // per_row) * grid["h"],
            }
        else:
            position = {"x": grid.get("x", 0), "y": grid.get("y", 0) + index * grid.get("h", 8)}
        clone["gridPos"] = {**grid, **position, "w": width}
        yield clone, pinned


def expand_panels(
    dashboard: Mapping[str, Any], values: Mapping[str, list[str]]
) -> list[tuple[dict[str, Any], dict[str, list[str]]]]:
    """Every panel Grafana would draw, rows included, with the variable values each copy sees.

    Collapsed rows are opened (a preview shows everything); repeated rows and panels are expanded.
    """
    expanded: list[tuple[dict[str, Any], dict[str, list[str]]]] = []
    for row, members in _sections(dashboard):
        row_copies = list(_repeat_copies(row, values)) if row is not None else [({}, dict(values))]
        for row_copy, row_values in row_copies:
            if row_copy:
                expanded.append(({k: v for k, v in row_copy.items() if k != "panels"}, row_values))
            for panel in members:
                expanded.extend(_repeat_copies(panel, row_values))
    return expanded


def queries_of(
    panel: Mapping[str, Any], values: Mapping[str, list[str]], *, dashboard_uid: str
) -> list[PanelQuery]:
    """The visible targets of one panel copy, its variables substituted (time macros left for :func:`run`)."""
    panel_source = panel.get("datasource") or {}
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
    queries = []
    for target in panel.get("targets", []):
        if target.get("hide"):
            continue
        source = target.get("datasource") or panel_source
        kind = "elasticsearch" if source.get("type") == ELASTICSEARCH.type else "prometheus"
        raw = target.get("expr", "") if kind == "prometheus" else target.get("query") or "*"
        dialect = "prometheus" if kind == "prometheus" else "lucene"
        legend = target.get("legendFormat", "") if kind == "prometheus" else target.get("alias", "")
        queries.append(
            PanelQuery(
                dashboard_uid=dashboard_uid,
                panel_id=int(panel.get("id", 0)),
                panel_title=panel.get("title", ""),
                panel_type=panel.get("type", ""),
                unit=unit,
                ref_id=target.get("refId", ""),
                kind=kind,
                text=substitute(raw, values, dialect=dialect, rate_interval=None, interval=None, range_=None),
                legend="" if legend == "__auto" else legend,
                instant=bool(target.get("instant")) and not target.get("range"),
                target=target,
                max_data_points=int(panel.get("maxDataPoints") or 1000),
            )
        )
    return queries


def panel_queries(dashboard: Mapping[str, Any], values: Mapping[str, list[str]]) -> list[PanelQuery]:
    """Every visible target of every panel, repeats expanded, in dashboard order."""
    uid = dashboard.get("uid", "")
    return [
        query
        for panel, panel_values in expand_panels(dashboard, values)
        if panel.get("type") != "row"
        for query in queries_of(panel, panel_values, dashboard_uid=uid)
    ]


def epoch_seconds(moment: datetime) -> float:
    """Seconds since the epoch; a naive datetime is taken as UTC, never as the machine's local time."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
