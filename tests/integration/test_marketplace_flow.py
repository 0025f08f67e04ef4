"""The marketplace end to end on the real PostgreSQL, Redis, RabbitMQ and Elasticsearch."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest
import redis
import requests

from tests.integration.market import api, checkout, metric_sum
from vigil.demo_marketplace.faults import Injector
from vigil.demo_marketplace.runner import Marketplace

pytestmark = pytest.mark.integration


def wait_for_status(market: Marketplace, order_id: str, status: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        order = api(market, "GET", f"/api/orders/{order_id}").json()
        if order["status"] == status or time.monotonic() > deadline:
            return order
        time.sleep(0.2)


def test_an_order_flows_through_rabbitmq_to_fulfilment(marketplace: Marketplace) -> None:
    published = metric_sum(marketplace, "orders", "messaging_published_total", outcome="confirmed")
    order_id = checkout(marketplace, product_id=11, quantity=2)
    order = wait_for_status(marketplace, order_id, "fulfilled")
    assert order["status"] == "fulfilled"
    assert order["paid_at"] is not None
    with psycopg.connect(marketplace.dsn) as conn:
        payments = conn.execute("SELECT count(*) FROM payments WHERE order_id = %s", (order_id,)).fetchone()
        reserved = conn.execute(
            "SELECT product_id, quantity FROM reservations WHERE order_id = %s", (order_id,)
        ).fetchall()
    assert payments == (1,), "charged exactly once"
    assert reserved == [(11, 2)]
    assert (
        metric_sum(marketplace, "orders", "messaging_published_total", outcome="confirmed") == published + 1
    )
    assert metric_sum(marketplace, "warehouse", "marketplace_order_fulfilment_delay_seconds_count") >= 1
    with psycopg.connect(marketplace.dsn) as conn:
        left = conn.execute("SELECT count(*) FROM outbox WHERE message_id = %s", (order_id,)).fetchone()
    assert left == (0,), "a confirmed announcement leaves the outbox"


def test_a_retried_checkout_with_its_idempotency_key_places_one_order(marketplace: Marketplace) -> None:
    """A client that never got its answer retries with the same key: the same order comes back (200),
    none is placed twice; the key reused for another cart is refused (409)."""
    key = f"checkout-{uuid.uuid4()}"

    def check_out(cart: str) -> requests.Response:
        headers = {"Idempotency-Key": key}
        return api(marketplace, "POST", "/api/checkout", json={"cart_id": cart}, headers=headers)

    cart, other = (f"test-{uuid.uuid4().hex[:12]}" for _ in range(2))
    for c in (cart, other):
        assert api(marketplace, "POST", f"/api/cart/{c}/items", json={"product_id": 5, "quantity": 1}).ok
    first, again, reused = check_out(cart), check_out(cart), check_out(other)
    answers = [first.status_code, again.status_code, reused.status_code]
    assert answers == [201, 200, 409], (first.text, again.text, reused.text)
    assert again.json()["order_id"] == first.json()["order_id"]
    with psycopg.connect(marketplace.dsn) as conn:
        placed = conn.execute("SELECT count(*) FROM orders WHERE idempotency_key = %s", (key,)).fetchone()
    assert placed == (1,)
    assert wait_for_status(marketplace, first.json()["order_id"], "fulfilled")["status"] == "fulfilled"


def test_an_order_left_unannounced_is_published_by_the_outbox_relay(marketplace: Marketplace) -> None:
    """What a checkout killed between its commit and its publish leaves (or one that met RabbitMQ
    away): the order and its order.placed committed, never published. The relay announces it."""
    order_id = str(uuid.uuid4())
    items = '[{"product_id": 9, "quantity": 1, "price_cents": 1999}]'
    body = f'{{"order_id": "{order_id}", "total_cents": 1999, "items": {items}}}'
    relayed = metric_sum(marketplace, "orders", "marketplace_outbox_relayed_messages_total")
    with psycopg.connect(marketplace.dsn) as conn, conn.transaction():
        conn.execute(
            "INSERT INTO orders (id, cart_id, items, total_cents, status, created_at)"
            " VALUES (%s, 'test-outbox', %s, 1999, 'placed', now() - interval '1 minute')",
            (order_id, items),
        )
        # A minute old: older than any publish still under way, so no request is publishing it.
        conn.execute(
            "INSERT INTO outbox (message_id, routing_key, body, created_at)"
            " VALUES (%s, 'order.placed', %s, now() - interval '1 minute')",
            (order_id, body),
        )
    order = wait_for_status(marketplace, order_id, "fulfilled")  # the relay looks every second
    assert order["status"] == "fulfilled", order
    with psycopg.connect(marketplace.dsn) as conn:
        left = conn.execute("SELECT count(*) FROM outbox WHERE message_id = %s", (order_id,)).fetchone()
        charged = conn.execute("SELECT count(*) FROM payments WHERE order_id = %s", (order_id,)).fetchone()
    assert (left, charged) == ((0,), (1,)), "announced once, charged once"
    assert metric_sum(marketplace, "orders", "marketplace_outbox_relayed_messages_total") >= relayed + 1


def test_a_redelivered_order_is_not_charged_twice(marketplace: Marketplace) -> None:
    import pika

    order_id = checkout(marketplace)
    assert wait_for_status(marketplace, order_id, "fulfilled")["status"] == "fulfilled"
    duplicates = metric_sum(marketplace, "payments", "messaging_consumed_total", outcome="duplicate")
    # Publish the same order.placed again, as a broker would redeliver it after a consumer crash.
    with pika.BlockingConnection(pika.URLParameters(marketplace.stack.amqp_url)) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        body = (
            f'{{"order_id": "{order_id}", "total_cents": 100, "items": [{{"product_id": 7, "quantity": 1,'
            f' "price_cents": 100}}]}}'
        )
        channel.basic_publish(
            "orders",
            "order.placed",
            body.encode(),
            properties=pika.BasicProperties(message_id=order_id, delivery_mode=2),
        )
    deadline = time.monotonic() + 60  # a redelivery takes a second; room for a busy machine
    while metric_sum(marketplace, "payments", "messaging_consumed_total", outcome="duplicate") == duplicates:
        assert time.monotonic() < deadline, "the redelivery was not consumed"
        time.sleep(0.2)
    with psycopg.connect(marketplace.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM payments WHERE order_id = %s", (order_id,)).fetchone() == (
            1,
        )
        assert conn.execute(
            "SELECT count(*) FROM reservations WHERE order_id = %s", (order_id,)
        ).fetchone() == (1,)


def test_the_payment_provider_charges_an_idempotency_key_once(marketplace: Marketplace) -> None:
    """A client retrying after a crash (same key) gets the first charge back, not a second one."""
    order = f"test-{uuid.uuid4()}"
    charge = {"order_id": order, "amount_cents": 1250}
    url = f"{marketplace.url('payment-gateway')}/v1/charges"
    first = requests.post(url, json=charge, headers={"idempotency-key": order}, timeout=10)
    again = requests.post(url, json=charge, headers={"idempotency-key": order}, timeout=10)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert again.json()["charge_id"] == first.json()["charge_id"]
    listed = requests.get(url, params={"order_id": order}, timeout=10).json()["data"]
    assert [c["charge_id"] for c in listed] == [first.json()["charge_id"]]
    # Without a key every request is a new charge, as with real providers.
    requests.post(url, json=charge, timeout=10).raise_for_status()
    assert len(requests.get(url, params={"order_id": order}, timeout=10).json()["data"]) == 2


def test_catalog_reads_are_served_from_redis_the_second_time(marketplace: Marketplace) -> None:
    def counters() -> tuple[float, float]:
        hits = metric_sum(marketplace, "catalog", "cache_requests_total", cache="product", result="hit")
        queries = metric_sum(
            marketplace, "catalog", "db_client_operation_duration_seconds_count", operation="get_product"
        )
        return hits, queries

    # Other tests' traffic reads random products, so the product is evicted first (a cold key whatever ran
    # before), and the counters are per service, so a round in which other requests landed says nothing
    # either way and is measured again.
    with redis.Redis.from_url(marketplace.stack.redis_url) as cache:
        for attempt in range(3):
            product = 4000 + (int(time.time()) + 300 * attempt) % 900
            cache.delete(f"product:{product}")
            hits, queries = counters()
            first = api(marketplace, "GET", f"/api/products/{product}")
            second = api(marketplace, "GET", f"/api/products/{product}")
            assert first.status_code == second.status_code == 200
            assert first.json()["product"] == second.json()["product"]
            hits_after, queries_after = counters()
            if (hits_after - hits, queries_after - queries) == (1, 1):
                break
    assert hits_after == hits + 1, "the second read was a cache hit"
    assert queries_after == queries + 1, "only the first read went to PostgreSQL"


def test_checkout_survives_recommendations_going_down(marketplace: Marketplace) -> None:
    injector = Injector(marketplace)
    worker = threading.Thread(target=injector.inject, args=("recommendations-crash", 30.0))
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while any(
            marketplace._pidfile(r.name).running_pid() for r in marketplace.replica_list("recommendations")
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        with pytest.raises(requests.ConnectionError):
            requests.get(
                f"http://127.0.0.1:{marketplace.replica_list('recommendations')[0].port}/healthz", timeout=1
            )
        page = api(marketplace, "GET", "/api/products/42")
        assert page.status_code == 200
        assert page.json()["recommendations"] == []  # served without them
        order_id = checkout(marketplace)
        assert wait_for_status(marketplace, order_id, "fulfilled")["status"] == "fulfilled"
    finally:
        injector.stop.set()
        worker.join()
    marketplace.wait_healthy()  # the crashed replicas are back
    assert api(marketplace, "GET", "/api/products/42").json()["recommendations"] != []


def test_logs_reach_elasticsearch_with_the_order_id(marketplace: Marketplace) -> None:
    from elasticsearch import Elasticsearch

    order_id = checkout(marketplace)
    es = Elasticsearch(marketplace.stack.elasticsearch_url)
    deadline = time.monotonic() + 60  # shipping and a refresh take seconds; room for a busy machine
    while True:
        es.indices.refresh(index="logs-marketplace-*")
        hits = es.search(index="logs-marketplace-*", query={"term": {"labels.order_id": order_id}}, size=20)
        services = {h["_source"]["service"]["name"] for h in hits["hits"]["hits"]}
        if {"orders", "payments", "warehouse"} <= services or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {"orders", "payments", "warehouse"} <= services
