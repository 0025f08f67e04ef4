"""ECS JSON logs carrying the request id and order id of whatever is being handled."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from pathlib import Path

import ecs_logging

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
order_id: ContextVar[str | None] = ContextVar("order_id", default=None)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str, replica: str) -> None:
        super().__init__()
        self.service, self.replica = service, replica

    def filter(self, record: logging.LogRecord) -> bool:
        # Dotted attribute names become nested ECS fields in ecs-logging's formatter.
        setattr(record, "service.name", self.service)
        setattr(record, "service.node.name", f"{self.service}-{self.replica}")
        if (rid := request_id.get()) is not None:
            setattr(record, "http.request.id", rid)
        if (oid := order_id.get()) is not None:
            setattr(record, "labels.order_id", oid)
        return True


def configure(service: str, replica: str, log_dir: Path | None, level: int = logging.INFO) -> None:
    """Route the root logger to ``<log_dir>/<service>-<replica>.log`` (or stdout) as ECS JSON."""
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(log_dir / f"{service}-{replica}.log")
    else:
        handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(ecs_logging.StdlibFormatter(exclude_fields=["process", "log.origin"]))
    handler.addFilter(_ContextFilter(service, replica))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "httpx", "aiormq", "aio_pika", "psycopg.pool"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
