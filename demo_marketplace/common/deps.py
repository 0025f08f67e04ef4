"""FastAPI dependencies shared by the service routers.

``async def`` although they never wait: FastAPI runs a plain ``def`` dependency in its thread pool,
a thread hand-off per dependency per request (three for a catalog read: a third of its time).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from vigil.demo_marketplace.common.app import Resources
from vigil.demo_marketplace.common.broker import Broker
from vigil.demo_marketplace.common.clients import Cache, Database


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


async def get_db(resources: Annotated[Resources, Depends(get_resources)]) -> Database:
    if resources.db is None:
        raise HTTPException(500, "this service has no database")
    return resources.db


async def get_cache(resources: Annotated[Resources, Depends(get_resources)]) -> Cache:
    if resources.cache is None:
        raise HTTPException(500, "this service has no cache")
    return resources.cache


async def get_broker(resources: Annotated[Resources, Depends(get_resources)]) -> Broker:
    if resources.broker is None:
        raise HTTPException(500, "this service has no broker")
    return resources.broker


ResourcesDep = Annotated[Resources, Depends(get_resources)]
DbDep = Annotated[Database, Depends(get_db)]
CacheDep = Annotated[Cache, Depends(get_cache)]
BrokerDep = Annotated[Broker, Depends(get_broker)]
