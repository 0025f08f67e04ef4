"""Products bought together, ranked from the co-purchase graph."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from vigil.demo_marketplace.common.deps import DbDep

router = APIRouter()


@router.get("/recommendations/{product_id}")
async def recommend(product_id: int, db: DbDep, limit: int = 5) -> list[dict[str, Any]]:
    return await db.fetch(
        "recommend",
        "SELECT p.id, p.name, p.price_cents, c.weight"
        " FROM co_purchases c JOIN products p ON p.id = c.other_id"
        " WHERE c.product_id = %s ORDER BY c.weight DESC, p.id LIMIT %s",
        (product_id, limit),
    )
