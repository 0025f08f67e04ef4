"""How much traffic this deployment takes: the knee of the marketplace, and catalog reads next to a bare
FastAPI hello-world on the same machine. Prints JSON.

Knee: the storefront load (Locust's weighted users) is stepped up until checkout p99 passes 500 ms or
errors pass 1% of requests; the knee is the last step within both (its requests/s), reported with the
cache on and off and with one and two replicas of gateway and catalog. Locust runs on the same two
cores as the services, as the bench's own figures do elsewhere: the knee is this machine's, load
generator included.

Ceiling: ``wrk`` (one thread, 32 connections) against a one-worker uvicorn serving ``{"hello": "world"}``
and, in turns, against catalog reads that hit the Redis cache (one hot product, one catalog replica,
directly and through the gateway): the catalog's requests/s as a share of the hello-world's (target
>= 0.5). Measured side by side in one run, best of ``--rounds``.

Usage: ``python bench/capacity.py [--step-s 30] [--rounds 3]`` on a running stack (``vigil stack up``).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from typing import Any

import requests

from vigil.demo_marketplace.loadgen import run_load
from vigil.demo_marketplace.runner import Marketplace
from vigil.stack import Stack
from vigil.stack.install import apt_install
from vigil.stack.private_prometheus import free_port

USERS = (20, 40, 80, 120, 160, 240, 320, 400, 480, 640)  # Locust users per step; the demo's base is 20
CHECKOUT, P99_LIMIT_MS, ERROR_LIMIT = "/api/checkout", 500.0, 0.01
HOT_PRODUCT = 7


def step(market: Marketplace, users: int, seconds: float) -> dict[str, Any]:
    result = run_load(market.url("gateway"), shape="steady", base_users=users, duration_s=seconds, seed=users)
    total, checkout = result.total, result.routes.get(CHECKOUT)
    assert total is not None, result.log_tail
    errors = total.failures / total.requests if total.requests else 1.0
    p99 = checkout.p99_ms if checkout is not None and checkout.p99_ms is not None else float("inf")
    return {
        "users": users,
        "rps": round(total.rps, 1),
        "checkout_p99_ms": p99,
        "error_ratio": round(errors, 4),
        "within": p99 <= P99_LIMIT_MS and errors <= ERROR_LIMIT,
    }


def knee(market: Marketplace, *, cache: bool, replicas: int, seconds: float) -> dict[str, Any]:
    market.up({"gateway": replicas, "catalog": replicas}, cache_enabled=cache)
    steps = []
    for users in USERS:
        steps.append(step(market, users, seconds))
        if not steps[-1]["within"]:
            break
    good = [s for s in steps if s["within"]]
    return {
        "cache": cache,
        "replicas": replicas,
        "knee_rps": good[-1]["rps"] if good else 0.0,
        "knee_users": good[-1]["users"] if good else None,
        "limit_reached": not steps[-1]["within"],  # False: the last step was still within both
        "steps": steps,
    }


def wrk(url: str, seconds: float = 10.0) -> float:
    """Requests/s ``wrk`` sustains against ``url`` (non-2xx answers count against it)."""
    out = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{seconds:.0f}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests_done = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rate * (1 - int(bad.group(1)) / requests_done) if bad else rate


def serve_hello(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def ceiling(market: Marketplace, rounds: int) -> dict[str, Any]:
    """Cache-hit catalog reads vs a bare FastAPI hello-world, in turns, best of ``rounds``."""
    market.up({"gateway": 1, "catalog": 1}, cache_enabled=True)
    port = free_port()
    hello = subprocess.Popen([sys.executable, __file__, "--serve-hello", str(port)])
    try:
        urls = {
            "hello_world": f"http://127.0.0.1:{port}/",
            "catalog_direct": f"{market.url('catalog')}/products/{HOT_PRODUCT}",
            "catalog_via_gateway": f"{market.url('gateway')}/api/products/{HOT_PRODUCT}",
        }
        deadline = time.monotonic() + 30
        for url in urls.values():  # up, and the product in the cache
            while True:
                try:
                    if requests.get(url, timeout=2).ok:
                        break
                except requests.RequestException:
                    pass
                assert time.monotonic() < deadline, f"{url} does not answer"
                time.sleep(0.3)
        best = dict.fromkeys(urls, 0.0)
        for _ in range(rounds):
            for name, url in urls.items():
                best[name] = max(best[name], wrk(url))
    finally:
        hello.terminate()
        hello.wait(timeout=10)
    return {
        "rps": {name: round(rate) for name, rate in best.items()},
        "catalog_direct_vs_hello": round(best["catalog_direct"] / best["hello_world"], 3),
        "catalog_via_gateway_vs_hello": round(best["catalog_via_gateway"] / best["hello_world"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step-s", type=float, default=30.0, help="seconds per load step")
    parser.add_argument("--rounds", type=int, default=3, help="wrk rounds per target (best kept)")
    parser.add_argument("--serve-hello", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_hello:
        serve_hello(args.serve_hello)
        return
    say = lambda line: print(line, file=sys.stderr)  # noqa: E731
    if shutil.which("wrk") is None:
        apt_install(["wrk"], say)
    stack = Stack(log=say)
    stack.up()
    market = Marketplace(stack.settings, log=say)
    before = market.replicas()
    try:
        result = {"ceiling": ceiling(market, args.rounds), "knees": []}
        for cache in (True, False):
            for replicas in (1, 2):
                result["knees"].append(knee(market, cache=cache, replicas=replicas, seconds=args.step_s))
                say(json.dumps(result["knees"][-1]))
    finally:
        market.up(before, cache_enabled=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
