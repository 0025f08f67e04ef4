"""Checkout: the order and its ``order.placed`` are committed together (a transactional outbox), then
announced on RabbitMQ with a broker confirm; what the broker did not confirm, the outbox relay announces."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from vigil.demo_marketplace.common import logs, outbox
from vigil.demo_marketplace.common.app import Resources
from vigil.demo_marketplace.common.deps import BrokerDep, DbDep, ResourcesDep

router = APIRouter()
log = logging.getLogger(__name__)
ORDER_PLACED = "order.placed"


class Checkout(BaseModel):
    cart_id: str


@router.post("/orders", status_code=201)
async def place_order(
    body: Checkout, db: DbDep, broker: BrokerDep, resources: ResourcesDep
) -> dict[str, Any]:
    cart_response = await resources.peers.request("cart", "GET", f"/carts/{body.cart_id}")
    if cart_response.status_code != 200:
        raise HTTPException(502, f"cart answered {cart_response.status_code}")
    cart = cart_response.json()
    if not cart["items"]:
        raise HTTPException(400, "the cart is empty")
    order_id = str(uuid.uuid4())
    logs.order_id.set(order_id)
    placed = {"order_id": order_id, "total_cents": cart["total_cents"], "items": cart["items"]}
    async with db.connection("insert_order") as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO orders (id, cart_id, items, total_cents, status) VALUES (%s, %s, %s, %s, 'placed')",
            (order_id, body.cart_id, json.dumps(cart["items"]), cart["total_cents"]),
        )
        await outbox.store(conn, ORDER_PLACED, placed, message_id=order_id)
    # Committed: the order will be announced whatever happens now to this process or to RabbitMQ.
    m = resources.metrics
    m.orders.labels(m.service, "placed").inc()
    log.info("order placed", extra={"event.action": "order-placed"})
    await outbox.publish_now(db, broker, ORDER_PLACED, placed, message_id=order_id)
    await resources.peers.request("cart", "DELETE", f"/carts/{body.cart_id}")
    return {"order_id": order_id, "status": "placed", "total_cents": cart["total_cents"]}


@router.get("/orders/{order_id}")
async def get_order(order_id: uuid.UUID, db: DbDep) -> dict[str, Any]:
    rows = await db.fetch(
        "get_order",
        "SELECT id, status, total_cents, created_at, paid_at, fulfilled_at FROM orders WHERE id = %s",
        (order_id,),
    )
    if not rows:
        raise HTTPException(404, f"no order {order_id}")
    return rows[0]


async def start(resources: Resources) -> None:
    assert resources.db is not None
    assert resources.broker is not None
    relay = outbox.relay(resources.db, resources.broker, resources.metrics)
    resources.tasks.append(asyncio.create_task(relay, name="outbox relay"))
