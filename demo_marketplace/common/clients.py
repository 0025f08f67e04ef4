"""Instrumented clients: PostgreSQL pool, Redis cache-aside, HTTP calls to other services."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import redis.asyncio as aioredis
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from vigil.demo_marketplace.common.logs import request_id
from vigil.demo_marketplace.common.telemetry import ServiceMetrics, status_class

log = logging.getLogger(__name__)


class Database:
    def __init__(self, dsn: str, size: int, metrics: ServiceMetrics) -> None:
        self.metrics = metrics
        self.pool = AsyncConnectionPool(
            dsn,
            min_size=min(2, size),
            max_size=size,
            open=False,
            timeout=5,
            kwargs={"row_factory": dict_row, "autocommit": True},
        )
        metrics.db_connections_max.labels(metrics.service).set(size)

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def connection(self, operation: str) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled connection; the time spent (waiting for the pool included) is recorded per operation."""
        started = time.perf_counter()
        try:
            async with self.pool.connection() as conn:
                yield conn
        finally:
            m = self.metrics
            m.db_duration.labels(m.service, operation).observe(time.perf_counter() - started)
            stats = self.pool.get_stats()
            used = stats.get("pool_size", 0) - stats.get("pool_available", 0)
            m.db_connections.labels(m.service, "used").set(used)
            m.db_connections.labels(m.service, "idle").set(stats.get("pool_available", 0))

    async def fetch(self, operation: str, query: str, params: Any = None) -> list[dict[str, Any]]:
        async with self.connection(operation) as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall()


class Cache:
    """Cache-aside over Redis that degrades to a miss (never an error) when Redis is unavailable."""

    def __init__(self, url: str, ttl: int, metrics: ServiceMetrics, *, enabled: bool = True) -> None:
        # Short timeouts: a slow cache must cost less than the database query it saves.
        self.redis = aioredis.Redis.from_url(url, socket_timeout=0.05, socket_connect_timeout=0.05)
        self.ttl, self.metrics, self.enabled = ttl, metrics, enabled

    async def get_or_load(self, cache: str, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        m = self.metrics
        if not self.enabled:
            return await load()
        try:
            raw = await self.redis.get(key)
        except Exception as error:  # any Redis trouble is a miss
            m.cache_requests.labels(m.service, cache, "error").inc()
            log.warning("cache read failed, using the database", extra={"error.message": str(error)})
            return await load()
        if raw is not None:
            m.cache_requests.labels(m.service, cache, "hit").inc()
            return json.loads(raw)
        m.cache_requests.labels(m.service, cache, "miss").inc()
        value = await load()
        with contextlib.suppress(Exception):  # the value is served anyway; the next read retries the fill
            await self.redis.set(key, json.dumps(value, default=str), ex=self.ttl)
        return value

    async def close(self) -> None:
        await self.redis.aclose()


class ServiceClient:
    """Calls another marketplace service with a deadline, propagating the request id."""

    def __init__(self, metrics: ServiceMetrics, urls: dict[str, str], timeout: float) -> None:
        self.metrics, self.urls = metrics, urls
        self.http = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=200))

    async def request(
        self, peer: str, method: str, path: str, *, timeout: float | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"x-request-id": request_id.get() or "", **kwargs.pop("headers", {})}
        started = time.perf_counter()
        status = "error"
        try:
            response = await self.http.request(
                method,
                f"{self.urls[peer]}{path}",
                headers=headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                **kwargs,
            )
            status = status_class(response.status_code)
            return response
        finally:
            m = self.metrics
            m.http_client_duration.labels(m.service, peer, status).observe(time.perf_counter() - started)

    async def close(self) -> None:
        await self.http.aclose()
