"""``vigil run``'s alert path: the engine's scores -> rules -> incidents -> outbox -> Alertmanager.

The pipeline runs right after each engine round, on the engine's latest view; what the rules and the
incidents learned is saved, then the outbox delivers. The outbox is flushed on its own schedule too,
so alerts raised while Alertmanager was away go out as soon as it answers, and firing alerts are
re-sent before Alertmanager would let them expire.

At start the path takes back its memory (``reconcile``): pending ``for`` timers, firing alerts with
their start times and open incidents carry on, so a restart re-pages nothing; an alert the outbox
still holds as firing that no rule tracks any more (a rule removed, a memory lost) is resolved.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from vigil.alerts.alertmanager import AlertmanagerClient
from vigil.alerts.incidents import Holding, Incident, IncidentTracker
from vigil.alerts.memory import AlertMemory
from vigil.alerts.outbox import Outbox
from vigil.alerts.pipeline import Context, Pipeline, build_pipeline
from vigil.alerts.rules import AlertRule, Links, Observation, RuleEvaluator
from vigil.alerts.sources import SourceState, SourceWatch
from vigil.config import VigilConfig
from vigil.runtime.engine import Engine
from vigil.runtime.observe import observe, owner_in
from vigil.system import System, load_system

log = logging.getLogger(__name__)
INCIDENTS, RESOLVED = "incidents", "incidents_resolved"  # apart: the resolved history changes seldom
SOURCES = "sources"  # VigilSourceDown alerts


@dataclass
class AlertPath:
    pipeline: Pipeline
    outbox: Outbox
    incidents: IncidentTracker
    lock: threading.Lock  # the pipeline's state and the API's reads of the incidents
    evaluators: tuple[RuleEvaluator, ...] = ()
    memory: AlertMemory | None = None
    sources: SourceWatch | None = None

    def evaluate(self, engine: Engine, now: float) -> Context:
        return self.run(now, observe(engine.series(), now), engine.sources)

    def run(
        self,
        now: float,
        observations: Sequence[Observation],
        sources: Mapping[str, SourceState] | None = None,
    ) -> Context:
        """One round of rules, incidents, memory and delivery, on the given observations (and the health
        of the sources they were read from)."""
        with self.lock:
            ctx = self.pipeline.run(now, observations, sources)
            if self.memory is not None:  # before delivery: what Alertmanager hears, the memory holds
                self.memory.save(self._memory_parts(), now)
        self.outbox.flush(now)
        return ctx

    def flush(self, now: float) -> None:
        self.outbox.flush(now)

    def snapshot(self) -> tuple[list[Incident], list[Incident]]:
        """Open incidents and the latest resolved ones, consistent with each other."""
        with self.lock:
            return list(self.incidents.open), list(self.incidents.resolved)

    def reconcile(self, now: float) -> None:
        """Take back what an earlier process remembered; resolve what the outbox holds and nobody tracks."""
        if self.memory is None:
            return
        parts = self.memory.load()
        with self.lock:
            for evaluator in self.evaluators:
                state = parts.get(_rule_part(evaluator))
                if state is not None:
                    evaluator.restore(state)
            if INCIDENTS in parts:
                self.incidents.restore(parts[INCIDENTS], parts.get(RESOLVED, []))
            if self.sources is not None and SOURCES in parts:
                self.sources.restore(parts[SOURCES])
            firing = {a.fingerprint for e in self.evaluators for a in e.firing()}
            firing |= {a.fingerprint for a in self.sources.firing()} if self.sources is not None else set()
            orphans = [
                alert
                for alert in self.outbox.stored().values()
                if alert.ends_at is None and alert.rule_fingerprint not in firing
            ]
            for alert in orphans:
                self.outbox.put(alert.resolve(now))
        log.info(
            "alert memory: %d firing alerts, %d open incidents taken back; %d alerts nobody tracks resolved",
            len(firing),
            len(self.incidents.open),
            len(orphans),
        )

    def _memory_parts(self) -> dict[str, object]:
        parts: dict[str, object] = {_rule_part(e): e.state() for e in self.evaluators}
        parts[INCIDENTS], parts[RESOLVED] = self.incidents.state()
        if self.sources is not None:
            parts[SOURCES] = self.sources.state()
        return parts


def _rule_part(evaluator: RuleEvaluator) -> str:
    return f"rule:{evaluator.rule.alertname}"


def build_alert_path(
    config: VigilConfig, outbox_path: Path, *, registry: CollectorRegistry | None = None
) -> AlertPath:
    """Rules, incidents and delivery; the system file says who owns queues and who depends on whom."""
    system: System | None = load_system(config.system) if config.system is not None else None
    alerting = config.alerting
    outbox_path.parent.mkdir(parents=True, exist_ok=True)
    outbox = Outbox(
        outbox_path,
        AlertmanagerClient(alerting.alertmanager_urls),
        resend_interval=alerting.resend_interval,
        registry=registry,
    )
    incidents = incident_tracker(config, system)
    evaluators = (RuleEvaluator(alert_rule(config, system)),)
    down_for = alerting.source_down_for
    sources = SourceWatch(down_for) if down_for is not None else None
    pipeline = build_pipeline(evaluators, outbox, incidents, sources)
    memory = AlertMemory(outbox_path)
    return AlertPath(pipeline, outbox, incidents, threading.Lock(), evaluators, memory, sources)


def alert_rule(config: VigilConfig, system: System | None) -> AlertRule:
    """The config's alert rule: thresholds, ``for``, hysteresis, severities, links, owners."""
    alerting = config.alerting
    base_url = alerting.base_url or f"http://{config.server.host}:{config.server.port}"
    return AlertRule(
        threshold=alerting.threshold,
        for_=alerting.for_,
        keep_firing_for=alerting.keep_firing_for,
        resolve_below=alerting.resolve_below,
        severities={s.name: s.severity for s in config.signals},
        limits={s.name: s.limit for s in config.signals if s.limit is not None},
        context_signals=frozenset(alerting.context_signals),
        descriptions={s.name: s.description for s in config.signals if s.description},
        links=Links(base_url, alerting.dashboard_url, alerting.runbook_url),
        owner=owner_in(system),
    )


def incident_tracker(config: VigilConfig, system: System | None) -> IncidentTracker:
    return IncidentTracker(
        grouping_window=config.alerting.grouping_window,
        detection_spread=config.alerting.detection_spread,
        dependencies=system.dependencies() if system is not None else {},
        holdings=holdings(system) if system is not None else (),
    )


def holdings(system: System) -> list[Holding]:
    """The system's shared resources with an owner, as the incident tracker weighs them."""
    return [
        Holding(r.component, r.owner, frozenset(r.used_by)) for r in system.resources if r.owner is not None
    ]
