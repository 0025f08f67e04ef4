"""A simulated external payment provider: log-normal latency, and faults that slow it or make it fail."""

from __future__ import annotations

import asyncio
import random
import uuid

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from vigil.demo_marketplace.common.deps import ResourcesDep

router = APIRouter()
_rng = random.Random()


class Charge(BaseModel):
    order_id: str
    amount_cents: int = Field(gt=0)


@router.post("/v1/charges", status_code=201)
async def charge(body: Charge, resources: ResourcesDep) -> dict[str, str]:
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
    return {"charge_id": f"ch_{uuid.uuid4().hex[:16]}", "status": "succeeded"}
