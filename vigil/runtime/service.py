"""``vigil run``: schedule collection and detection, serve the API, register with Prometheus."""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler
from fastapi import APIRouter
from prometheus_client import CollectorRegistry

from vigil.alerts.webhook import NotificationStore, read_secret, webhook_router
from vigil.collectors.prometheus_api import align_up
from vigil.config import VigilConfig
from vigil.runtime.alerting import AlertPath, build_alert_path
from vigil.runtime.build import build_collectors, build_composites, detector_factory, detector_specs
from vigil.runtime.checkpoint import Checkpoint, spec_digest
from vigil.runtime.engine import Engine
from vigil.runtime.incident_metrics import IncidentCollector
from vigil.runtime.incidents_api import incidents_router
from vigil.runtime.server import create_app
from vigil.runtime.targets import write_targets
from vigil.runtime.warm_start import warm_start

log = logging.getLogger(__name__)
# Trouble starts before vigil's alert fires (the detectors' reaction, then `for`): history from this
# long before an incident opened is not learned either.
INCIDENT_LEAD = 600.0
# A round reads each signal up to align_down(now). Rounds on the step grid, a moment after it, read a
# point as fresh as a Prometheus rule evaluated then sees; at a random phase it is up to a step older,
# and an abrupt fault would page a step after a static rule. The moment lets the scrape land.
ROUND_DELAY = 1.0


def first_round(now: float, interval: float) -> datetime:
    """When rounds start: the next multiple of ``interval`` (steps usually are one), plus the delay."""
    return datetime.fromtimestamp(align_up(now, interval) + ROUND_DELAY, tz=UTC)


def build_engine(config: VigilConfig, templates_state: Path | None = None) -> Engine:
    return Engine(
        build_collectors(config, templates_state),
        detector_factory(config),
        composites=build_composites(config),
        shard=(config.shard.index, config.shard.count),
        window_points=config.window_points,
        max_series=config.max_series,
    )


def templates_state(config: VigilConfig) -> Path:
    """This replica's log templates: their ids label its template series, kept like its checkpoint."""
    return config.state_dir / f"log-templates-{config.shard.index}-of-{config.shard.count}.json"


def checkpoint_for(config: VigilConfig) -> Checkpoint:
    """This replica's checkpoint: one file per shard, so replicas never overwrite each other's."""
    index, count = config.shard.index, config.shard.count
    specs = {name: spec_digest(spec) for name, spec in detector_specs(config).items()}
    return Checkpoint(config.state_dir / f"checkpoint-{index}-of-{count}.pickle", specs)


def save_checkpoint(checkpoint: Checkpoint, engine: Engine) -> None:
    try:
        written = checkpoint.save(engine, time.time())
    except Exception:  # a full disk must not stop detection; the next attempt may succeed
        log.exception("checkpoint %s could not be written", checkpoint.path)
        return
    log.info(
        "checkpoint %s: %d series, %d bytes, %.2f s",
        written.path,
        written.series,
        written.bytes,
        written.seconds,
    )


def incident_windows(alerts: AlertPath | None, now: float) -> list[tuple[float, float]]:
    """When the incidents vigil remembers were on, from a little before they opened: not to be learned."""
    if alerts is None:
        return []
    open_, resolved = alerts.snapshot()
    return [(i.opened_at - INCIDENT_LEAD, i.resolved_at or now) for i in [*open_, *resolved]]


def start_scheduler(
    engine: Engine,
    interval: float,
    alerts: AlertPath | None = None,
    checkpoint: tuple[Checkpoint, float] | None = None,
    training_window: float = 0.0,
) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    if checkpoint is not None:
        file, every = checkpoint
        scheduler.add_job(
            lambda: save_checkpoint(file, engine),
            "interval",
            seconds=every,
            max_instances=1,
            coalesce=True,
            id="checkpoint",
        )

    warm = threading.Event()

    def round_() -> None:
        if not warm.is_set():  # in the first round, not before the API serves: it can take a while
            warm.set()
            if training_window > 0:
                now = time.time()
                warm_start(engine, training_window, incident_windows(alerts, now), now)
        engine.tick()
        if alerts is not None:
            alerts.evaluate(engine, time.time())

    # One round at a time; a round that overran is not made up for (coalesce) but the next starts on time.
    scheduler.add_job(
        round_,
        "interval",
        seconds=interval,
        start_date=first_round(time.time(), interval),
        max_instances=1,
        coalesce=True,
        id="tick",
    )
    if alerts is not None:
        # Separately from the rounds: re-sends and retries must not wait for a slow collection.
        resend = alerts.outbox.resend_interval
        scheduler.add_job(
            lambda: alerts.flush(time.time()),
            "interval",
            seconds=max(1.0, min(15.0, resend / 2)),
            max_instances=1,
            coalesce=True,
            id="outbox",
        )
    scheduler.start()
    return scheduler


def alert_routers(config: VigilConfig, engine: Engine, alerts: AlertPath | None) -> list[APIRouter]:
    routers = [incidents_router(alerts, engine)] if alerts is not None else []
    secret_file = config.alerting.webhook_secret_file
    if secret_file is not None:  # Alertmanager notifies vigil's webhook with this shared secret
        if not secret_file.is_file():
            raise ValueError(f"alerting.webhook_secret_file {secret_file}: no such file")
        routers.append(webhook_router(read_secret(secret_file), NotificationStore()))
    return routers


def register_with_prometheus(targets_file: Path, host: str, port: int) -> None:
    write_targets(
        targets_file.parent,
        targets_file.stem,
        [{"targets": [f"{host}:{port}"], "labels": {"job": "vigil", "instance_name": socket.gethostname()}}],
    )


def run(config: VigilConfig) -> None:
    # What the detectors learned about each template series is kept only if the ids are kept too.
    engine = build_engine(config, templates_state(config) if config.checkpoint_interval > 0 else None)
    if not engine.collectors:
        raise ValueError("nothing to watch: configure at least one source with signals")
    checkpoint = checkpoint_for(config) if config.checkpoint_interval > 0 else None
    if checkpoint is not None:
        checkpoint.restore(engine, time.time())
    registry = CollectorRegistry()
    alerts = None
    if config.alerting.enabled:
        outbox = config.alerting.outbox or config.state_dir / "outbox.sqlite"
        alerts = build_alert_path(config, outbox, registry=registry)
        alerts.reconcile(time.time())
        registry.register(IncidentCollector(alerts))
    scheduler = start_scheduler(
        engine,
        config.interval,
        alerts,
        (checkpoint, config.checkpoint_interval) if checkpoint is not None else None,
        config.training_window,
    )

    stopped = threading.Event()

    def stop() -> None:  # a deploy or a drain (SIGTERM) keeps everything learned
        if stopped.is_set():
            return
        stopped.set()
        scheduler.shutdown(wait=False)
        if checkpoint is not None:
            save_checkpoint(checkpoint, engine)
        if config.register_targets is not None:
            config.register_targets.unlink(missing_ok=True)

    routers = alert_routers(config, engine, alerts)
    app = create_app(engine, registry, routers, on_shutdown=stop, exported=config.exported)
    if config.register_targets is not None:
        register_with_prometheus(config.register_targets, config.server.host, config.server.port)
    try:
        uvicorn.run(app, host=config.server.host, port=config.server.port, log_level="warning")
    finally:  # exits that skip the app's shutdown (a port in use, Ctrl-C during startup)
        stop()
