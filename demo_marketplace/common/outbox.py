"""A transactional outbox: a message is stored in the same transaction as the change it announces.

The request that wrote it publishes it at once (with the broker's confirm) and deletes it; whatever a
killed process, a broker outage or an unconfirmed publish leaves behind, the relay publishes later.
So a committed change is always announced, at least once: consumers are idempotent for the rare
second copy (a process killed between the confirm and the delete). Without it, an order written
while RabbitMQ was away, or by a process killed before its publish, stayed 'placed' for ever.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from psycopg import AsyncConnection

from vigil.demo_marketplace.common.broker import TRANSIENT_ERRORS, Broker
from vigil.demo_marketplace.common.clients import Database
from vigil.demo_marketplace.common.telemetry import ServiceMetrics

log = logging.getLogger(__name__)

RELAY_EVERY_S = 1.0
# The relay leaves younger messages to the request publishing them: one publish waits at most 10 s
# for its confirm, so a message this old is not being published by anyone (no needless second copy).
RELAY_AFTER_S = 30.0
RELAY_BATCH = 100


async def store(
    conn: AsyncConnection[Any], routing_key: str, payload: dict[str, Any], *, message_id: str
) -> None:
    """Store the message in ``conn``'s transaction: it commits, and is announced, with the change."""
    await conn.execute(
        "INSERT INTO outbox (message_id, routing_key, body) VALUES (%s, %s, %s)",
        (message_id, routing_key, json.dumps(payload)),
    )


async def publish_now(
    db: Database, broker: Broker, routing_key: str, payload: dict[str, Any], *, message_id: str
) -> bool:
    """Publish a stored message and delete it once confirmed; False leaves it to the relay."""
    try:
        await broker.publish(routing_key, payload, message_id=message_id)
        async with db.connection("outbox_delete") as conn:
            await conn.execute("DELETE FROM outbox WHERE message_id = %s", (message_id,))
    except Exception as error:  # whatever it was, the change is committed: the relay announces it
        log.warning("%s %s left to the outbox relay: %r", routing_key, message_id, error)
        return False
    return True


async def relay_once(db: Database, broker: Broker, *, older_than_s: float = RELAY_AFTER_S) -> int:
    """Publish (and delete) up to a batch of messages left in the outbox; how many it published.

    ``FOR UPDATE SKIP LOCKED``: replicas relaying at the same time take different messages. A failed
    publish ends the batch, keeping the deletes of those published before it (no second copies).
    """
    published, failure = 0, None
    async with db.connection("outbox_relay") as conn, conn.transaction():
        cursor = await conn.execute(
            "SELECT id, message_id, routing_key, body FROM outbox"
            " WHERE created_at < now() - make_interval(secs => %s)"
            " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
            (older_than_s, RELAY_BATCH),
        )
        for row in await cursor.fetchall():
            try:
                await broker.publish(row["routing_key"], row["body"], message_id=row["message_id"])
            except Exception as error:
                failure = error
                break
            await conn.execute("DELETE FROM outbox WHERE id = %s", (row["id"],))
            published += 1
    if failure is not None:
        raise failure
    return published


async def pending(db: Database) -> int:
    rows = await db.fetch("outbox_pending", "SELECT count(*) AS n FROM outbox")
    return int(rows[0]["n"])


async def relay(db: Database, broker: Broker, metrics: ServiceMetrics) -> None:
    """Relay left messages for ever (a task of the service's lifetime); an outage is waited out."""
    m = metrics
    while True:
        try:
            relayed = await relay_once(db, broker)
            if relayed:
                log.warning("outbox relay published %d messages left unannounced", relayed)
                m.outbox_relayed.labels(m.service).inc(relayed)
            m.outbox_pending.labels(m.service).set(await pending(db))
        except TRANSIENT_ERRORS as error:  # PostgreSQL or RabbitMQ away: the messages wait, nothing lost
            log.warning("outbox relay waits: %r", error)
        except Exception:  # anything else is a bug to see in the logs, but must not end the relay
            log.exception("outbox relay failed")
        await asyncio.sleep(RELAY_EVERY_S)
