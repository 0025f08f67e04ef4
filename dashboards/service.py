"""One dashboard per marketplace service, generated from the service catalog.

What a service has decides what its dashboard shows: routes give RED panels over its HTTP histograms,
consumed queues give message processing and queue panels, PostgreSQL gives connection pool and query
latency, caches give hit ratios, SLOs it owns give burn rates. Every dashboard ends with vigil's view
(anomaly scores, the expected band against what was observed, incidents as annotations) and its
warnings and errors from Elasticsearch, and links to the services it calls and is called by.
"""

from __future__ import annotations

from typing import Any

from vigil.alerts.prometheus_rules import SLO
from vigil.dashboards import panels as p
from vigil.dashboards import promql as q
from vigil.dashboards.common import (
    dashboard,
    dashboard_link,
    datasource_variables,
    incident_annotation,
    query_variable,
)
from vigil.demo_marketplace.catalog import SERVICES, Service

HTTP = "http_server_request_duration_seconds"
PAGE_BURN_RATE = 14.4  # the fast-burn page of the SRE workbook (1h/5m windows), as in the alert rules


def uid(service: str) -> str:
    return f"vigil-{service}"


def _http(svc: Service) -> p.Section:
    s = {"job": "marketplace", "service": svc.name}
    requests = q.selector(f"{HTTP}_count", 'route=~"$route"', **s)
    errors = q.selector(f"{HTTP}_count", 'route=~"$route"', 'status_class="5xx"', **s)
    client_errors = q.selector(f"{HTTP}_count", 'route=~"$route"', 'status_class="4xx"', **s)
    buckets = q.selector(f"{HTTP}_bucket", 'route=~"$route"', **s)
    return p.Section(
        "Requests: rate, errors, duration",
        [
            p.timeseries(
                title="Requests per second by route",
                description=f"HTTP requests {svc.name} served, per route template (all replicas).",
                unit="reqps",
                targets=[p.prom(q.rate(requests, by="route"), "{{route}}")],
                stack=True,
            ),
            p.timeseries(
                title="Error ratio",
                description="Share of requests answered 5xx (server errors) and 4xx (client errors).",
                unit="percentunit",
                targets=[
                    p.prom(q.ratio_or_zero(q.rate(errors), q.rate(requests)), "5xx"),
                    p.prom(q.ratio_or_zero(q.rate(client_errors), q.rate(requests)), "4xx"),
                ],
                threshold=0.01,
            ),
            p.timeseries(
                title="Latency p50 / p95 / p99",
                description="Request duration quantiles over the selected routes, from histogram buckets.",
                unit="s",
                targets=[p.prom(q.quantile(x, buckets), f"p{round(x * 100)}") for x in (0.5, 0.95, 0.99)],
            ),
            p.timeseries(
                title="p99 latency by route",
                description="99th percentile request duration per route: which endpoint is slow.",
                unit="s",
                targets=[p.prom(q.quantile(0.99, buckets, by="route"), "{{route}}")],
                width=12,
            ),
            p.timeseries(
                title="Requests in flight",
                description="Requests being served now: grows when the service or what it waits on slows.",
                unit="short",
                targets=[
                    p.prom(f"sum({q.selector('http_server_active_requests', service=svc.name)})", "in flight")
                ],
                width=12,
            ),
        ],
    )


def _messaging(svc: Service) -> p.Section:
    consumed = q.selector("messaging_consumed_total", service=svc.name)
    failed = q.selector("messaging_consumed_total", 'outcome="dead_letter"', service=svc.name)
    buckets = q.selector("messaging_process_duration_seconds_bucket", service=svc.name)
    panels = [
        p.timeseries(
            title="Messages processed by outcome",
            description="Messages consumed per second: ack, duplicate (already processed) or dead_letter.",
            unit="mps",
            targets=[p.prom(q.rate(consumed, by="queue, outcome"), "{{queue}} {{outcome}}")],
            stack=True,
        ),
        p.timeseries(
            title="Dead-lettered share",
            description="Share of consumed messages that failed and went to the dead-letter queue.",
            unit="percentunit",
            targets=[p.prom(q.ratio_or_zero(q.rate(failed), q.rate(consumed)), "dead-lettered")],
            threshold=0.01,
        ),
        p.timeseries(
            title="Processing time p50 / p99",
            description="Time to process one consumed message, from the histogram buckets.",
            unit="s",
            targets=[p.prom(q.quantile(x, buckets), f"p{round(x * 100)}") for x in (0.5, 0.99)],
        ),
    ]
    return p.Section("Messages: rate, errors, duration", panels)


def _publishing(svc: Service) -> p.Sized:
    published = q.selector("messaging_published_total", service=svc.name)
    return p.timeseries(
        title="Messages published",
        description=f"Messages {svc.name} published ({', '.join(svc.publishes)}), by broker confirmation.",
        unit="mps",
        targets=[p.prom(q.rate(published, by="routing_key, outcome"), "{{routing_key}} {{outcome}}")],
        width=12,
    )


def _dependencies(svc: Service) -> p.Section:
    calls = q.selector("http_client_request_duration_seconds_count", service=svc.name)
    buckets = q.selector("http_client_request_duration_seconds_bucket", service=svc.name)
    return p.Section(
        "Dependencies it calls",
        [
            p.timeseries(
                title="Calls per second by service and status",
                description=f"HTTP calls {svc.name} makes to {', '.join(svc.calls)}, as it sees them.",
                unit="reqps",
                targets=[p.prom(q.rate(calls, by="peer, status_class"), "{{peer}} {{status_class}}")],
                width=12,
            ),
            p.timeseries(
                title="Call p99 latency by service",
                description="99th percentile duration of calls to each dependency, including network time.",
                unit="s",
                targets=[p.prom(q.quantile(0.99, buckets, by="peer"), "{{peer}}")],
                width=12,
            ),
        ],
    )


def _saturation(svc: Service) -> p.Section:
    proc = {"job": "marketplace", "service": svc.name}
    panels = [
        p.timeseries(
            title="CPU per replica",
            description="CPU time per second of each replica's process (1.0 = one core busy).",
            unit="percentunit",
            targets=[
                p.prom(q.rate(q.selector("process_cpu_seconds_total", **proc), by="instance"), "{{instance}}")
            ],
        ),
        p.timeseries(
            title="Memory per replica",
            description="Resident memory per replica: steady growth under steady load is a leak.",
            unit="bytes",
            targets=[
                p.prom(
                    f"sum by (instance) ({q.selector('process_resident_memory_bytes', **proc)})",
                    "{{instance}}",
                )
            ],
        ),
    ]
    if "postgresql" in svc.uses:
        used = q.selector("db_client_connections", 'state="used"', service=svc.name)
        size = q.selector("db_client_connections_max", service=svc.name)
        ops = q.selector("db_client_operation_duration_seconds_bucket", service=svc.name)
        panels += [
            p.timeseries(
                title="DB connection pool in use",
                description="Connections in use over the pool's limit: at 100% requests wait for one.",
                unit="percentunit",
                targets=[p.prom(f"sum({used}) / sum({size})", "in use")],
                threshold=0.9,
                soft_max=1,
            ),
            p.timeseries(
                title="DB operation p99 by operation",
                description="99th percentile duration of PostgreSQL operations, by operation name.",
                unit="s",
                targets=[p.prom(q.quantile(0.99, ops, by="operation"), "{{operation}}")],
                width=12,
            ),
        ]
    if svc.caches:
        hits = q.selector("cache_requests_total", 'result="hit"', service=svc.name)
        lookups = q.selector("cache_requests_total", service=svc.name)
        panels.append(
            p.timeseries(
                title="Cache hit ratio by cache",
                description="Share of Redis cache lookups that hit; misses and errors go to PostgreSQL.",
                unit="percentunit",
                targets=[p.prom(f"{q.rate(hits, by='cache')} / {q.rate(lookups, by='cache')}", "{{cache}}")],
                width=12,
            )
        )
    return p.Section("Saturation", panels)


def _queues(svc: Service) -> p.Section:
    owned = q.one_of("queue", svc.consumes)
    dead = q.one_of("queue", tuple(f"{name}.dead" for name in svc.consumes))
    return p.Section(
        "Queues it consumes",
        [
            p.timeseries(
                title="Queue depth",
                description="Messages ready or unacknowledged: a growing backlog delays every order.",
                unit="short",
                targets=[
                    p.prom(f"sum by (queue) (rabbitmq_detailed_queue_messages{{{owned}}})", "{{queue}}"),
                    p.prom(f"sum by (queue) (rabbitmq_detailed_queue_messages{{{dead}}})", "{{queue}}"),
                ],
            ),
            p.timeseries(
                title="Published vs delivered",
                description="Messages entering the queue against messages consumers acknowledged.",
                unit="mps",
                targets=[
                    p.prom(
                        q.rate(f"rabbitmq_detailed_queue_messages_published_total{{{owned}}}"), "published"
                    ),
                    p.prom(
                        q.rate(f"rabbitmq_detailed_channel_messages_delivered_ack_total{{{owned}}}"),
                        "delivered and acked",
                    ),
                ],
            ),
            p.timeseries(
                title="Consumers",
                description="Consumers attached to the queue: zero means nothing processes it.",
                unit="short",
                targets=[
                    p.prom(f"sum by (queue) (rabbitmq_detailed_queue_consumers{{{owned}}})", "{{queue}}")
                ],
            ),
        ],
    )


def _slos(slos: list[SLO]) -> p.Section:
    owner = slos[0].service
    s = {"service": owner}
    return p.Section(
        "Service level objectives",
        [
            p.timeseries(
                title="SLI: good events (5m)",
                description="Share of good events per SLO over 5 minutes: "
                + "; ".join(f"{slo.name}: {slo.description}" for slo in slos),
                unit="percentunit",
                targets=[p.prom(f"1 - {q.selector('slo:sli_error:ratio_rate5m', **s)}", "{{slo}}")],
                threshold=min(slo.objective for slo in slos),
                width=12,
            ),
            p.timeseries(
                title="Error budget burn rate (1h)",
                description=f"How fast each SLO spends its error budget; {PAGE_BURN_RATE}x for 1h pages.",
                unit="short",
                targets=[
                    p.prom(
                        f"{q.selector('slo:sli_error:ratio_rate1h', **s)}"
                        f" / {q.selector('slo:error_budget:ratio', **s)}",
                        "{{slo}}",
                    )
                ],
                threshold=PAGE_BURN_RATE,
                width=12,
            ),
        ],
    )


def _vigil(svc: Service) -> list[p.Section]:
    subject = [q.selector("vigil_anomaly_score", service=svc.name)]
    if svc.consumes:
        subject.append(f"vigil_anomaly_score{{{q.one_of('queue', svc.consumes)}}}")
    scores = p.timeseries(
        title="Anomaly score by signal",
        description="vigil's score per signal (max over the signal's series): 0-1 normal, above 1 anomalous.",
        unit="none",
        targets=[p.prom(f"max by (signal) ({' or '.join(subject)})", "{{signal}}")],
        threshold=1,
        width=16,
    )
    incidents = p.stat(
        title="Open incidents",
        description="vigil incidents involving this service that are still open.",
        unit="none",
        targets=[
            p.prom(f"count({q.selector('vigil_incident_open', service=svc.name)}) or vector(0)", "open")
        ],
        thresholds=(("green", None), ("red", 1)),
        width=8,
        height=8,
    )
    bands = [_band("signal", f'service={q.quote(svc.name)}, signal="$signal"')]
    if svc.consumes:
        bands.append(_band("queue_signal", f'{q.one_of("queue", svc.consumes)}, signal="$queue_signal"'))
    return [
        p.Section("vigil: anomaly detection", [scores, incidents]),
        p.Section("vigil: observed vs expected", bands),
    ]


# Two vigil replicas briefly score the same series while shards move; show it once.
ONE_PER_SERIES = "max without (instance, instance_name, job)"


def _band(variable: str, matchers: str) -> p.Sized:
    """Observed against the expected band, one panel per value of ``variable`` (a signal)."""
    legend = "{{route}}{{queue}}"
    dashed = {
        "matcher": {"id": "byRegexp", "options": "/expected/"},
        "properties": [
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            {"id": "color", "value": {"mode": "fixed", "fixedColor": "text"}},
        ],
    }
    return p.timeseries(
        title=f"${variable}: observed vs expected",
        description="The signal as vigil saw it and the band its detector expected; outside it scores high.",
        unit="short",
        targets=[
            p.prom(f"{ONE_PER_SERIES} (vigil_observed{{{matchers}}})", f"{legend} observed"),
            p.prom(f"{ONE_PER_SERIES} (vigil_expected_lower{{{matchers}}})", f"{legend} expected low"),
            p.prom(f"{ONE_PER_SERIES} (vigil_expected_upper{{{matchers}}})", f"{legend} expected high"),
        ],
        overrides=[dashed],
        repeat=variable,
    )


def _logs(svc: Service) -> p.Section:
    service = f"service.name:{q.quote(svc.name)}"
    return p.Section(
        "Logs (Elasticsearch)",
        [
            p.timeseries(
                title="Warnings and errors logged",
                description=f"Log lines at warning level or above from {svc.name}, per level.",
                unit="short",
                targets=[
                    p.log_counts(
                        f"{service} AND log.level:(warning OR error OR critical)", split_by="log.level"
                    )
                ],
                bars=True,
                stack=True,
                width=24,
                height=6,
            ),
            p.logs(
                title="Recent errors",
                description=f"The newest error lines logged by {svc.name} (ECS JSON from every replica).",
                targets=[p.log_lines(f"{service} AND log.level:(error OR critical)")],
            ),
        ],
    )


def service_dashboard(svc: Service, *, slos: list[SLO]) -> dict[str, Any]:
    own_slos = [slo for slo in slos if slo.service == svc.name]
    sections = [_slos(own_slos)] if own_slos else []
    if svc.routes:
        sections.append(_http(svc))
    if svc.consumes:
        sections.append(_messaging(svc))
    if svc.calls or svc.publishes:
        deps = _dependencies(svc) if svc.calls else p.Section("Dependencies it calls")
        if svc.publishes:
            deps.panels.append(_publishing(svc))
        sections.append(deps)
    sections.append(_saturation(svc))
    if svc.consumes:
        sections.append(_queues(svc))
    sections += [*_vigil(svc), _logs(svc)]

    variables = datasource_variables()
    if svc.routes:
        variables.append(
            query_variable("route", f'{HTTP}_count{{service="{svc.name}"}}', "route", label="Route")
        )
    variables.append(
        query_variable("signal", f'vigil_expected{{service="{svc.name}"}}', "signal", label="Signal")
    )
    if svc.consumes:
        variables.append(
            query_variable(
                "queue_signal",
                f"vigil_expected{{{q.one_of('queue', svc.consumes)}}}",
                "signal",
                label="Queue signal",
            )
        )
    callers = sorted(s.name for s in SERVICES if svc.name in s.calls)
    links = [dashboard_link("Overview", "vigil-overview")]
    links += [dashboard_link(f"calls {name}", uid(name)) for name in svc.calls]
    links += [dashboard_link(f"called by {name}", uid(name)) for name in callers]
    return dashboard(
        uid=uid(svc.name),
        title=f"{svc.name} service",
        description=svc.description,
        tags=["vigil", "marketplace", svc.name],
        panels=p.layout(sections),
        variables=variables,
        annotations=[incident_annotation(q.selector("vigil_incident_open", service=svc.name))],
        links=links,
    )
