"""Fault injection with recorded ground truth.

Each fault is acted out for real: flags that services obey (slow or failing payment provider,
stalled consumer, memory leak), or actions on real infrastructure (PostgreSQL lock contention,
Redis paused, processes killed). Most faults have a fixed culprit service; ``any_service`` ones
(a bad release) are aimed at any service of the catalog per injection. Every injection appends
``{fault, service, start, end, params}`` to the ground-truth JSONL file when it ends, which is
what detection lead time is measured against.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
import redis

from vigil.demo_marketplace import catalog
from vigil.demo_marketplace.runner import Marketplace


@dataclass(frozen=True)
class Fault:
    name: str
    service: str  # where the cause is: what a good alert names as the culprit
    description: str
    params: dict[str, float] = field(default_factory=dict)
    kind: str = "flag"  # "flag": services act it out; "locks", "redis-pause", "crash": done by the injector
    any_service: bool = False  # ``service`` is only the default target: an injection may name another


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault(
            "payment-gateway-slow",
            "payment-gateway",
            "the payment provider slows down progressively",
            {"delay_ms": 1500},
        ),
        Fault(
            "payment-errors",
            "payment-gateway",
            "the payment provider fails a share of charges with 503",
            {"error_rate": 0.3},
        ),
        Fault(
            "catalog-slow-sql",
            "catalog",
            "lock contention on the products table, growing over time",
            {"max_hold_ms": 800, "gap_ms": 200},
            kind="locks",
        ),
        Fault(
            "warehouse-stall",
            "warehouse",
            "the warehouse consumer slows to seconds per message (backlog grows); with ``ramp`` > 0 it "
            "gets there gradually, over that share of the fault's duration",
            {"seconds_per_message": 2.0, "ramp": 0.0},
        ),
        Fault(
            "warehouse-crash", "warehouse", "every warehouse consumer crashes and stays down", kind="crash"
        ),
        Fault(
            "cache-outage",
            "redis",
            "Redis stops answering (CLIENT PAUSE): cache misses, carts fail",
            kind="redis-pause",
        ),
        Fault(
            "recommendations-crash", "recommendations", "every recommendations replica crashes", kind="crash"
        ),
        Fault("memory-leak", "catalog", "catalog leaks memory on every request", {"kb_per_request": 256}),
        Fault(
            "bad-release",
            "catalog",
            "a bad build of SERVICE fails a share of its work: HTTP requests answer 500, "
            "consumed messages are dead-lettered; with ``ramp`` > 0 it rolls out over that share of the "
            "fault's duration",
            {"error_rate": 0.3, "ramp": 0.0},
            any_service=True,
        ),
    )
}


def fault(name: str) -> Fault:
    try:
        return FAULTS[name]
    except KeyError:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}") from None


def targeted(spec: Fault, target: str | None) -> Fault:
    """``spec`` aimed at service ``target`` (None: its own service); only ``any_service`` faults move."""
    if target is None:
        return spec
    if not spec.any_service:
        raise ValueError(f"fault {spec.name} always targets {spec.service}; it takes no service")
    return replace(spec, service=catalog.service(target).name)


class Injector:
    """Injects one fault at a time into a running marketplace; ``clock`` and ``sleep`` are injectable."""

    def __init__(
        self,
        market: Marketplace,
        *,
        clock: Callable[[], float] = time.time,
        stop: threading.Event | None = None,
    ) -> None:
        self.market, self.clock = market, clock
        self.stop = stop or threading.Event()

    def inject(
        self,
        name: str,
        duration: float,
        params: dict[str, float] | None = None,
        *,
        service: str | None = None,
    ) -> dict[str, Any]:
        """Act out fault ``name`` for ``duration`` seconds (or until ``stop`` is set); returns the record.

        ``service`` aims an ``any_service`` fault at that service instead of its default one.
        """
        spec = targeted(fault(name), service)
        merged = {**spec.params, **(params or {})}
        unknown = set(merged) - set(spec.params)
        if unknown:
            raise ValueError(
                f"fault {name} takes {', '.join(spec.params) or 'no parameters'}; "
                f"got {', '.join(sorted(unknown))}"
            )
        start = self.clock()
        until = start + duration
        act = {
            "flag": self._flag,
            "locks": self._locks,
            "redis-pause": self._redis_pause,
            "crash": self._crash,
        }[spec.kind]
        try:
            act(spec, merged, start, until)
        finally:
            end = self.clock()
            record = {"fault": name, "service": spec.service, "start": start, "end": end, "params": merged}
            with self.market.ground_truth_file.open("a") as out:
                out.write(json.dumps(record) + "\n")
        return record

    def wait_until(self, until: float) -> None:
        while not self.stop.is_set() and self.clock() < until:
            self.stop.wait(min(0.5, max(until - self.clock(), 0)))

    # -- the four ways a fault is acted out -----------------------------------------------
    def _flag(self, spec: Fault, params: dict[str, float], start: float, until: float) -> None:
        entry = {"name": spec.name, "service": spec.service, "start": start, "until": until, "params": params}
        self._edit_flags(lambda faults: [*faults, entry])
        try:
            self.wait_until(until)
        finally:
            self._edit_flags(lambda faults: [f for f in faults if f != entry])

    def _edit_flags(self, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
        path = self.market.faults_file
        current = json.loads(path.read_text()).get("faults", []) if path.exists() else []
        now = self.clock()
        kept = [f for f in change(current) if f["until"] > now]  # expired entries are dropped
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"faults": kept}))
        tmp.replace(path)  # services never read a half-written file

    def _locks(self, spec: Fault, params: dict[str, float], start: float, until: float) -> None:
        """Take ACCESS EXCLUSIVE locks on the catalog's tables, held longer and longer."""
        with psycopg.connect(self.market.dsn, autocommit=True) as conn:
            while not self.stop.is_set() and self.clock() < until:
                progress = (self.clock() - start) / max(until - start, 1e-9)
                hold = params["max_hold_ms"] / 1000 * min(1.0, 0.1 + progress * 1.5)
                try:
                    with conn.transaction():
                        conn.execute("LOCK TABLE products, stock IN ACCESS EXCLUSIVE MODE")
                        self.stop.wait(hold)
                except psycopg.errors.DeadlockDetected:
                    # A writer held stock and wanted products while we held products: PostgreSQL broke the
                    # cycle by cancelling us. The contention goes on next round; the fault must not end.
                    pass
                self.stop.wait(params["gap_ms"] / 1000)

    def _redis_pause(self, spec: Fault, params: dict[str, float], start: float, until: float) -> None:
        client = redis.Redis.from_url(self.market.stack.redis_url, socket_timeout=5)
        try:
            # Short renewed pauses, so an interrupted injection ends the outage within a second.
            while not self.stop.is_set() and self.clock() < until:
                client.execute_command(
                    "CLIENT", "PAUSE", int(min(1.0, until - self.clock()) * 1000) + 1, "ALL"
                )
                self.wait_until(min(until, self.clock() + 1.0))
        finally:
            client.close()

    def _crash(self, spec: Fault, params: dict[str, float], start: float, until: float) -> None:
        self.market.kill_replicas(spec.service)
        try:
            self.wait_until(until)
        finally:  # the orchestrator restarts the crashed pods once the fault ends
            for replica in self.market.replica_list(spec.service):
                self.market.start_replica(replica)


class ChaosStep(NamedTuple):
    offset: float  # seconds after the chaos run began
    fault: str
    duration: float
    service: str | None = None  # the target of an ``any_service`` fault; None: the fault's own service

    @property
    def label(self) -> str:
        return f"{self.fault} on {self.service}" if self.service else self.fault


def chaos_schedule(
    seed: int,
    total: float,
    *,
    faults: list[str] | None = None,
    min_duration: float = 60,
    max_duration: float = 180,
    min_gap: float = 60,
    max_gap: float = 240,
) -> list[ChaosStep]:
    """A seeded plan of faults filling ``total`` seconds, one at a time.

    ``any_service`` faults are aimed at a service of the catalog drawn from the same seed.
    """
    names = faults or sorted(FAULTS)
    for name in names:
        fault(name)
    rng = random.Random(seed)
    plan: list[ChaosStep] = []
    at = rng.uniform(min_gap, max_gap)
    while True:
        duration = rng.uniform(min_duration, max_duration)
        if at + duration > total:
            return plan
        name = rng.choice(names)
        target = rng.choice([s.name for s in catalog.SERVICES]) if FAULTS[name].any_service else None
        plan.append(ChaosStep(round(at, 1), name, round(duration, 1), target))
        at += duration + rng.uniform(min_gap, max_gap)


def run_chaos(
    injector: Injector, plan: list[ChaosStep], on_event: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    began = injector.clock()
    records = []
    for step in plan:
        injector.wait_until(began + step.offset)
        if injector.stop.is_set():
            break
        on_event(f"injecting {step.label} for {step.duration:.0f}s")
        records.append(injector.inject(step.fault, step.duration, service=step.service))
        on_event(f"{step.label} ended")
    return records


def read_ground_truth(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
