"""vigil's Alertmanager receiver: ``POST /api/v1/alertmanager/webhook``.

Alertmanager posts one notification per alert group (webhook payload version 4). vigil keeps the most
recent ones in a bounded store and shows them at ``GET /api/v1/alertmanager/notifications``, so the
demo and the tests can see exactly what a receiver was told, grouped and inhibited as Alertmanager
decided. Only a caller holding the shared secret (``Authorization: Bearer <secret>``, the file the
generated config names in ``credentials_file``) may post.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from vigil.alerts.alertmanager_config import WEBHOOK_PATH

NOTIFICATIONS_PATH = "/api/v1/alertmanager/notifications"


class _Camel(BaseModel):
    # Alertmanager's JSON is camelCase; extra fields (a later payload version's) are tolerated.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class WebhookAlert(_Camel):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime
    ends_at: datetime | None = None  # 0001-01-01T00:00:00Z while firing without a known end
    generator_url: str = Field("", alias="generatorURL")
    fingerprint: str = ""


class WebhookPayload(_Camel):
    """One notification: an alert group as one receiver is told about it."""

    version: Literal["4"]
    group_key: str
    truncated_alerts: int = Field(0, ge=0)  # alerts left out by the receiver's max_alerts
    status: Literal["firing", "resolved"]
    receiver: str
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str = Field(alias="externalURL")
    alerts: list[WebhookAlert] = Field(min_length=1)


class Notification(BaseModel):
    received_at: float  # unix seconds
    payload: WebhookPayload


class NotificationStore:
    """The last ``maxlen`` notifications, oldest first; safe to use from FastAPI's worker threads."""

    def __init__(self, maxlen: int = 500, clock: Callable[[], float] = time.time) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, got {maxlen}")
        self._items: deque[Notification] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._clock = clock

    def add(self, payload: WebhookPayload) -> Notification:
        notification = Notification(received_at=self._clock(), payload=payload)
        with self._lock:
            self._items.append(notification)
        return notification

    def recent(self, limit: int | None = None) -> list[Notification]:
        with self._lock:
            items = list(self._items)
        return items if limit is None else items[-limit:] if limit > 0 else []

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def read_secret(path: Path) -> str:
    """The shared secret in ``path``, as Alertmanager sends it (it strips surrounding whitespace)."""
    secret = path.read_text().strip()
    if not secret:
        raise ValueError(f"{path} holds no secret")
    return secret


def webhook_router(secret: str, store: NotificationStore) -> APIRouter:
    """The receiver's two endpoints; include it in vigil's FastAPI app."""
    if not secret:
        raise ValueError("the webhook needs a non-empty shared secret")  # else anyone could post
    expected = f"Bearer {secret}".encode()

    def authorized(authorization: Annotated[str, Header()] = "") -> None:
        # compare_digest takes as long for a near miss as for a wild guess: no timing oracle.
        if not hmac.compare_digest(authorization.encode(), expected):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or wrong bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    router = APIRouter(tags=["alertmanager"])

    @router.post(
        WEBHOOK_PATH,
        status_code=status.HTTP_200_OK,
        dependencies=[Depends(authorized)],
        responses={
            status.HTTP_400_BAD_REQUEST: {"description": "the body cannot be read as JSON"},
            status.HTTP_401_UNAUTHORIZED: {"description": "missing or wrong bearer token"},
        },
    )
    def receive(payload: WebhookPayload) -> dict[str, int]:
        """Alertmanager's webhook (payload version 4)."""
        store.add(payload)
        return {"alerts": len(payload.alerts)}

    @router.get(NOTIFICATIONS_PATH, response_model=list[Notification])
    def notifications(limit: Annotated[int | None, Query(ge=1)] = None) -> list[Notification]:
        """The most recent notifications Alertmanager sent to vigil, oldest first."""
        return store.recent(limit)

    return router
