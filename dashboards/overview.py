"""The overview: every service at a glance, SLO status, open incidents, links to each service's dashboard."""

from __future__ import annotations

from typing import Any

from vigil.alerts.prometheus_rules import SLO
from vigil.dashboards import panels as p
from vigil.dashboards import promql as q
from vigil.dashboards.common import dashboard, dashboard_link, datasource_variables, incident_annotation
from vigil.dashboards.service import HTTP, PAGE_BURN_RATE, uid
from vigil.demo_marketplace.catalog import QUEUES, SERVICES

UID = "vigil-overview"

# Columns of the services table: (title, unit, instant PromQL by service).
_HTTP_REQUESTS = q.selector(f"{HTTP}_count", job="marketplace")
_HTTP_ERRORS = q.selector(f"{HTTP}_count", 'status_class="5xx"', job="marketplace")
# `or 0 * total`: a service without any 5xx reads 0, not a blank.
_ERROR_RATIO = (
    f"({q.rate(_HTTP_ERRORS, by='service')} or 0 * {q.rate(_HTTP_REQUESTS, by='service')})"
    f" / {q.rate(_HTTP_REQUESTS, by='service')}"
)
_SERVICE_COLUMNS = (
    ("requests/s", "reqps", q.rate(_HTTP_REQUESTS, by="service")),
    ("5xx ratio", "percentunit", _ERROR_RATIO),
    ("p99 latency", "s", q.quantile(0.99, q.selector(f"{HTTP}_bucket", job="marketplace"), by="service")),
    ("anomaly score", "none", 'max by (service) (vigil_anomaly_score{service!=""})'),
    (
        "open incidents",
        "none",
        'count by (service) (vigil_incident_open) or 0 * max by (service) (vigil_anomaly_score{service!=""})',
    ),
)


def _services_table() -> p.Sized:
    sized = p.table(
        title="Services now",
        description="Each service's request rate, 5xx ratio, p99 latency, vigil's highest anomaly score and "
        "open incidents right now; click a service for its dashboard.",
        unit="none",
        targets=[p.prom(expr, instant=True) for _, _, expr in _SERVICE_COLUMNS],
        height=9,
    )
    rename = {f"Value #{chr(ord('A') + i)}": title for i, (title, _, _) in enumerate(_SERVICE_COLUMNS)}
    units = [
        {"matcher": {"id": "byName", "options": title}, "properties": [{"id": "unit", "value": unit}]}
        for title, unit, _ in _SERVICE_COLUMNS
    ]
    link = {
        "matcher": {"id": "byName", "options": "service"},
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


def _by_service() -> p.Section:
    return p.Section(
        "Services",
        [
            _services_table(),
            p.timeseries(
                title="Requests per second by service",
                description="HTTP requests served per service (all routes and replicas).",
                unit="reqps",
                targets=[p.prom(q.rate(_HTTP_REQUESTS, by="service"), "{{service}}")],
            ),
            p.timeseries(
                title="5xx ratio by service",
                description="Share of each service's requests answered with a server error.",
                unit="percentunit",
                targets=[p.prom(_ERROR_RATIO, "{{service}}")],
                threshold=0.01,
            ),
            p.timeseries(
                title="p99 latency by service",
                description="99th percentile request duration per service, over all its routes.",
                unit="s",
                targets=[
                    p.prom(
                        q.quantile(0.99, q.selector(f"{HTTP}_bucket", job="marketplace"), by="service"),
                        "{{service}}",
                    )
                ],
            ),
        ],
    )


def _slos(slos: list[SLO]) -> p.Section:
    return p.Section(
        "Service level objectives",
        [
            p.timeseries(
                title="SLI: good events (5m) by SLO",
                description="; ".join(f"{slo.name} ({slo.service}): {slo.description}" for slo in slos),
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


def _vigil() -> p.Section:
    return p.Section(
        "vigil",
        [
            p.stat(
                title="Open incidents",
                description="vigil incidents still open, over all services.",
                unit="none",
                targets=[p.prom("count(count by (incident) (vigil_incident_open)) or vector(0)", "open")],
                thresholds=(("green", None), ("red", 1)),
                height=8,
            ),
            p.timeseries(
                title="Highest anomaly score by service",
                description="vigil's highest score over each service's signals: 0-1 normal, >1 anomalous.",
                unit="none",
                targets=[p.prom('max by (service) (vigil_anomaly_score{service!=""})', "{{service}}")],
                threshold=1,
                width=10,
            ),
            p.timeseries(
                title="Highest anomaly score by queue",
                description="vigil's highest score over each queue's signals (depth, backlog, consumers).",
                unit="none",
                targets=[p.prom('max by (queue) (vigil_anomaly_score{queue!=""})', "{{queue}}")],
                threshold=1,
                width=10,
            ),
        ],
    )


def _pipeline() -> p.Section:
    queues = q.one_of("queue", tuple(queue.name for queue in QUEUES))
    return p.Section(
        "Order pipeline",
        [
            p.timeseries(
                title="Orders by lifecycle event",
                description="Orders placed, paid, failed payment and fulfilled per second, all services.",
                unit="cps",
                targets=[p.prom(q.rate("marketplace_orders_total", by="event"), "{{event}}")],
            ),
            p.timeseries(
                title="Queue depth",
                description="Messages waiting or unacknowledged in each queue of the order pipeline.",
                unit="short",
                targets=[
                    p.prom(f"sum by (queue) (rabbitmq_detailed_queue_messages{{{queues}}})", "{{queue}}")
                ],
            ),
            p.timeseries(
                title="Fulfilment delay p99",
                description="Time from checkout to fulfilment (99th percentile); the fulfilment SLO is 60 s.",
                unit="s",
                targets=[
                    p.prom(q.quantile(0.99, "marketplace_order_fulfilment_delay_seconds_bucket"), "p99")
                ],
                threshold=60,
            ),
        ],
    )


def _logs() -> p.Section:
    return p.Section(
        "Logs (Elasticsearch)",
        [
            p.timeseries(
                title="Errors logged by service",
                description="Log lines at error level or above, per service.",
                unit="short",
                targets=[p.log_counts("log.level:(error OR critical)", split_by="service.name")],
                bars=True,
                stack=True,
                width=24,
                height=6,
            )
        ],
    )


def overview_dashboard(*, slos: list[SLO]) -> dict[str, Any]:
    return dashboard(
        uid=UID,
        title="Marketplace overview",
        description="All marketplace services, their SLOs and vigil's incidents.",
        tags=["vigil", "marketplace", "overview"],
        panels=p.layout([_by_service(), _slos(slos), _vigil(), _pipeline(), _logs()]),
        variables=datasource_variables(),
        annotations=[incident_annotation("vigil_incident_open")],
        links=[dashboard_link(f"{s.name}", uid(s.name)) for s in SERVICES],
    )
