"""Charges placed orders through the payment gateway and announces them as paid.

Idempotent: the ``payments`` primary key records a charge once; a redelivered order is not
charged again, but ``order.paid`` is re-published in case the first publish was lost.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from fastapi import APIRouter
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from vigil.demo_marketplace.common.app import Resources
from vigil.demo_marketplace.common.broker import Duplicate

router = APIRouter()
log = logging.getLogger(__name__)
QUEUE = "payments.order-placed"


class GatewayUnavailable(Exception):
    pass


async def _charge(resources: Resources, order: dict[str, Any]) -> str:
    response = await resources.peers.request(
        "payment-gateway",
        "POST",
        "/v1/charges",
        timeout=5.0,
        json={"order_id": order["order_id"], "amount_cents": order["total_cents"]},
        headers={"idempotency-key": order["order_id"]},
    )
    if response.status_code >= 500:
        raise GatewayUnavailable(f"payment gateway answered {response.status_code}")
    response.raise_for_status()
    charge_id: str = response.json()["charge_id"]
    return charge_id


async def handle_order_placed(resources: Resources, order: dict[str, Any]) -> None:
    assert resources.db is not None
    assert resources.broker is not None
    db, m = resources.db, resources.metrics
    paid = {"order_id": order["order_id"], "items": order["items"]}
    if await db.fetch("find_payment", "SELECT 1 FROM payments WHERE order_id = %s", (order["order_id"],)):
        await resources.broker.publish("order.paid", paid, message_id=order["order_id"])
        raise Duplicate(order["order_id"])
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(5),
            wait=wait_exponential_jitter(initial=0.2, max=3),
            retry=retry_if_exception_type((GatewayUnavailable, httpx.TransportError)),
            reraise=True,
        ):
            with attempt:
                charge_id = await _charge(resources, order)
    except Exception:
        m.orders.labels(m.service, "payment_failed").inc()
        async with db.connection("fail_payment") as conn:
            await conn.execute(
                "UPDATE orders SET status = 'payment_failed' WHERE id = %s", (order["order_id"],)
            )
        raise  # dead-lettered: an operator can re-drive it once the provider is back
    async with db.connection("record_payment") as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO payments (order_id, amount_cents, provider_ref) VALUES (%s, %s, %s)",
            (order["order_id"], order["total_cents"], charge_id),
        )
        await conn.execute(
            # payment_failed too: a dead-lettered order replayed once the provider is back gets paid.
            "UPDATE orders SET status = 'paid', paid_at = now()"
            " WHERE id = %s AND status IN ('placed', 'payment_failed')",
            (order["order_id"],),
        )
    m.orders.labels(m.service, "paid").inc()
    log.info("order paid", extra={"event.action": "order-paid"})
    await resources.broker.publish("order.paid", paid, message_id=order["order_id"])


async def start(resources: Resources) -> None:
    assert resources.broker is not None

    async def handler(order: dict[str, Any]) -> None:
        await handle_order_placed(resources, order)

    await resources.broker.consume(QUEUE, handler, prefetch=20)
