"""Dead-letter queues: what is in them, and replaying them into the queue they came from.

A replay takes at most the messages that were dead when it started (a message that fails again is
dead-lettered again, never replayed in a loop). Each one is published to its own queue through the
default exchange, not to the topic exchange: other queues bound to the same routing key already had
their copy. It is published with a broker confirm before the dead copy is acked, so a crash in between
gives a duplicate, which the consumers' idempotency absorbs, never a loss.
"""

from __future__ import annotations

import asyncio

import aio_pika
from aio_pika.exceptions import ChannelClosed

from vigil.demo_marketplace.catalog import QUEUES

DEAD_SUFFIX = ".dead"


def queue_names() -> list[str]:
    return [q.name for q in QUEUES]


def _check(queue: str) -> None:
    if queue not in queue_names():
        raise ValueError(f"unknown queue {queue!r}; the marketplace's queues are: {', '.join(queue_names())}")


async def _depths(url: str) -> dict[str, tuple[int, int]]:
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        depths = {}
        for name in queue_names():
            channel = await connection.channel()
            try:
                live = await channel.declare_queue(name, passive=True)
                dead = await channel.declare_queue(name + DEAD_SUFFIX, passive=True)
                depths[name] = (
                    live.declaration_result.message_count or 0,
                    dead.declaration_result.message_count or 0,
                )
            except ChannelClosed:  # not declared yet: no service has started
                depths[name] = (0, 0)
        return depths


def depths(url: str) -> dict[str, tuple[int, int]]:
    """Per queue: (messages waiting, messages dead-lettered)."""
    return asyncio.run(_depths(url))


async def _replay(url: str, queue: str, limit: int | None) -> int:
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        dead = await channel.declare_queue(queue + DEAD_SUFFIX, passive=True)
        todo = dead.declaration_result.message_count or 0
        if limit is not None:
            todo = min(todo, limit)
        replayed = 0
        while replayed < todo:
            message = await dead.get(no_ack=False, fail=False, timeout=10)
            if message is None:
                break
            await channel.default_exchange.publish(
                aio_pika.Message(
                    message.body,
                    headers=dict(message.headers or {}),
                    content_type=message.content_type,
                    message_id=message.message_id,
                    timestamp=message.timestamp,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=queue,
                timeout=10,
            )
            await message.ack()
            replayed += 1
        return replayed


def replay(url: str, queue: str, limit: int | None = None) -> int:
    """Move ``queue``'s dead letters (at most ``limit``) back into ``queue``; returns how many."""
    _check(queue)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return asyncio.run(_replay(url, queue, limit))
