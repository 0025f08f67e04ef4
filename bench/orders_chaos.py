"""Orders under chaos: at 5x load, kill -9 order/payment/warehouse replicas, restart RabbitMQ and
PostgreSQL, fail the payment provider on purpose, then count every acknowledged order in PostgreSQL.

Usage: ``python bench/orders_chaos.py [--duration 300] [--kills 24] [--seed 1]`` on a running stack
(``vigil stack up``); it starts the marketplace with two replicas of each killed service. Prints JSON:
orders acknowledged, paid, fulfilled, charged twice, lost; dead letters (and the payment failures the
provider fault made on purpose, which they must equal); kills and restarts. Only loopback traffic; the
load and every fault stop by themselves.

Checkouts are placed by the bench's own workers (their order ids are what "acknowledged" means: a 201
with an id, or a 200 with it for a retry with the checkout's Idempotency-Key) beside Locust's storefront
load at 5x the demo's users. After the chaos the bench waits for the queues and the orders' outbox to
drain, replays the payments dead letters (``vigil marketplace dlq replay``) once the provider is back,
drains again and counts.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import requests

from vigil.demo_marketplace import dlq
from vigil.demo_marketplace.faults import Injector
from vigil.demo_marketplace.loadgen.runner import start_load, stop_load
from vigil.demo_marketplace.runner import Marketplace, Replica
from vigil.stack import Stack

KILLED = ("orders", "payments", "warehouse")
REPLICAS = {name: 2 for name in KILLED}
PAYMENTS_QUEUE = "payments.order-placed"
FINAL = ("fulfilled", "payment_failed")  # where an order rests once the pipeline is done with it
DEMO_USERS = 20  # `vigil demo`'s base users: the load runs at 5x them


@dataclass
class Placed:
    """What the storefront said to the bench's checkouts: an order is acknowledged by a 201 with its id."""

    acknowledged: list[str] = field(default_factory=list)
    retried: int = 0  # acknowledged only on a retry with the checkout's Idempotency-Key
    refused: int = 0  # no acknowledgement after every retry (a killed replica, a restarting database)


CHECKOUT_TRIES = 3


def _place_orders(market: Marketplace, placed: Placed, stop: threading.Event, seed: int) -> None:
    rng, gateway = random.Random(seed), market.url("gateway")
    with requests.Session() as http:
        while not stop.is_set():
            cart = f"chaos-{uuid.uuid4().hex[:12]}"
            item = {"product_id": rng.randint(1, 5000), "quantity": rng.randint(1, 3)}
            try:
                http.post(f"{gateway}/api/cart/{cart}/items", json=item, timeout=10).raise_for_status()
            except requests.RequestException:
                placed.refused += 1
                continue
            order_id = _check_out(http, gateway, cart, stop)
            if order_id is None:
                placed.refused += 1
            else:
                placed.acknowledged.append(order_id[0])
                placed.retried += order_id[1] > 0
            stop.wait(rng.uniform(0.05, 0.3))


def _check_out(
    http: requests.Session, gateway: str, cart: str, stop: threading.Event
) -> tuple[str, int] | None:
    """A customer's checkout, retried as a careful client does when no answer came: with the same
    Idempotency-Key, so a retry returns the order a lost answer had placed. (order id, retries) or None."""
    key = f"chaos-{uuid.uuid4()}"
    for attempt in range(CHECKOUT_TRIES):
        try:
            headers = {"Idempotency-Key": key}
            answer = http.post(f"{gateway}/api/checkout", json={"cart_id": cart}, headers=headers, timeout=15)
        except requests.RequestException:
            answer = None
        if answer is not None and answer.status_code in (200, 201) and answer.json().get("order_id"):
            return answer.json()["order_id"], attempt
        if (answer is not None and answer.status_code < 500) or stop.wait(1.0):
            return None  # refused for good (a 4xx), or the bench is over
    return None


@contextmanager
def checkouts(market: Marketplace, workers: int = 4) -> Iterator[Placed]:
    """Workers placing orders through the storefront while the block runs."""
    placed, stop = Placed(), threading.Event()
    threads = [
        threading.Thread(target=_place_orders, args=(market, placed, stop, seed), daemon=True)
        for seed in range(workers)
    ]
    for thread in threads:
        thread.start()
    try:
        yield placed
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)


def plan(seed: int, duration: float, kills: int) -> list[tuple[float, str]]:
    """(offset seconds, action) sorted: kills spread over the run with jitter, RabbitMQ restarted at
    0.3, PostgreSQL at 0.55, the payment provider failing every charge from 0.75 (see ``run``)."""
    rng = random.Random(seed)
    slot = duration * 0.9 / max(kills, 1)
    steps = [(slot * (i + rng.uniform(0.1, 0.9)), f"kill:{rng.choice(KILLED)}") for i in range(kills)]
    steps += [(duration * 0.3, "restart:rabbitmq"), (duration * 0.55, "restart:postgresql")]
    steps.append((duration * 0.75, "fault:payment-errors"))
    return sorted(steps)


def kill_one(market: Marketplace, service: str, rng: random.Random) -> Replica | None:
    """SIGKILL one running replica of ``service``; None when none runs (all are being revived)."""
    running = [r for r in market.replica_list(service) if market.running(r)]
    if not running:
        return None
    replica = rng.choice(running)
    return replica if market.kill_replica(replica) is not None else None


def restart_component(stack: Stack, name: str) -> float:
    """The stack's own stop and start of one component; returns the seconds it was away."""
    one = Stack(stack.settings, names=[name], log=lambda _line: None)
    started = time.monotonic()
    one.down()
    one.up()
    return time.monotonic() - started


def wait_settled(market: Marketplace, ids: list[str], timeout: float) -> dict[str, int]:
    """Wait (up to ``timeout`` s) until no message waits in a queue or in the orders' outbox and every
    order in ``ids`` rests in a final state; returns the statuses of ``ids`` then."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = order_statuses(market, ids)
        waiting = sum(w for w, _ in dlq.depths(market.stack.amqp_url).values()) + outbox_left(market)
        settled = sum(n for status, n in statuses.items() if status in FINAL) == len(ids)
        if (settled and waiting == 0) or time.monotonic() > deadline:
            return statuses
        time.sleep(2)


def outbox_left(market: Marketplace) -> int:
    """Messages committed with their order but not yet confirmed by RabbitMQ (the relay's work)."""
    with psycopg.connect(market.dsn) as conn:
        row = conn.execute("SELECT count(*) FROM outbox").fetchone()
    assert row is not None
    return int(row[0])


def order_statuses(market: Marketplace, ids: list[str]) -> dict[str, int]:
    with psycopg.connect(market.dsn) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM orders WHERE id = ANY(%s::uuid[]) GROUP BY status", (ids,)
        ).fetchall()
    return {status: count for status, count in rows}


def count(market: Marketplace, ids: list[str], since: float) -> dict[str, Any]:
    """Every acknowledged order's fate, from PostgreSQL and the payment provider's own ledger."""
    with psycopg.connect(market.dsn) as conn:
        paid = conn.execute(
            "SELECT count(*) FROM payments WHERE order_id = ANY(%s::uuid[])", (ids,)
        ).fetchone()
        fulfilled = conn.execute(
            "SELECT count(*) FROM orders WHERE id = ANY(%s::uuid[]) AND status = 'fulfilled'", (ids,)
        ).fetchone()
        # Orders written but never acknowledged (the order service killed after its commit, the gateway
        # cut off): the customer was told to retry, and the outbox announces them all the same; shown so
        # nobody mistakes them for acknowledged ones.
        unacknowledged = conn.execute(
            "SELECT status, count(*) FROM orders WHERE created_at >= to_timestamp(%s)"
            " AND cart_id LIKE 'chaos-%%' AND NOT id = ANY(%s::uuid[]) GROUP BY status",
            (since, ids),
        ).fetchall()
    gateway = market.url("payment-gateway")
    with requests.Session() as http:
        charges = [
            len(http.get(f"{gateway}/v1/charges", params={"order_id": i}, timeout=10).json()["data"])
            for i in ids
        ]
    assert paid is not None
    assert fulfilled is not None
    return {
        "acknowledged": len(ids),
        "paid": paid[0],
        "fulfilled": fulfilled[0],
        "charged_twice": sum(1 for n in charges if n > 1),
        "charged_never": sum(1 for n in charges if n == 0),
        "lost": len(ids) - fulfilled[0],
        "unacknowledged_written": dict(unacknowledged),
        "outbox_left": outbox_left(market),
    }


def run(
    market: Marketplace,
    stack: Stack,
    *,
    duration: float,
    kills: int,
    seed: int,
    users: int = 5 * DEMO_USERS,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> dict[str, Any]:
    rng, steps = random.Random(seed), plan(seed, duration, kills)
    market.up(REPLICAS)
    injector, done, restarts = Injector(market), {"kills": 0}, {}
    since, fault_s = time.time(), max(15.0, duration * 0.1)
    dead_before = _dead_letters(market)  # earlier runs' dead letters stay until someone replays them
    load = start_load(market.url("gateway"), shape="steady", base_users=users, duration_s=duration, seed=seed)
    fault_thread = None
    try:
        with checkouts(market) as placed:
            started = time.monotonic()
            for offset, action in steps:
                time.sleep(max(0.0, started + offset - time.monotonic()))
                kind, _, what = action.partition(":")
                if kind == "kill":
                    replica = kill_one(market, what, rng)
                    if replica is None:
                        say(f"+{offset:5.0f}s no {what} replica running to kill")
                        continue
                    done["kills"] += 1
                    say(f"+{offset:5.0f}s kill -9 {replica.name}")
                    threading.Timer(rng.uniform(1, 4), market.start_replica, args=(replica,)).start()
                elif kind == "restart":
                    restarts[what] = round(restart_component(stack, what), 1)
                    say(f"+{offset:5.0f}s restarted {what} ({restarts[what]} s away)")
                else:
                    fault_thread = threading.Thread(
                        target=injector.inject, args=(what, fault_s, {"error_rate": 1.0}), daemon=True
                    )
                    fault_thread.start()
                    say(f"+{offset:5.0f}s {what} for {fault_s:.0f} s")
            time.sleep(max(0.0, started + duration - time.monotonic()))
    finally:
        stop_load(load)
        if fault_thread is not None:
            fault_thread.join()
    time.sleep(5)  # the last revived replicas start
    market.up(REPLICAS)  # any replica still down (a revival that lost a race) is started again
    ids = list(placed.acknowledged)
    before = wait_settled(market, ids, timeout=240)
    dead = {name: n - dead_before[name] for name, n in _dead_letters(market).items()}
    failed_on_purpose = _count_status(market, since, "payment_failed")
    replayed = dlq.replay(market.stack.amqp_url, PAYMENTS_QUEUE)
    after = wait_settled(market, ids, timeout=240)
    return {
        **count(market, ids, since),
        "refused": placed.refused,
        "acknowledged_on_a_retry": placed.retried,
        "dead_lettered": dead,
        "payment_failed_on_purpose": failed_on_purpose,
        "replayed": replayed,  # every dead letter of the payments queue, earlier runs' too
        "statuses_before_replay": before,
        "statuses_after_replay": after,
        "kills": done["kills"],
        "restarts_seconds_away": restarts,
        "duration_s": duration,
        "load_users": users,
        "seed": seed,
    }


def _dead_letters(market: Marketplace) -> dict[str, int]:
    return {name: dead for name, (_, dead) in dlq.depths(market.stack.amqp_url).items()}


def _count_status(market: Marketplace, since: float, status: str) -> int:
    """Orders of every customer (the load's too: they share the dead-letter queue) in ``status``."""
    with psycopg.connect(market.dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM orders WHERE created_at >= to_timestamp(%s) AND status = %s",
            (since, status),
        ).fetchone()
    assert row is not None
    return int(row[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load and chaos")
    parser.add_argument("--kills", type=int, default=24, help="kill -9 of random replicas")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--users", type=int, default=5 * DEMO_USERS, help="Locust users (5x the demo's)")
    args = parser.parse_args()
    stack = Stack(log=lambda line: print(line, file=sys.stderr))
    stack.up()
    market = Marketplace(stack.settings, log=lambda line: print(line, file=sys.stderr))
    result = run(market, stack, duration=args.duration, kills=args.kills, seed=args.seed, users=args.users)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
