"""``vigil run``: schedule collection and detection, serve the API, register with Prometheus."""

from __future__ import annotations

import logging
import socket
from datetime import datetime
from pathlib import Path

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler

from vigil.config import VigilConfig
from vigil.runtime.build import build_collectors, build_composites, detector_factory
from vigil.runtime.engine import Engine
from vigil.runtime.server import create_app
from vigil.stack.prometheus_config import write_targets

log = logging.getLogger(__name__)


def build_engine(config: VigilConfig) -> Engine:
    return Engine(
        build_collectors(config),
        detector_factory(config),
        composites=build_composites(config),
        shard=(config.shard.index, config.shard.count),
        window_points=config.window_points,
        max_series=config.max_series,
    )


def start_scheduler(engine: Engine, interval: float) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    # One round at a time; a round that overran is not made up for (coalesce) but the next starts on time.
    scheduler.add_job(
        engine.tick,
        "interval",
        seconds=interval,
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now().astimezone(),
        id="tick",
    )
    scheduler.start()
    return scheduler


def register_with_prometheus(targets_file: Path, host: str, port: int) -> None:
    write_targets(
        targets_file.parent,
        targets_file.stem,
        [{"targets": [f"{host}:{port}"], "labels": {"job": "vigil", "instance_name": socket.gethostname()}}],
    )


def run(config: VigilConfig) -> None:
    engine = build_engine(config)
    if not engine.collectors:
        raise ValueError("nothing to watch: configure at least one source with signals")
    scheduler = start_scheduler(engine, config.interval)
    if config.register_targets is not None:
        register_with_prometheus(config.register_targets, config.server.host, config.server.port)
    try:
        uvicorn.run(create_app(engine), host=config.server.host, port=config.server.port, log_level="warning")
    finally:
        scheduler.shutdown(wait=False)
        if config.register_targets is not None:
            config.register_targets.unlink(missing_ok=True)
