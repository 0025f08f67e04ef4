"""Shopping carts, kept in Redis for a day."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from vigil.demo_marketplace.common.deps import CacheDep, ResourcesDep

router = APIRouter()
CART_TTL_SECONDS = 86_400


class AddItem(BaseModel):
    product_id: int = Field(ge=1)
    quantity: int = Field(1, ge=1, le=20)


async def read_cart(cache: CacheDep, cart_id: str) -> dict[str, Any]:
    try:
        raw = await cache.redis.hgetall(f"cart:{cart_id}")
    except Exception as error:
        raise HTTPException(503, f"cart store unavailable: {type(error).__name__}") from error
    items = [json.loads(v) for v in raw.values()]
    return {
        "cart_id": cart_id,
        "items": items,
        "total_cents": sum(i["price_cents"] * i["quantity"] for i in items),
    }


@router.get("/carts/{cart_id}")
async def get_cart(cart_id: str, cache: CacheDep) -> dict[str, Any]:
    return await read_cart(cache, cart_id)


@router.post("/carts/{cart_id}/items", status_code=201)
async def add_item(cart_id: str, item: AddItem, cache: CacheDep, resources: ResourcesDep) -> dict[str, Any]:
    response = await resources.peers.request("catalog", "GET", f"/products/{item.product_id}")
    if response.status_code == 404:
        raise HTTPException(404, f"no product {item.product_id}")
    if response.status_code != 200:
        raise HTTPException(502, f"catalog answered {response.status_code}")
    product = response.json()
    entry = {"product_id": item.product_id, "quantity": item.quantity, "price_cents": product["price_cents"]}
    key = f"cart:{cart_id}"
    try:
        async with cache.redis.pipeline(transaction=True) as pipe:
            await (
                pipe.hset(key, str(item.product_id), json.dumps(entry))
                .expire(key, CART_TTL_SECONDS)
                .execute()
            )
    except Exception as error:
        raise HTTPException(503, f"cart store unavailable: {type(error).__name__}") from error
    return await read_cart(cache, cart_id)


@router.delete("/carts/{cart_id}", status_code=204)
async def clear_cart(cart_id: str, cache: CacheDep) -> None:
    try:
        await cache.redis.delete(f"cart:{cart_id}")
    except Exception as error:
        raise HTTPException(503, f"cart store unavailable: {type(error).__name__}") from error
