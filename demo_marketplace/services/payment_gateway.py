"""A simulated external payment provider: log-normal latency, and faults that slow it or make it fail.

Like real providers (Stripe, Adyen) it honours an ``idempotency-key`` header: a key seen again gets the
charge it made the first time, so a client that retries after a crash is never charged twice. The keys
live in this process (one replica, the default, is one provider); ``GET /v1/charges?order_id=`` lists
what was charged for an order, which is how the chaos bench counts double charges.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import OrderedDict
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException
from pydantic import BaseModel, Field

from vigil.demo_marketplace.common.deps import ResourcesDep

router = APIRouter()
_rng = random.Random()
KEYS_KEPT = 500_000  # idempotency keys remembered (oldest forgotten first), as providers keep them ~24 h


class Charge(BaseModel):
    order_id: str
    amount_cents: int = Field(gt=0)


class _Ledger:
    """Charges made, by idempotency key and by order (bounded: the oldest are forgotten)."""

    def __init__(self) -> None:
        self.by_key: OrderedDict[str, dict[str, str]] = OrderedDict()
        self.by_order: OrderedDict[str, list[dict[str, str]]] = OrderedDict()

    def charge(self, body: Charge, key: str | None) -> dict[str, str]:
        if key is not None and (made := self.by_key.get(key)) is not None:
            return made
        made = {"charge_id": f"ch_{uuid.uuid4().hex[:16]}", "status": "succeeded", "order_id": body.order_id}
        self.by_order.setdefault(body.order_id, []).append(made)
        if key is not None:
            self.by_key[key] = made
        for kept in (self.by_key, self.by_order):
            while len(kept) > KEYS_KEPT:
                kept.popitem(last=False)
        return made


_ledger = _Ledger()


@router.post("/v1/charges", status_code=201)
async def charge(
    body: Charge,
    resources: ResourcesDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> dict[str, str]:
    faults, m = resources.faults, resources.metrics
    median = resources.settings.payment_gateway_latency_ms / 1000
    delay = median * _rng.lognormvariate(0, 0.35)
    slow = faults.active("payment-gateway-slow")
    m.fault_active.labels(m.service, "payment-gateway-slow").set(1 if slow else 0)
    if slow:  # the provider degrades progressively, as real ones do
        delay += float(slow.get("delay_ms", 1500)) / 1000 * min(1.0, slow["progress"] * 2)
    await asyncio.sleep(delay)
    failing = faults.active("payment-errors")
    m.fault_active.labels(m.service, "payment-errors").set(1 if failing else 0)
    if failing and _rng.random() < float(failing.get("error_rate", 0.3)):
        raise HTTPException(503, "provider temporarily unavailable")
    return _ledger.charge(body, idempotency_key)


@router.get("/v1/charges")
async def list_charges(order_id: str) -> dict[str, list[dict[str, str]]]:
    """Every charge made for ``order_id`` (more than one would be a double charge)."""
    return {"data": list(_ledger.by_order.get(order_id, []))}
