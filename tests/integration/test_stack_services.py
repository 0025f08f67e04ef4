"""Each service of the local stack is real and reachable through its usual client."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pika
import psycopg
import pytest
import redis
import requests
from elasticsearch import Elasticsearch

from vigil.stack import Stack, StackSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(stack: Stack) -> StackSettings:
    return stack.settings


def test_postgresql_writes_and_reads_a_row(settings: StackSettings) -> None:
    marker = uuid.uuid4().hex
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS stack_check (id text PRIMARY KEY, at timestamptz NOT NULL)")
        conn.execute("INSERT INTO stack_check (id, at) VALUES (%s, now())", (marker,))
    with psycopg.connect(settings.postgres_dsn) as conn:  # a second connection sees the committed row
        row = conn.execute("SELECT id FROM stack_check WHERE id = %s", (marker,)).fetchone()
        conn.execute("DELETE FROM stack_check WHERE id = %s", (marker,))
    assert row == (marker,)


def test_redis_sets_and_gets(settings: StackSettings) -> None:
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    key = f"stack-check:{uuid.uuid4().hex}"
    assert client.set(key, "ok", ex=60)
    assert client.get(key) == "ok"
    assert 0 < client.ttl(key) <= 60


def test_rabbitmq_publishes_and_consumes_a_persistent_message(settings: StackSettings) -> None:
    queue = f"stack-check-{uuid.uuid4().hex[:8]}"
    body = uuid.uuid4().bytes
    with pika.BlockingConnection(pika.URLParameters(settings.amqp_url)) as connection:
        channel = connection.channel()
        channel.confirm_delivery()  # basic_publish raises unless the broker confirms
        channel.queue_declare(queue, durable=True)
        channel.basic_publish(
            "",
            queue,
            body,
            properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
            mandatory=True,
        )
    # A fresh connection proves the message was stored by the broker, not held by the client.
    with pika.BlockingConnection(pika.URLParameters(settings.amqp_url)) as connection:
        channel = connection.channel()
        method, properties, received = channel.basic_get(queue, auto_ack=False)
        assert method is not None, "the message was not in the queue"
        channel.basic_ack(method.delivery_tag)
        channel.queue_delete(queue)
    assert received == body
    assert properties.delivery_mode == pika.DeliveryMode.Persistent.value


def test_elasticsearch_indexes_and_searches_a_document(settings: StackSettings) -> None:
    es = Elasticsearch(settings.elasticsearch_url, request_timeout=30)
    index = f"stack-check-{uuid.uuid4().hex[:8]}"
    try:
        es.index(index=index, document={"message": "order 42 paid", "service.name": "payments"}, refresh=True)
        hits = es.search(index=index, query={"match": {"message": "paid"}})["hits"]
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)
    assert hits["total"]["value"] == 1
    assert hits["hits"][0]["_source"]["service.name"] == "payments"


def test_prometheus_scrapes_the_stack(settings: StackSettings) -> None:
    wanted = {"prometheus", "alertmanager", "postgres", "redis", "rabbitmq"}
    deadline = time.monotonic() + 60  # a fresh Prometheus needs a scrape interval or two
    while True:
        result = requests.get(
            f"{settings.prometheus_url}/api/v1/query", params={"query": "up"}, timeout=5
        ).json()
        assert result["status"] == "success"
        up = {s["metric"]["job"]: s["value"][1] for s in result["data"]["result"]}
        if all(up.get(job) == "1" for job in wanted) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {job: up.get(job) for job in wanted} == dict.fromkeys(wanted, "1")


def test_alertmanager_accepts_and_lists_an_alert(settings: StackSettings) -> None:
    marker = uuid.uuid4().hex
    now = datetime.now(UTC)
    alert = {
        "labels": {"alertname": "StackCheck", "service": "catalog", "check": marker},
        "annotations": {"summary": "stack integration check"},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=5)).isoformat(),
    }
    posted = requests.post(f"{settings.alertmanager_url}/api/v2/alerts", json=[alert], timeout=5)
    assert posted.status_code == 200, posted.text
    listed = requests.get(
        f"{settings.alertmanager_url}/api/v2/alerts", params={"filter": f'check="{marker}"'}, timeout=5
    ).json()
    assert [a["labels"]["alertname"] for a in listed] == ["StackCheck"]
    assert listed[0]["status"]["state"] == "active"
    # Resolve it again so it does not linger for the other tests.
    alert["endsAt"] = datetime.now(UTC).isoformat()
    requests.post(f"{settings.alertmanager_url}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()
