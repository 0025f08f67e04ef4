"""Checkout: the order is stored, then announced on RabbitMQ with a broker confirm."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from vigil.demo_marketplace.common import logs
from vigil.demo_marketplace.common.deps import BrokerDep, DbDep, ResourcesDep

router = APIRouter()
log = logging.getLogger(__name__)


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
    async with db.connection("insert_order") as conn:
        await conn.execute(
            "INSERT INTO orders (id, cart_id, items, total_cents, status) VALUES (%s, %s, %s, %s, 'placed')",
            (order_id, body.cart_id, json.dumps(cart["items"]), cart["total_cents"]),
        )
    try:
        await broker.publish(
            "order.placed",
            {"order_id": order_id, "total_cents": cart["total_cents"], "items": cart["items"]},
            message_id=order_id,
        )
    except Exception as error:
        # Not confirmed by the broker: the order must not silently vanish, so it is marked and the
        # customer is told to retry.
        async with db.connection("fail_order") as conn:
            await conn.execute("UPDATE orders SET status = 'failed' WHERE id = %s", (order_id,))
        log.error("order not published", exc_info=error)
        raise HTTPException(503, "checkout unavailable, please retry") from error
    m = resources.metrics
    m.orders.labels(m.service, "placed").inc()
    log.info("order placed", extra={"event.action": "order-placed"})
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
