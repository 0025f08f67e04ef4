"""HAProxy in front of each service's replicas, generated from the catalog."""

from __future__ import annotations

from vigil.demo_marketplace.catalog import SERVICES, Service

STATS_PORT = 8404


def service_proxy(spec: Service, bind: str) -> list[str]:
    """A service's frontend and the head of its backend: its servers are added by the caller.

    Shared by the local HAProxy and the Compose one, so both balance and fail over alike.
    """
    return [
        f"frontend {spec.name}",
        f"    bind {bind}:{spec.port}",
        f"    default_backend {spec.name}",
        f"backend {spec.name}",
        "    balance leastconn",
        "    option httpchk GET /healthz",
        "    retry-on conn-failure empty-response",
        "    retries 2",
    ]


def haproxy_config(replicas: dict[str, int], host: str = "127.0.0.1") -> str:
    lines = [
        "global",
        "    maxconn 4096",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 30s",
        "    timeout server 30s",
        "    option http-keep-alive",
        "    # A replica that stops answering /healthz leaves the pool within a second.",
        "    default-server inter 500ms fall 2 rise 2",
        "frontend stats",
        f"    bind {host}:{STATS_PORT}",
        "    http-request use-service prometheus-exporter if { path /metrics }",
        "    stats enable",
        "    stats uri /stats",
    ]
    for spec in SERVICES:
        lines += service_proxy(spec, host)
        lines += [
            f"    server {spec.name}-{i} {host}:{spec.replica_port(i)} check"
            for i in range(replicas.get(spec.name, spec.default_replicas))
        ]
    return "\n".join(lines) + "\n"
