"""The signals vigil watches for a system, derived from its file and its telemetry's names.

Nobody writes PromQL for the usual trouble: each service's request rate, error ratio and p99 latency
(per route), database time, cache hit ratio and memory; each queue's depth and consumers; each
component's health from its exporter; each SLO's own indicator. Every signal is a ``metric`` spec
(``vigil.config.MetricSpec``), so the same definition runs through Prometheus (as PromQL) or the
embedded scraper. ``signals:`` in ``vigil.yaml`` replace any of these by name or add to them.
"""

from __future__ import annotations

import re
from typing import Any

from vigil.system.components import component_signals
from vigil.system.model import SLO, System

MIN_RATE = 1.0  # events/s below which a p99 is the slowest request rather than a percentile


def rising(min_abs: float, min_rel: float = 0.0) -> dict[str, Any]:
    """Latency-like: only a rise is trouble, and only beyond both floors."""
    return {"kind": "seasonal_baseline", "direction": "up", "min_abs": min_abs, "min_rel": min_rel}


def falling(min_abs: float, min_rel: float = 0.0) -> dict[str, Any]:
    return {"kind": "seasonal_baseline", "direction": "down", "min_abs": min_abs, "min_rel": min_rel}


def signal(name: str, description: str, metric: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": description, "metric": metric, **extra}


def http_signals(system: System, step: float) -> list[dict[str, Any]]:
    t, http = system.telemetry, system.telemetry.http
    svc, sel = t.service_label, t.selector
    count = f"{http.server_duration}_count"
    errors = {http.status_label: http.server_error}
    # ``up`` is every scrape target's, exporters' too: only the system's own services count here.
    own = "~" + "|".join(re.escape(s.name) for s in system.services if not s.external)
    objective = min((s.objective for s in system.slos if s.kind == "error_ratio"), default=0.99)
    return [
        signal(
            "http_request_rate",
            "requests per second per service; a collapse of traffic is trouble, a surge is not",
            {"name": count, "kind": "rate", "by": [svc], "match": sel},
            detector=falling(0.5, 0.6),
        ),
        signal(
            "http_error_ratio",
            "share of server errors per service",
            {"name": count, "kind": "ratio", "by": [svc], "match": sel, "numerator_match": errors},
            detector=rising(0.02),
        ),
        signal(
            "http_p99_latency_seconds",
            f"99th percentile latency per service and route (routes with at least {MIN_RATE:g} request/s)",
            {
                "name": http.server_duration,
                "kind": "quantile",
                "quantile": 0.99,
                "by": [svc, http.route_label],
                "match": sel,
                "min_rate": MIN_RATE,
            },
            detector=rising(0.05, 0.5),
        ),
        signal(
            "service_up",
            "share of each service's replicas that answer Prometheus' scrape; a crashed service's own "
            "series vanish, and only this says where the calls go unanswered",
            {"name": "up", "kind": "gauge", "aggregation": "avg", "by": [svc], "match": {**sel, svc: own}},
            detector=falling(0.5),  # more than half of its replicas down: the rest cannot carry it
        ),
        signal(
            "http_5xx_per_step",
            f"server errors per {step:g} s step, input of the burn rate",
            {"name": count, "kind": "rate", "by": [svc], "match": {**sel, **errors}, "scale": step},
            detect=False,
        ),
        signal(
            "http_requests_per_step",
            f"requests per {step:g} s step, input of the burn rate",
            {"name": count, "kind": "rate", "by": [svc], "match": sel, "scale": step},
            detect=False,
        ),
        {
            "name": "http_error_budget_burn",
            "description": f"{objective:.2%} of requests succeed: Google SRE multi-window burn rates",
            "inputs": ["http_5xx_per_step", "http_requests_per_step"],
            "by": [svc],
            "detector": {"kind": "burn_rate", "objective": objective, "min_events": 100},
        },
    ]


def external_call_signals(system: System) -> list[dict[str, Any]]:
    """A third party (``external: true``) exports nothing of its own: its callers' client metrics are the
    only view of it. Latency and errors of the calls to it, per third party, about the third party."""
    externals = [s.name for s in system.services if s.external]
    if not externals:
        return []
    t, http = system.telemetry, system.telemetry.http
    peer = http.peer_label
    match = {**t.selector, peer: "~" + "|".join(re.escape(name) for name in externals)}
    about = {peer: t.service_label}  # the series is about the one called, not the caller
    return [
        signal(
            "http_call_p99_latency_seconds",
            "99th percentile latency of calls to each third party, as its callers see it",
            {
                "name": http.client_duration,
                "kind": "quantile",
                "quantile": 0.99,
                "by": [peer],
                "match": match,
                "min_rate": 0.2,  # third parties are called less often than the storefront
                "rename": about,
            },
            detector=rising(0.05, 0.5),  # as a service's own p99
        ),
        signal(
            "http_call_error_ratio",
            "share of the calls to each third party that fail with a server error",
            {
                "name": f"{http.client_duration}_count",
                "kind": "ratio",
                "by": [peer],
                "match": match,
                "numerator_match": {http.status_label: http.server_error},
                "rename": about,
            },
            detector=rising(0.02),  # as a service's own error ratio
        ),
    ]


def backend_signals(system: System) -> list[dict[str, Any]]:
    """Database time, cache hits, memory: per service, for services that report them."""
    t = system.telemetry
    svc, sel = t.service_label, t.selector
    found = [
        signal(
            "db_p99_seconds",
            f"99th percentile database operation time per service (at least {MIN_RATE:g} operation/s)",
            {
                "name": t.database.operation_duration,
                "kind": "quantile",
                "quantile": 0.99,
                "by": [svc],
                "match": sel,
                "min_rate": MIN_RATE,
            },
            detector=rising(0.02, 0.5),
        ),
        signal(
            "process_memory_bytes",
            "resident memory per service (all replicas)",
            {"name": t.process.memory, "kind": "gauge", "by": [svc], "match": sel},
            detector=rising(50_000_000, 0.3),
        ),
    ]
    if t.cache is not None:
        c = t.cache
        found.append(
            signal(
                "cache_hit_ratio",
                "share of cache lookups that hit, per service",
                {
                    "name": c.requests,
                    "kind": "ratio",
                    "by": [svc],
                    "match": sel,
                    "numerator_match": {c.result_label: c.hit},
                },
                # The traffic's key mix moves a hit ratio by up to a fifth on its own (fewer repeats
                # within a TTL as load falls, new keys as it rises); a failing cache loses most of its
                # hits. Trouble: a third of the usual hits gone, and at least 0.2 of all lookups.
                detector=falling(0.2, 1 / 3),
            )
        )
    features = ["rate", "error_ratio", "p99", "db_p99"]
    found.append(
        {
            "name": "service_red",
            "description": "each service's rate, error ratio, worst route p99 and database p99 together",
            "inputs": ["http_request_rate", "http_error_ratio", "http_p99_latency_seconds", "db_p99_seconds"],
            "by": [svc],
            "detector": {"kind": "isolation_forest", "feature_names": features, "log_features": ["rate"]},
        }
    )
    return found


def messaging_signals(system: System) -> list[dict[str, Any]]:
    """How long consumers take per message; queue depth and consumers come from the broker's component."""
    if not system.queues:
        return []
    t, m = system.telemetry, system.telemetry.messaging
    return [
        signal(
            "message_process_p99_seconds",
            "99th percentile time a consumer takes per message, per service and queue",
            {
                "name": m.process_duration,
                "kind": "quantile",
                "quantile": 0.99,
                "by": [t.service_label, m.destination_label],
                "match": t.selector,
                "min_rate": 0.2,  # consumers see fewer events than HTTP servers
            },
            detector=rising(0.1, 1.0),
        )
    ]


def slo_signal(system: System, slo: SLO) -> dict[str, Any]:
    """The SLO's own indicator over a minute: its latency quantile, or its share of bad events."""
    t = system.telemetry
    match = {**t.selector, t.service_label: slo.service, **slo.selector}
    metric = system.slo_metric(slo)
    labels = {"slo": slo.name, t.service_label: slo.service} if t.service_label != "slo" else {}
    name = "slo_" + slo.name.replace("-", "_")
    # A floor of events: over a handful, a quantile is the slowest event and a ratio is one failure.
    if slo.kind == "latency":
        assert slo.threshold_seconds is not None  # the model requires it for latency SLOs
        spec = {
            "name": metric,
            "kind": "quantile",
            "quantile": slo.objective,
            "match": match,
            "min_rate": 0.2,
        }
        # A quarter of the way to the threshold beyond normal is worth a look before customers feel it.
        detector = rising(0.25 * slo.threshold_seconds, 0.5)
        about = f"{slo.objective:.0%} of events within {slo.threshold_seconds:g} s"
        limit = slo.threshold_seconds
    else:
        errors = {t.http.status_label: t.http.server_error}
        spec = {"name": f"{metric}_count", "kind": "ratio", "match": match, "numerator_match": errors}
        spec["min_rate"] = MIN_RATE
        detector = rising(slo.error_budget)  # a whole budget's share above normal
        about = f"at most {slo.error_budget:.2%} of events fail"
        limit = slo.error_budget
    spec["labels"] = labels
    # Customers feel what moves it: its rises page (early, from the baseline), and so does the moment
    # it passes the objective's own limit (at once: an abrupt fault is no earlier to see than that).
    description = f"SLO {slo.name} ({about}): its indicator over 1 minute"
    return signal(name, description, spec, detector=detector, severity="page", limit=limit)


def derive_signals(system: System, step: float = 15.0) -> list[dict[str, Any]]:
    """Raw signal entries (as in ``vigil.yaml``'s ``signals:``) for ``system``, evaluated every ``step``
    seconds (the burn rate counts events per step)."""
    return [
        *http_signals(system, step),
        *external_call_signals(system),
        *backend_signals(system),
        *messaging_signals(system),
        *component_signals(system),
        *(slo_signal(system, slo) for slo in system.slos),
    ]
