"""``vigil run``'s alert path: the engine's scores -> rules -> incidents -> outbox -> Alertmanager.

The pipeline runs right after each engine round, on the engine's latest view; the outbox is flushed
on its own schedule too, so alerts raised while Alertmanager was away go out as soon as it answers,
and firing alerts are re-sent before Alertmanager would let them expire.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from vigil.alerts.alertmanager import AlertmanagerClient
from vigil.alerts.incidents import Incident, IncidentTracker
from vigil.alerts.mute import MaintenanceMuter, MaintenanceWindow
from vigil.alerts.outbox import Outbox
from vigil.alerts.pipeline import Context, Pipeline, build_pipeline
from vigil.alerts.rules import AlertRule, Links
from vigil.config import VigilConfig
from vigil.runtime.engine import Engine
from vigil.runtime.observe import observe, owner_in
from vigil.system import System, load_system


@dataclass
class AlertPath:
    pipeline: Pipeline
    outbox: Outbox
    incidents: IncidentTracker
    lock: threading.Lock  # the pipeline's state and the API's reads of the incidents

    def evaluate(self, engine: Engine, now: float) -> Context:
        observations = observe(engine.series(), now)
        with self.lock:
            return self.pipeline.run(now, observations)

    def flush(self, now: float) -> None:
        self.outbox.flush(now)

    def snapshot(self) -> tuple[list[Incident], list[Incident]]:
        """Open incidents and the latest resolved ones, consistent with each other."""
        with self.lock:
            return list(self.incidents.open), list(self.incidents.resolved)


def build_alert_path(
    config: VigilConfig, outbox_path: Path, *, registry: CollectorRegistry | None = None
) -> AlertPath:
    """Rules, incidents and delivery; the system file says who owns queues and who depends on whom."""
    system: System | None = load_system(config.system) if config.system is not None else None
    alerting = config.alerting
    base_url = alerting.base_url or f"http://{config.server.host}:{config.server.port}"
    rule = AlertRule(
        threshold=alerting.threshold,
        for_=alerting.for_,
        keep_firing_for=alerting.keep_firing_for,
        resolve_below=alerting.resolve_below,
        severities={s.name: s.severity for s in config.signals},
        context_signals=frozenset(alerting.context_signals),
        descriptions={s.name: s.description for s in config.signals if s.description},
        links=Links(base_url, alerting.dashboard_url, alerting.runbook_url),
        owner=owner_in(system),
    )
    outbox_path.parent.mkdir(parents=True, exist_ok=True)
    outbox = Outbox(
        outbox_path,
        AlertmanagerClient(alerting.alertmanager_urls),
        resend_interval=alerting.resend_interval,
        registry=registry,
    )
    windows = [MaintenanceWindow(m.start, m.end, m.matchers, m.reason) for m in alerting.maintenance]
    incidents = IncidentTracker(
        grouping_window=alerting.grouping_window,
        dependencies=system.dependencies() if system is not None else {},
    )
    pipeline = build_pipeline(
        [rule],
        outbox,
        muters=[MaintenanceMuter(windows)] if windows else [],
        incidents=incidents,
        repeat_interval=alerting.repeat_interval,
        group_wait=alerting.group_wait,
        group_interval=alerting.group_interval,
        registry=registry,
    )
    return AlertPath(pipeline, outbox, incidents, threading.Lock())
