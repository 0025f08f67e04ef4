"""The order pipeline under chaos, short form of ``bench/orders_chaos.py``: replicas killed with -9,
RabbitMQ and PostgreSQL restarted by the stack's own commands, the payment provider failing on purpose,
all under Locust's load. No acknowledged order may be lost or charged twice, and the dead-letter queues
may hold only what the provider fault failed, until the replay puts them through."""

from __future__ import annotations

from bench.orders_chaos import run
from vigil.demo_marketplace.runner import Marketplace
from vigil.stack import Stack


def test_no_acknowledged_order_is_lost_or_charged_twice(marketplace: Marketplace, stack: Stack) -> None:
    replicas = marketplace.replicas()
    try:
        # 60 s: long enough for the restarts (RabbitMQ is away ~20 s) and a 15 s provider outage.
        result = run(marketplace, stack, duration=60, kills=4, seed=7, users=30, say=lambda _line: None)
    finally:
        marketplace.up(replicas)  # back to what the other tests run against
    assert result["kills"] >= 3, result  # a kill is skipped only when every replica is being revived
    assert set(result["restarts_seconds_away"]) == {"rabbitmq", "postgresql"}
    assert result["acknowledged"] > 0, result
    assert result["lost"] == 0, result
    assert result["outbox_left"] == 0, result  # every committed order was announced
    assert result["charged_twice"] == 0, result
    assert result["paid"] == result["fulfilled"] == result["acknowledged"], result
    assert result["statuses_after_replay"] == {"fulfilled": result["acknowledged"]}, result
    # Dead letters come only from the provider fault: each is one order it failed, and nothing else.
    assert result["dead_lettered"]["warehouse.order-paid"] == 0, result
    assert result["dead_lettered"]["payments.order-placed"] == result["payment_failed_on_purpose"], result
    assert result["replayed"] >= result["payment_failed_on_purpose"], result
