"""One dashboard per service of the system file, in the names of the system's telemetry.

What a service has decides what its dashboard shows: routes give RED panels over its HTTP histograms,
consumed queues give message processing and queue panels, a PostgreSQL component gives connection pool
and query latency, caches give hit ratios, the components it uses give their health, SLOs it owns give
burn rates. Every dashboard ends with vigil's view (anomaly scores, the expected band against what was
observed, incidents as annotations) and its warnings and errors from Elasticsearch, and links to the
services it calls and is called by.
"""

from __future__ import annotations

from typing import Any

from grafanalib import core as g

from vigil.dashboards import panels as p
from vigil.dashboards import promql as q
from vigil.dashboards.common import (
    INFRASTRUCTURE_UID,
    OVERVIEW_UID,
    dashboard,
    dashboard_link,
    datasource_variables,
    incident_annotation,
    query_variable,
    service_uid,
)
from vigil.dashboards.scope import Scope
from vigil.dashboards.sections import band, logs_section, open_incidents, slo_section
from vigil.dashboards.service_backend import components_section, queues_section, saturation_section
from vigil.dashboards.service_red import (
    dependencies_section,
    http_section,
    messaging_section,
    publishing_panel,
)
from vigil.system import Service, System

# vigil_incident_open names the service of an incident in the label `service`, whatever the system's
# own service label is.
INCIDENT_SERVICE = "service"


def _vigil_sections(s: Scope) -> list[p.Section]:
    subject = [q.selector("vigil_anomaly_score", s.vigil)]
    queues = [queue.name for queue in s.consumes]
    if queues:  # the broker's series of its queues carry `queue`, not the service
        subject.append(q.selector("vigil_anomaly_score", q.one_of("queue", queues)))
    scores = p.timeseries(
        title="Anomaly score by signal",
        description="vigil's score per signal (max over the signal's series): 0-1 normal, above 1 anomalous.",
        unit="none",
        targets=[p.prom(f"max by (signal) ({' or '.join(subject)})", "{{signal}}")],
        threshold=1,
        width=16,
    )
    incidents = open_incidents(
        q.selector("vigil_incident_open", {INCIDENT_SERVICE: s.name}),
        "vigil incidents involving this service that are still open.",
    )
    # Its own signals' series are told apart by route (HTTP, routes declared or not) or by queue (message
    # processing, only for a consumer).
    t = s.telemetry
    told_apart = [t.http.route_label, *([t.messaging.destination_label] if s.consumes else [])]
    own_legend = "".join(f"{{{{{label}}}}}" for label in told_apart)
    bands = [band("signal", q.label_matchers(s.vigil, 'signal="$signal"'), own_legend)]
    if queues:
        queue_signals = q.label_matchers(q.one_of("queue", queues), 'signal="$queue_signal"')
        bands.append(band("queue_signal", queue_signals, "{{queue}}"))
    return [
        p.Section("vigil: anomaly detection", [scores, incidents]),
        p.Section("vigil: observed vs expected", bands),
    ]


def _sections(s: Scope) -> list[p.Section]:
    own_slos = [slo for slo in s.system.slos if slo.service == s.name]
    sections = [slo_section(own_slos)] if own_slos else []
    if s.service.routes:
        sections.append(http_section(s))
    if s.consumes:
        sections.append(messaging_section(s))
    if s.service.calls or s.publishes:
        deps = dependencies_section(s) if s.service.calls else p.Section("Dependencies it calls")
        if s.publishes:
            deps.panels.append(publishing_panel(s))
        sections.append(deps)
    sections.append(saturation_section(s))
    optional = [queues_section(s), components_section(s)]
    sections += [section for section in optional if section is not None]
    return [*sections, *_vigil_sections(s), logs_section(s.telemetry.logs, s.name)]


def _variables(s: Scope) -> list[g.Template]:
    t = s.telemetry
    variables = datasource_variables()
    if s.service.routes:
        requests = q.selector(f"{t.http.server_duration}_count", s.own)
        variables.append(query_variable("route", requests, t.http.route_label, label="Route"))
    variables.append(
        query_variable("signal", q.selector("vigil_expected", s.vigil), "signal", label="Signal")
    )
    if s.consumes:
        queues = q.one_of("queue", [queue.name for queue in s.consumes])
        variables.append(
            query_variable(
                "queue_signal", q.selector("vigil_expected", queues), "signal", label="Queue signal"
            )
        )
    return variables


def _links(s: Scope) -> list[g.DashboardLink]:
    links = [dashboard_link("Overview", OVERVIEW_UID)]
    links += [dashboard_link(f"calls {name}", service_uid(name)) for name in s.service.calls]
    links += [dashboard_link(f"called by {name}", service_uid(name)) for name in s.system.callers(s.name)]
    if any(c.selector for c in s.components):  # their health is on the infrastructure dashboard
        links.append(dashboard_link("Infrastructure", INFRASTRUCTURE_UID))
    return links


def service_dashboard(system: System, service: Service) -> dict[str, Any]:
    s = Scope(system, service)
    return dashboard(
        uid=service_uid(service.name),
        title=f"{service.name} service",
        description=service.description,
        tags=["vigil", system.name, service.name],
        panels=p.layout(_sections(s)),
        variables=_variables(s),
        annotations=[
            incident_annotation(q.selector("vigil_incident_open", {INCIDENT_SERVICE: service.name}))
        ],
        links=_links(s),
    )
