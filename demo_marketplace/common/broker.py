"""The RabbitMQ order pipeline: durable topology, confirmed publishing, acked consuming.

Delivery guarantees: publishers wait for the broker's confirm (a message is never silently
lost); consumers ack only after their work committed, so a crash means redelivery, and
handlers are idempotent, so a redelivery is harmless. Messages that cannot be processed
are rejected into a dead-letter queue rather than retried forever; a message that failed
because PostgreSQL or RabbitMQ itself was unreachable (a restart, a failover) is not at
fault and goes back to its queue to be tried again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import psycopg
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError

from vigil.demo_marketplace.catalog import DEAD_LETTER_EXCHANGE, EXCHANGE, QUEUES
from vigil.demo_marketplace.common.faults import FaultState, act_out_bad_release
from vigil.demo_marketplace.common.logs import order_id, request_id
from vigil.demo_marketplace.common.telemetry import ServiceMetrics

log = logging.getLogger(__name__)


class Duplicate(Exception):
    """The message was already processed (a redelivery); it is acknowledged without effect."""


# The infrastructure was unreachable, not the message wrong: PostgreSQL (a broken connection, or none
# free before the pool's timeout) or RabbitMQ (a publish not confirmed, a channel closed under us).
TRANSIENT_ERRORS = (
    psycopg.OperationalError,
    AMQPError,
    ChannelInvalidStateError,
    ConnectionError,
    TimeoutError,
)
REQUEUE_PAUSE_S = 1.0  # before a transient failure goes back to the queue: no hot loop while it lasts


Handler = Callable[[dict[str, Any]], Awaitable[None]]


class Broker:
    def __init__(self, url: str, metrics: ServiceMetrics, faults: FaultState) -> None:
        self.url, self.metrics, self.faults = url, metrics, faults
        self.connection: AbstractRobustConnection | None = None

    async def open(self) -> None:
        self.connection = await aio_pika.connect_robust(self.url, timeout=10)
        self.channel = await self.connection.channel(publisher_confirms=True)
        await declare_topology(self.channel)
        self.exchange = await self.channel.get_exchange(EXCHANGE)

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()

    async def publish(self, routing_key: str, payload: dict[str, Any], *, message_id: str) -> None:
        """Publish persistently and wait for the broker's confirm; raises if it is not confirmed."""
        m = self.metrics
        message = aio_pika.Message(
            json.dumps(payload).encode(),
            content_type="application/json",
            message_id=message_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            timestamp=time.time(),
            headers={"x-request-id": request_id.get() or ""},
        )
        try:
            await self.exchange.publish(message, routing_key=routing_key, mandatory=True, timeout=10)
        except Exception:
            m.messages_published.labels(m.service, routing_key, "failed").inc()
            raise
        m.messages_published.labels(m.service, routing_key, "confirmed").inc()

    async def consume(self, queue_name: str, handler: Handler, *, prefetch: int = 10) -> None:
        channel = await self.connection.channel() if self.connection else None
        assert channel is not None, "open() first"
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.get_queue(queue_name)
        await queue.consume(lambda message: self._handle(queue_name, handler, message), no_ack=False)

    async def _handle(self, queue: str, handler: Handler, message: AbstractIncomingMessage) -> None:
        m = self.metrics
        started = time.perf_counter()
        request_id.set(str((message.headers or {}).get("x-request-id") or "") or None)
        order_id.set(message.message_id)
        outcome = "ack"
        try:
            act_out_bad_release(self.faults, m)  # a bad build fails before the handler does any work
            await handler(json.loads(message.body))
            await message.ack()
        except Duplicate:
            outcome = "duplicate"
            await message.ack()
        except TRANSIENT_ERRORS as error:
            outcome = "requeued"
            log.warning("message requeued: %s", error, extra={"messaging.destination.name": queue})
            await asyncio.sleep(REQUEUE_PAUSE_S)
            await message.nack(requeue=True)
        except Exception as error:
            outcome = "dead_letter"
            log.error("message dead-lettered", exc_info=error, extra={"messaging.destination.name": queue})
            await message.reject(requeue=False)
        finally:
            m.messages_consumed.labels(m.service, queue, outcome).inc()
            m.message_duration.labels(m.service, queue).observe(time.perf_counter() - started)


async def declare_topology(channel: aio_pika.abc.AbstractChannel) -> None:
    """Declare the exchanges, queues and dead-letter queues (idempotent, safe from every service)."""
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    for q in QUEUES:
        queue = await channel.declare_queue(
            q.name, durable=True, arguments={"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE}
        )
        await queue.bind(exchange, routing_key=q.routing_key)
        dead = await channel.declare_queue(f"{q.name}.dead", durable=True)
        await dead.bind(dlx, routing_key=q.routing_key)
