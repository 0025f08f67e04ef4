"""Products and search: PostgreSQL behind a Redis cache-aside layer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query

from vigil.demo_marketplace.common.deps import CacheDep, DbDep

router = APIRouter()
PAGE_SIZE = 20
COLUMNS = "id, sku, name, category, price_cents, description"


@router.get("/products")
async def list_products(
    db: DbDep, cache: CacheDep, category: str | None = None, page: int = Query(1, ge=1, le=500)
) -> list[dict[str, Any]]:
    async def load() -> list[dict[str, Any]]:
        return await db.fetch(
            "list_products",
            f"SELECT {COLUMNS} FROM products WHERE (%(c)s::text IS NULL OR category = %(c)s)"
            " ORDER BY id LIMIT %(n)s OFFSET %(o)s",
            {"c": category, "n": PAGE_SIZE, "o": (page - 1) * PAGE_SIZE},
        )

    result: list[dict[str, Any]] = await cache.get_or_load(
        "product_list", f"products:{category}:{page}", load
    )
    return result


@router.get("/products/{product_id}")
async def get_product(product_id: int, db: DbDep, cache: CacheDep) -> dict[str, Any]:
    async def load() -> dict[str, Any] | None:
        rows = await db.fetch(
            "get_product",
            f"SELECT {COLUMNS}, s.available FROM products p JOIN stock s ON s.product_id = p.id"
            " WHERE p.id = %s",
            (product_id,),
        )
        return rows[0] if rows else None

    product: dict[str, Any] | None = await cache.get_or_load("product", f"product:{product_id}", load)
    if product is None:
        raise HTTPException(404, f"no product {product_id}")
    return product


@router.get("/search")
async def search(
    db: DbDep, cache: CacheDep, q: str = Query(min_length=2, max_length=100)
) -> list[dict[str, Any]]:
    async def load() -> list[dict[str, Any]]:
        return await db.fetch(
            "search",
            f"SELECT {COLUMNS} FROM products WHERE name ILIKE %s ORDER BY id LIMIT %s",
            (f"%{q}%", PAGE_SIZE),
        )

    result: list[dict[str, Any]] = await cache.get_or_load("search", f"search:{q.lower()}", load)
    return result
