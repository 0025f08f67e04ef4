"""Checkout: the order and its ``order.placed`` are committed together (a transactional outbox), then
announced on RabbitMQ with a broker confirm; what the broker did not confirm, the outbox relay announces.

A client that sends an ``Idempotency-Key`` may retry a checkout whose answer it never got (a timeout, a
replica killed after its commit): the retry answers 200 with the order the key placed, never a second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Header, HTTPException, Response
from pydantic import BaseModel

from vigil.demo_marketplace.common import logs, outbox
from vigil.demo_marketplace.common.app import Resources
from vigil.demo_marketplace.common.deps import BrokerDep, DbDep, ResourcesDep

router = APIRouter()
log = logging.getLogger(__name__)
ORDER_PLACED = "order.placed"


class Checkout(BaseModel):
    cart_id: str


IdempotencyKey = Annotated[str | None, Header(min_length=1, max_length=255)]


@router.post(
    "/orders",
    status_code=201,
    responses={
        200: {"description": "a retry: the order this Idempotency-Key placed"},
        409: {"description": "the Idempotency-Key placed an order for another cart"},
    },
)
async def place_order(
    body: Checkout,
    db: DbDep,
    broker: BrokerDep,
    resources: ResourcesDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    if idempotency_key is not None and (earlier := await _placed_with(db, idempotency_key)):
        return await _again(resources, earlier, body, response)
    cart_response = await resources.peers.request("cart", "GET", f"/carts/{body.cart_id}")
    if cart_response.status_code != 200:
        raise HTTPException(502, f"cart answered {cart_response.status_code}")
    cart = cart_response.json()
    if not cart["items"]:
        raise HTTPException(400, "the cart is empty")
    order_id = str(uuid.uuid4())
    logs.order_id.set(order_id)
    placed = {"order_id": order_id, "total_cents": cart["total_cents"], "items": cart["items"]}
    try:
        async with db.connection("insert_order") as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO orders (id, cart_id, items, total_cents, status, idempotency_key)"
                " VALUES (%s, %s, %s, %s, 'placed', %s)",
                (order_id, body.cart_id, json.dumps(cart["items"]), cart["total_cents"], idempotency_key),
            )
            await outbox.store(conn, ORDER_PLACED, placed, message_id=order_id)
    except psycopg.errors.UniqueViolation:  # the same key's first attempt committed meanwhile: it stands
        assert idempotency_key is not None  # the only unique column a new order could collide on
        earlier = await _placed_with(db, idempotency_key)
        assert earlier is not None
        return await _again(resources, earlier, body, response)
    # Committed: the order will be announced whatever happens now to this process or to RabbitMQ.
    m = resources.metrics
    m.orders.labels(m.service, "placed").inc()
    log.info("order placed", extra={"event.action": "order-placed"})
    await outbox.publish_now(db, broker, ORDER_PLACED, placed, message_id=order_id)
    await resources.peers.request("cart", "DELETE", f"/carts/{body.cart_id}")
    return {"order_id": order_id, "status": "placed", "total_cents": cart["total_cents"]}


async def _placed_with(db: DbDep, key: str) -> dict[str, Any] | None:
    rows = await db.fetch(
        "find_order_by_key",
        "SELECT id, cart_id, status, total_cents FROM orders WHERE idempotency_key = %s",
        (key,),
    )
    return rows[0] if rows else None


async def _again(
    resources: ResourcesDep, earlier: dict[str, Any], body: Checkout, response: Response
) -> dict[str, Any]:
    """The answer to a retried checkout: the order its key placed (the cart emptied, in case the first
    attempt died before), or 409 when the key was used for another cart."""
    if earlier["cart_id"] != body.cart_id:
        raise HTTPException(409, f"this Idempotency-Key placed an order for cart {earlier['cart_id']}")
    await resources.peers.request("cart", "DELETE", f"/carts/{body.cart_id}")
    response.status_code = 200
    order_id, status, total = str(earlier["id"]), earlier["status"], earlier["total_cents"]
    return {"order_id": order_id, "status": status, "total_cents": total}


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
