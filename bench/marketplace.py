"""Benchmark the demo marketplace on this machine; prints JSON.

- sustained rps and p50/p99 per key route at baseline load and at 5x (Black Friday level);
- catalog reads served from Redis: PostgreSQL queries per catalog request with the cache on (from cold,
  then warm) vs off, under the same load, measured side by side in one run;
- orders placed == orders fulfilled once the pipeline has drained.

Usage: python bench/marketplace.py [--base-users 20] [--duration 60]
Needs the stack (`vigil stack up`); starts the marketplace if it is not running.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from vigil.demo_marketplace.loadgen import LoadResult, run_load
from vigil.demo_marketplace.runner import Marketplace

KEY_ROUTES = (
    "/api/products",
    "/api/products/{product_id}",
    "/api/search",
    "/api/cart/{cart_id}/items",
    "/api/checkout",
)


def catalog_counter(market: Marketplace, sample: str, **labels: str) -> float:
    total = 0.0
    for replica in market.replica_list("catalog"):
        text = requests.get(f"http://{market.stack.host}:{replica.port}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            total += sum(
                s.value
                for s in family.samples
                if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
            )
    return total


def route_figures(result: LoadResult) -> dict[str, Any]:
    figures = {}
    for name in KEY_ROUTES:
        stats = result.routes.get(name)
        if stats is not None:
            figures[name] = {
                "rps": round(stats.rps, 2),
                "p50_ms": stats.p50_ms,
                "p99_ms": stats.p99_ms,
                "requests": stats.requests,
                "failures": stats.failures,
            }
    total = result.total
    assert total is not None, result.log_tail
    figures["all"] = {
        "rps": round(total.rps, 2),
        "p50_ms": total.p50_ms,
        "p99_ms": total.p99_ms,
        "requests": total.requests,
        "failures": total.failures,
    }
    return figures


def load(market: Marketplace, users: int, duration: float, seed: int) -> LoadResult:
    return run_load(market.url("gateway"), shape="steady", base_users=users, duration_s=duration, seed=seed)


def db_per_request(market: Marketplace, users: int, duration: float) -> dict[str, float]:
    """Catalog PostgreSQL queries per catalog HTTP request during one load run."""
    queries = catalog_counter(market, "db_client_operation_duration_seconds_count")
    served = catalog_counter(market, "http_server_request_duration_seconds_count")
    hits = catalog_counter(market, "cache_requests_total", result="hit")
    lookups = catalog_counter(market, "cache_requests_total")
    load(market, users, duration, seed=7)
    queries = catalog_counter(market, "db_client_operation_duration_seconds_count") - queries
    served = catalog_counter(market, "http_server_request_duration_seconds_count") - served
    hits = catalog_counter(market, "cache_requests_total", result="hit") - hits
    lookups = catalog_counter(market, "cache_requests_total") - lookups
    return {
        "catalog_requests": served,
        "db_queries": queries,
        "db_queries_per_request": queries / max(served, 1),
        "cache_hit_ratio": hits / lookups if lookups else 0.0,
    }


def wait_drained(market: Marketplace, timeout: float = 120) -> None:
    s = market.stack
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queues = requests.get(
            f"{s.rabbitmq_management_url}/api/queues/%2F",
            timeout=5,
            auth=(s.rabbitmq_user, s.rabbitmq_password),
        ).json()
        if all(q.get("messages", 0) == 0 for q in queues if not q["name"].endswith(".dead")):
            return
        time.sleep(2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60, help="seconds per load run")
    args = parser.parse_args()

    market = Marketplace(log=lambda _line: None)
    market.up(cache_enabled=True)
    started = datetime.now(UTC)
    baseline = load(market, args.base_users, args.duration, seed=1)
    surge = load(market, args.base_users * 5, args.duration, seed=2)

    # The cache is measured warm (steady state, what a running shop has): flush, warm up, then measure.
    redis.Redis.from_url(market.stack.redis_url).flushdb()
    cache_cold = db_per_request(market, args.base_users, args.duration)
    cache_on = db_per_request(market, args.base_users, args.duration)
    market.up(cache_enabled=False)
    try:
        cache_off = db_per_request(market, args.base_users, args.duration)
    finally:
        market.up(cache_enabled=True)

    wait_drained(market)
    time.sleep(2)
    with psycopg.connect(market.dsn) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM orders WHERE created_at >= %s GROUP BY status", (started,)
        ).fetchall()
    orders = dict(rows)
    placed = sum(orders.values()) - orders.get("failed", 0)
    print(
        json.dumps(
            {
                "machine": {
                    "cores": 2,
                    "note": "whole stack, marketplace and load generator share the machine",
                },
                "replicas": market.replicas(),
                "load": {
                    "base_users": args.base_users,
                    "surge_users": args.base_users * 5,
                    "seconds_per_run": args.duration,
                },
                "baseline": route_figures(baseline),
                "black_friday_5x": route_figures(surge),
                "cache": {
                    "on_cold": cache_cold,
                    "on_warm": cache_on,
                    "off": cache_off,
                    "db_load_removed": 1
                    - cache_on["db_queries_per_request"] / max(cache_off["db_queries_per_request"], 1e-9),
                },
                "orders": {
                    "by_status": orders,
                    "placed": placed,
                    "fulfilled": orders.get("fulfilled", 0),
                    "placed_equals_fulfilled": placed == orders.get("fulfilled", 0),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
