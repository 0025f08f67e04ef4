"""A service's rate, errors and duration: requests it serves, messages it consumes and publishes, calls it
makes. Every metric and label name comes from the system's telemetry (OpenTelemetry's unless it says
otherwise), so the same panels read any system's services."""

from __future__ import annotations

from vigil.dashboards import panels as p
from vigil.dashboards import promql as q
from vigil.dashboards.scope import Scope, legend

ROUTE = "$route"  # the dashboard's route variable (multi-value: always matched with =~)


def http_section(s: Scope) -> p.Section:
    http = s.telemetry.http
    routes = f"{http.route_label}=~{q.quote(ROUTE)}"
    requests = q.selector(f"{http.server_duration}_count", s.own, routes)
    errors = q.selector(
        f"{http.server_duration}_count", s.own, routes, {http.status_label: http.server_error}
    )
    client_errors = q.selector(
        f"{http.server_duration}_count", s.own, routes, {http.status_label: http.client_error}
    )
    buckets = q.selector(f"{http.server_duration}_bucket", s.own, routes)
    panels = [
        p.timeseries(
            title="Requests per second by route",
            description=f"HTTP requests {s.name} served, per route template (all replicas).",
            unit="reqps",
            targets=[p.prom(q.rate(requests, by=http.route_label), legend(http.route_label))],
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
            targets=[p.prom(q.quantile(0.99, buckets, by=http.route_label), legend(http.route_label))],
            width=12,
        ),
    ]
    if http.active_requests:  # not an OpenTelemetry default: only systems that export it
        panels.append(
            p.timeseries(
                title="Requests in flight",
                description="Requests being served now: grows when the service or what it waits on slows.",
                unit="short",
                targets=[p.prom(f"sum({q.selector(http.active_requests, s.own)})", "in flight")],
                width=12,
            )
        )
    return p.Section("Requests: rate, errors, duration", panels)


def messaging_section(s: Scope) -> p.Section:
    m = s.telemetry.messaging
    consumed = q.selector(m.consumed, s.own)
    by = [m.destination_label, *([m.outcome_label] if m.outcome_label else [])]
    panels = [
        p.timeseries(
            title="Messages processed by outcome" if m.outcome_label else "Messages processed by queue",
            description=f"Messages {s.name} consumed per second from "
            f"{', '.join(queue.name for queue in s.consumes)}"
            + (f", by outcome ({m.outcome_label})." if m.outcome_label else "."),
            unit="mps",
            targets=[p.prom(q.rate(consumed, by=", ".join(by)), legend(*by))],
            stack=True,
        )
    ]
    if m.outcome_label:  # without an outcome label, failed messages cannot be told from handled ones
        failed = q.selector(m.consumed, s.own, {m.outcome_label: m.failed})
        panels.append(
            p.timeseries(
                title="Failed share",
                description="Share of consumed messages that failed (dead-lettered or dropped): each one "
                "is work the system did not do.",
                unit="percentunit",
                targets=[p.prom(q.ratio_or_zero(q.rate(failed), q.rate(consumed)), "failed")],
                threshold=0.01,
            )
        )
    buckets = q.selector(f"{m.process_duration}_bucket", s.own)
    panels.append(
        p.timeseries(
            title="Processing time p50 / p99",
            description="Time to process one consumed message, from the histogram buckets.",
            unit="s",
            targets=[p.prom(q.quantile(x, buckets), f"p{round(x * 100)}") for x in (0.5, 0.99)],
        )
    )
    return p.Section("Messages: rate, errors, duration", panels)


def publishing_panel(s: Scope) -> p.Sized:
    m = s.telemetry.messaging
    by = [
        m.published_destination_label or m.destination_label,
        *([m.outcome_label] if m.outcome_label else []),
    ]
    destinations = ", ".join(queue.routing_key or queue.name for queue in s.publishes)
    return p.timeseries(
        title="Messages published",
        description=f"Messages {s.name} published ({destinations})"
        + (", by broker confirmation." if m.outcome_label else "."),
        unit="mps",
        targets=[p.prom(q.rate(q.selector(m.published, s.own), by=", ".join(by)), legend(*by))],
        width=12,
    )


def dependencies_section(s: Scope) -> p.Section:
    """Calls as the caller sees them (its client histogram): a slow dependency shows here first."""
    http = s.telemetry.http
    calls = q.selector(f"{http.client_duration}_count", s.own)
    buckets = q.selector(f"{http.client_duration}_bucket", s.own)
    by = [http.peer_label, http.status_label]
    return p.Section(
        "Dependencies it calls",
        [
            p.timeseries(
                title="Calls per second by service and status",
                description=f"HTTP calls {s.name} makes to {', '.join(s.service.calls)}, as it sees them.",
                unit="reqps",
                targets=[p.prom(q.rate(calls, by=", ".join(by)), legend(*by))],
                width=12,
            ),
            p.timeseries(
                title="Call p99 latency by service",
                description="99th percentile duration of calls to each dependency, including network time.",
                unit="s",
                targets=[p.prom(q.quantile(0.99, buckets, by=http.peer_label), legend(http.peer_label))],
                width=12,
            ),
        ],
    )
