"""The overview: every service at a glance, SLO status, open incidents, queues, links to each service's
dashboard and the infrastructure's."""

from __future__ import annotations

from typing import Any

from vigil.alerts.prometheus_rules import slo_events
from vigil.dashboards import exporters as x
from vigil.dashboards import panels as p
from vigil.dashboards import promql as q
from vigil.dashboards.common import (
    INFRASTRUCTURE_UID,
    OVERVIEW_UID,
    dashboard,
    dashboard_link,
    datasource_variables,
    incident_annotation,
    service_uid,
)
from vigil.dashboards.sections import PAGE_BURN_RATE, open_incidents
from vigil.system import SLO, System


def _seconds(value: float) -> str:
    return f"{value * 1000:g} ms" if value < 1 else f"{value:g} s"


class _Services:
    """The system's services' HTTP series, grouped by its service label."""

    def __init__(self, system: System) -> None:
        t = system.telemetry
        self.label = t.service_label
        # Only the system's services: Prometheus may scrape others with the same metric names.
        ours = q.one_of(self.label, system.service_names)
        own = (t.selector, ours)
        errors = {t.http.status_label: t.http.server_error}
        self.requests = q.rate(q.selector(f"{t.http.server_duration}_count", *own), by=self.label)
        server_errors = q.rate(q.selector(f"{t.http.server_duration}_count", *own, errors), by=self.label)
        # `or 0 * total`: a service without any 5xx reads 0, not a blank.
        self.error_ratio = f"({server_errors} or 0 * {self.requests}) / {self.requests}"
        self.p99 = q.quantile(0.99, q.selector(f"{t.http.server_duration}_bucket", *own), by=self.label)
        # Prometheus' own ``up`` of each replica: a crashed service's series vanish, this does not.
        self.replicas_up = f"avg by ({self.label}) ({q.selector('up', *own)})"
        self.scores = f"max by ({self.label}) ({q.selector('vigil_anomaly_score', ours)})"
        incidents = "count by (service) (vigil_incident_open)"
        if self.label != "service":  # incidents name the service in `service`: join on the system's label
            renamed = f'label_replace(vigil_incident_open, "{self.label}", "$1", "service", "(.+)")'
            incidents = f"count by ({self.label}) ({renamed})"
        self.incidents = f"{incidents} or 0 * {self.scores}"


def _services_table(s: _Services) -> p.Sized:
    columns = (  # (title, unit, instant PromQL by service)
        ("requests/s", "reqps", s.requests),
        ("5xx ratio", "percentunit", s.error_ratio),
        ("p99 latency", "s", s.p99),
        ("replicas up", "percentunit", s.replicas_up),
        ("anomaly score", "none", s.scores),
        ("open incidents", "none", s.incidents),
    )
    sized = p.table(
        title="Services now",
        description="Each service's request rate, 5xx ratio, p99 latency, share of its replicas up, vigil's "
        "highest anomaly score and open incidents right now; click a service for its dashboard.",
        unit="none",
        targets=[p.prom(expr, instant=True) for _, _, expr in columns],
        height=9,
    )
    rename = {f"Value #{chr(ord('A') + i)}": title for i, (title, _, _) in enumerate(columns)}
    units = [
        {"matcher": {"id": "byName", "options": title}, "properties": [{"id": "unit", "value": unit}]}
        for title, unit, _ in columns
    ]
    link = {
        "matcher": {"id": "byName", "options": s.label},
        "properties": [
            {
                "id": "links",
                "value": [{"title": "${__value.text} dashboard", "url": "/d/vigil-${__value.raw}"}],
            }
        ],
    }
    sized.panel.overrides = [*units, link]
    sized.panel.transformations = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {"excludeByName": {"Time": True}, "renameByName": rename}},
    ]
    return sized


def _by_service(system: System) -> p.Section:
    s = _Services(system)
    by = f"{{{{{s.label}}}}}"
    return p.Section(
        "Services",
        [
            _services_table(s),
            p.timeseries(
                title="Requests per second by service",
                description="HTTP requests served per service (all routes and replicas).",
                unit="reqps",
                targets=[p.prom(s.requests, by)],
            ),
            p.timeseries(
                title="5xx ratio by service",
                description="Share of each service's requests answered with a server error.",
                unit="percentunit",
                targets=[p.prom(s.error_ratio, by)],
                threshold=0.01,
            ),
            p.timeseries(
                title="p99 latency by service",
                description="99th percentile request duration per service, over all its routes.",
                unit="s",
                targets=[p.prom(s.p99, by)],
            ),
        ],
    )


def _slos(slos: list[SLO]) -> p.Section:
    return p.Section(
        "Service level objectives",
        [
            p.timeseries(
                title="SLI: good events (5m) by SLO",
                description="; ".join(
                    f"{slo.name} ({slo.service}): {slo.description or slo.kind}" for slo in slos
                ),
                unit="percentunit",
                targets=[p.prom("1 - slo:sli_error:ratio_rate5m", "{{slo}}")],
                threshold=min(slo.objective for slo in slos),
            ),
            p.timeseries(
                title="Error budget burn rate (1h) by SLO",
                description=f"How fast each SLO spends its error budget; {PAGE_BURN_RATE}x for 1h pages.",
                unit="short",
                targets=[p.prom("slo:sli_error:ratio_rate1h / slo:error_budget:ratio", "{{slo}}")],
                threshold=PAGE_BURN_RATE,
            ),
            p.timeseries(
                title="Error budget left (3 days) by SLO",
                description="Share of the 3-day error budget not yet spent; below 0 the SLO is broken.",
                unit="percentunit",
                targets=[p.prom("1 - slo:sli_error:ratio_rate3d / slo:error_budget:ratio", "{{slo}}")],
            ),
        ],
    )


def _widths(total: int, count: int) -> list[int]:
    """``total`` grid columns shared as evenly as whole columns allow."""
    return [total // count + (1 if i < total % count else 0) for i in range(count)]


def _highest(label: str) -> str:
    return f'max by ({label}) (vigil_anomaly_score{{{label}!=""}})'


def _vigil(system: System) -> p.Section:
    """Open incidents, and vigil's highest score by service, by queue and by component."""
    label = system.telemetry.service_label
    scores = [("service", "each service's signals", _Services(system).scores, label)]
    if system.queues:
        scores.append(("queue", "each queue's signals (depth, consumers)", _highest("queue"), "queue"))
    if x.watched(system):
        scores.append(("component", "each component's health signals", _highest("component"), "component"))
    panels = [
        open_incidents("vigil_incident_open", "vigil incidents still open, over all services.", width=4)
    ]
    for (by, over, expr, group), width in zip(scores, _widths(20, len(scores)), strict=True):
        panels.append(
            p.timeseries(
                title=f"Highest anomaly score by {by}",
                description=f"vigil's highest score over {over}: 0-1 normal, above 1 anomalous.",
                unit="none",
                targets=[p.prom(expr, f"{{{{{group}}}}}")],
                threshold=1,
                width=width,
            )
        )
    return p.Section("vigil", panels)


def _queues(system: System) -> list[p.Sized]:
    panels = []
    for broker, queues in x.brokers(system, system.queues):
        depth = x.queue_series(x.QUEUE_MESSAGES, broker, queues)
        consumers = x.queue_series(x.QUEUE_CONSUMERS, broker, queues)
        panels += [
            p.timeseries(
                title=f"Queue depth ({broker.name})",
                description="Messages waiting or unacknowledged in each of the system's queues on "
                f"{broker.name}: a growing backlog delays everything downstream.",
                unit="short",
                targets=[p.prom(f"sum by (queue) ({depth})", "{{queue}}")],
            ),
            p.timeseries(
                title=f"Queue consumers ({broker.name})",
                description="Consumers attached to each queue: zero means nothing processes it.",
                unit="short",
                targets=[p.prom(f"sum by (queue) ({consumers})", "{{queue}}")],
            ),
        ]
    return panels


def _slo_indicator(system: System, slo: SLO) -> p.Sized:
    """A latency SLO's indicator as its alert sees it: the quantile at the objective over its events."""
    assert slo.threshold_seconds is not None  # latency SLOs have one (the model checks)
    at = f"p{slo.objective * 100:g}"
    buckets = q.selector(f"{system.slo_metric(slo)}_bucket", slo_events(system, slo))
    return p.timeseries(
        title=f"{slo.name}: {at} vs {_seconds(slo.threshold_seconds)}",
        description=f"{slo.description or slo.name} ({slo.service}). Above the line, more than "
        f"{slo.error_budget:.2%} of its events are slower than {_seconds(slo.threshold_seconds)}: "
        "the SLO's error budget is being spent.",
        unit="s",
        targets=[p.prom(q.quantile(slo.objective, buckets), at)],
        threshold=slo.threshold_seconds,
    )


def _logs(system: System) -> p.Section:
    logs = system.telemetry.logs
    return p.Section(
        "Logs (Elasticsearch)",
        [
            p.timeseries(
                title="Errors logged by service",
                description="Log lines at error level or above, per service.",
                unit="short",
                targets=[
                    p.log_counts(f"{logs.level_field}:(error OR critical)", split_by=logs.service_field)
                ],
                bars=True,
                stack=True,
                width=24,
                height=6,
            )
        ],
    )


def overview_dashboard(system: System) -> dict[str, Any]:
    sections = [_by_service(system)]
    if system.slos:
        sections.append(_slos(system.slos))
    sections.append(_vigil(system))
    # What used to be the order pipeline, for any system: its queues, and how close each latency SLO is.
    latency = [_slo_indicator(system, slo) for slo in system.slos if slo.kind == "latency"]
    pipeline = p.Section("Queues and SLO indicators", [*_queues(system), *latency])
    if pipeline.panels:
        sections.append(pipeline)
    links = [dashboard_link(s.name, service_uid(s.name)) for s in system.services]
    if x.watched(system):
        links.append(dashboard_link("Infrastructure", INFRASTRUCTURE_UID))
    return dashboard(
        uid=OVERVIEW_UID,
        title=f"{system.name} overview",
        description=system.description or f"All {system.name} services, their SLOs and vigil's incidents.",
        tags=["vigil", system.name, "overview"],
        panels=p.layout([*sections, _logs(system)]),
        variables=datasource_variables(),
        annotations=[incident_annotation("vigil_incident_open")],
        links=links,
    )
