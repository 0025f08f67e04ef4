"""The storefront API: what users (and the load generator) call.

Failure isolation: recommendations are fetched concurrently with a short deadline and
replaced by an empty list when late or failing, so they can never slow or fail a page.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
from fastapi import APIRouter, HTTPException, Request, Response

from vigil.demo_marketplace.common.deps import ResourcesDep

router = APIRouter(prefix="/api")
log = logging.getLogger(__name__)


async def _forward(resources: ResourcesDep, peer: str, method: str, path: str, **kwargs: Any) -> Response:
    try:
        upstream = await resources.peers.request(peer, method, path, **kwargs)
    except httpx.TimeoutException as error:
        raise HTTPException(504, f"{peer} timed out") from error
    except httpx.TransportError as error:
        raise HTTPException(502, f"{peer} unreachable: {type(error).__name__}") from error
    # Downstream 5xx stay 5xx (a failure users feel); 4xx pass through unchanged.
    status = 502 if upstream.status_code >= 500 else upstream.status_code
    return Response(upstream.content, status_code=status, media_type="application/json")


async def _recommendations(resources: ResourcesDep, product_id: int) -> list[dict[str, Any]]:
    try:
        response = await resources.peers.request(
            "recommendations",
            "GET",
            f"/recommendations/{product_id}",
            timeout=resources.settings.recommendations_timeout_seconds,
        )
        if response.status_code == 200:
            recommended: list[dict[str, Any]] = response.json()
            return recommended
    except httpx.HTTPError:
        pass
    log.warning("recommendations unavailable, serving the page without them")
    return []


@router.get("/products")
async def list_products(request: Request, resources: ResourcesDep) -> Response:
    return await _forward(resources, "catalog", "GET", "/products", params=dict(request.query_params))


@router.get("/products/{product_id}")
async def product_page(product_id: int, resources: ResourcesDep) -> dict[str, Any]:
    product, recommended = await asyncio.gather(
        _forward(resources, "catalog", "GET", f"/products/{product_id}"),
        _recommendations(resources, product_id),
    )
    if product.status_code != 200:
        raise HTTPException(product.status_code, product.body.decode(errors="replace"))
    return {"product": json.loads(product.body), "recommendations": recommended}


@router.get("/search")
async def search(request: Request, resources: ResourcesDep) -> Response:
    return await _forward(resources, "catalog", "GET", "/search", params=dict(request.query_params))


@router.get("/cart/{cart_id}")
async def get_cart(cart_id: str, resources: ResourcesDep) -> Response:
    return await _forward(resources, "cart", "GET", f"/carts/{cart_id}")


@router.post("/cart/{cart_id}/items")
async def add_to_cart(cart_id: str, request: Request, resources: ResourcesDep) -> Response:
    return await _forward(
        resources,
        "cart",
        "POST",
        f"/carts/{cart_id}/items",
        content=await request.body(),
        headers={"content-type": "application/json"},
    )


@router.post("/checkout")
async def checkout(request: Request, resources: ResourcesDep) -> Response:
    body = await request.body()
    headers = {"content-type": "application/json"}
    if key := request.headers.get("idempotency-key"):  # the client's retries must reach orders as one
        headers["idempotency-key"] = key
    return await _forward(resources, "orders", "POST", "/orders", content=body, headers=headers)


@router.get("/orders/{order_id}")
async def get_order(order_id: str, resources: ResourcesDep) -> Response:
    return await _forward(resources, "orders", "GET", f"/orders/{order_id}")
