"""Reserves stock for paid orders and fulfils them; idempotent through the reservations key."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter

from vigil.demo_marketplace.common.app import Resources
from vigil.demo_marketplace.common.broker import Duplicate

router = APIRouter()
log = logging.getLogger(__name__)
QUEUE = "warehouse.order-paid"


async def handle_order_paid(resources: Resources, order: dict[str, Any]) -> None:
    assert resources.db is not None
    m = resources.metrics
    stall = resources.faults.active("warehouse-stall")
    m.fault_active.labels(m.service, "warehouse-stall").set(1 if stall else 0)
    if stall:  # a slow downstream system (label printer, WMS) holding each message
        ramp = float(stall.get("ramp", 0.0))
        strength = min(1.0, stall["progress"] / ramp) if ramp > 0 else 1.0
        await _held_while_stalled(resources, float(stall.get("seconds_per_message", 2.0)) * strength)
    async with resources.db.connection("fulfil_order") as conn, conn.transaction():
        cursor = await conn.execute(
            "UPDATE orders SET status = 'fulfilled', fulfilled_at = now() "
            "WHERE id = %s AND status IN ('placed', 'paid')"
            " RETURNING extract(epoch FROM now() - created_at) AS age_seconds",
            (order["order_id"],),
        )
        row = await cursor.fetchone()
        if row is None:
            raise Duplicate(order["order_id"])
        for item in sorted(order["items"], key=lambda i: i["product_id"]):  # fixed order: no deadlocks
            await conn.execute(
                "UPDATE stock SET available = available - %s, reserved = reserved + %s WHERE product_id = %s",
                (item["quantity"], item["quantity"], item["product_id"]),
            )
            await conn.execute(
                "INSERT INTO reservations (order_id, product_id, quantity) VALUES (%s, %s, %s)",
                (order["order_id"], item["product_id"], item["quantity"]),
            )
    delay = float(row["age_seconds"])
    m.orders.labels(m.service, "fulfilled").inc()
    m.fulfilment_delay.labels(m.service).observe(delay)
    log.info("order fulfilled", extra={"event.action": "order-fulfilled", "event.duration": int(delay * 1e9)})


async def _held_while_stalled(resources: Resources, seconds: float) -> None:
    """Hold the message ``seconds``, or until the stall ends: when the printer is back the labels it held
    print at once, rather than long after the fault (a test's next scenario would meet them)."""
    clock = resources.faults.clock
    until = clock() + seconds
    while (left := until - clock()) > 0 and resources.faults.active("warehouse-stall"):
        await asyncio.sleep(min(1.0, left))


async def start(resources: Resources) -> None:
    assert resources.broker is not None

    async def handler(order: dict[str, Any]) -> None:
        await handle_order_paid(resources, order)

    await resources.broker.consume(QUEUE, handler, prefetch=10)
