"""What every vigil dashboard shares: variables, links, and turning grafanalib objects into today's JSON.

grafanalib writes the model Grafana had around version 6 (``rows``, ``style``, ``span``, nulls for every
unset option, schemaVersion 12). Grafana would migrate that on load, which makes the stored JSON differ
from what Grafana shows and saves. :func:`to_json` drops what Grafana 10/11 no longer reads and declares
the schema version the panels are written for, so the files are what Grafana keeps.
"""

from __future__ import annotations

import json
from typing import Any

from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

from vigil.dashboards.datasources import ELASTICSEARCH, PROMETHEUS, Datasource

SCHEMA_VERSION = 39  # Grafana 10.4 / 11
OVERVIEW_UID = "vigil-overview"
INFRASTRUCTURE_UID = "vigil-infrastructure"
# Keys grafanalib emits that the current model has replaced or ignores.
_LEGACY_KEYS = {
    "rows",
    "style",
    "sharedCrosshair",
    "hideControls",
    "span",
    "minSpan",
    "height",
    "error",
    "columns",  # the old table panel's
    "fontSize",
}
_EMPTY_OK = {
    "steps",
    "calcs",
    "overrides",
    "mappings",
    "panels",
    "list",
    "links",
    "tags",
    "targets",
    "options",
}


def service_uid(service: str) -> str:
    """A service's dashboard; alert links (``dashboard_url``) name it the same way."""
    return f"vigil-{service}"


def datasource_variables() -> list[g.Template]:
    return [_datasource_variable(PROMETHEUS, "Metrics"), _datasource_variable(ELASTICSEARCH, "Logs")]


def _datasource_variable(ds: Datasource, label: str) -> g.Template:
    variable = g.Template(
        name=ds.variable, query=ds.type, type="datasource", label=label, default=ds.name, refresh=1
    )
    # The current value names the provisioned uid, so the dashboard opens on the right datasource.
    variable._current = {"selected": True, "text": ds.name, "value": ds.uid}
    return variable


def query_variable(name: str, selector: str, label_name: str, *, label: str) -> g.Template:
    """A multi-value variable listing the values of ``label_name`` on ``selector`` (All by default)."""
    query = f"label_values({selector}, {label_name})"
    variable = g.Template(
        name=name,
        label=label,
        query=query,
        dataSource=PROMETHEUS.ref(),
        includeAll=True,
        multi=True,
        allValue=".+",
        default="$__all",
        refresh=2,  # on time range change: routes and signals come and go
        sort=1,
    )
    variable._current = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return variable


def dashboard_link(title: str, uid: str) -> g.DashboardLink:
    return g.DashboardLink(title=title, type="link", uri=f"/d/{uid}", keepTime=True, icon="dashboard")


def dashboard(
    *,
    uid: str,
    title: str,
    description: str,
    tags: list[str],
    panels: list[Any],
    variables: list[g.Template],
    annotations: list[dict[str, Any]],
    links: list[g.DashboardLink],
) -> dict[str, Any]:
    built = g.Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=tags,
        panels=panels,
        editable=False,
        graphTooltip=g.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
        refresh="30s",
        time=g.Time("now-1h", "now"),
        templating=g.Templating(list=variables),
        annotations=g.Annotations(list=[_builtin_annotation(), *annotations]),
        links=links,
        timezone="browser",
    )
    return to_json(built)


def incident_annotation(expr: str) -> dict[str, Any]:
    """vigil's incidents on every time axis: ``vigil_incident_open`` is 1 while an incident is open."""
    return {
        "datasource": PROMETHEUS.ref(),
        "enable": True,
        "expr": expr,
        "iconColor": "red",
        "name": "vigil incidents",
        "step": "30s",
        "tagKeys": "service,severity",
        "titleFormat": "vigil incident {{incident}}: {{headline}}",
        "textFormat": "likely cause: {{likely_cause}}",
    }


def _builtin_annotation() -> dict[str, Any]:
    return {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }


def to_json(built: g.Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana 10/11 stores it: no legacy keys, no nulls, today's schema version."""
    raw = json.loads(json.dumps(built.to_json_data(), cls=DashboardEncoder))
    cleaned: dict[str, Any] = _clean(raw)
    for variable in cleaned["templating"]["list"]:
        for key in ("auto", "auto_count", "auto_min", "useTags"):  # interval variables' and Grafana 6's
            variable.pop(key, None)
        if variable["type"] == "query":
            variable["definition"] = variable["query"]  # what Grafana's variable editor shows
    cleaned["schemaVersion"] = SCHEMA_VERSION
    cleaned["version"] = 1
    cleaned.pop("id", None)  # Grafana assigns ids per instance; uid is the stable identity
    return cleaned


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in _LEGACY_KEYS or (item is None and key != "value"):
                continue  # a threshold's base step keeps "value": null, as Grafana writes it
            item = _clean(item)
            if item in ({}, []) and key not in _EMPTY_OK:
                continue  # an empty option is Grafana's default anyway
            out[key] = item
        return out
    if isinstance(value, list):
        return [_clean(item) for item in value]
    return value


def dumps(dashboard_json: dict[str, Any]) -> str:
    """Deterministic text: sorted keys and a fixed indent, so a diff shows only what changed."""
    return json.dumps(dashboard_json, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
