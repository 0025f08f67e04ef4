"""``vigil demo``: one scenario acted out on the local stack, watched live, judged, and written up.

The stack and the marketplace are brought up (or reused when they already run), vigil is started
as ``vigil run`` at the demo's pace, the load generator plays a time-compressed Black Friday, and the
scenario's fault is injected at the peak. Whatever the demo started is stopped again if it is
interrupted (Ctrl-C); the load, the fault and vigil are always stopped.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from vigil.collectors.prometheus_client import PrometheusClient
from vigil.collectors.promql import matchers
from vigil.config import read_config
from vigil.demo import timeline
from vigil.demo.leadtime import limit, sli
from vigil.demo.outcome import Outcome, assess
from vigil.demo.scenarios import Scenario
from vigil.demo.vigil_process import demo_config, running_vigil
from vigil.demo.watch import Event, Snapshot, Watcher, highest
from vigil.demo_marketplace.catalog import SYSTEM
from vigil.demo_marketplace.faults import Injector
from vigil.demo_marketplace.loadgen.runner import start_load, stop_load
from vigil.demo_marketplace.loadgen.shapes import make_shape
from vigil.demo_marketplace.runner import Marketplace
from vigil.stack import Stack
from vigil.stack.component import port_open

POLL_S = 2.0
QUEUED = 'max(max_over_time(rabbitmq_detailed_queue_messages{queue!~".*[.]dead"}[1m]))'
SETTLED_QUEUE_DEPTH = 3
_HTTP = SYSTEM.telemetry.http
# Server errors of the last minute: an earlier run's fault (or test) still in the windows vigil reads.
ERRORED = (
    f"sum(increase({_HTTP.server_duration}_count"
    f"{matchers(SYSTEM.telemetry.selector, {_HTTP.status_label: _HTTP.server_error})}[1m]))"
)


class DemoError(RuntimeError):
    pass


@dataclass
class DemoOptions:
    scenario: Scenario
    out_dir: Path
    config: Path = Path("vigil.yaml")
    seed: int = 42
    base_users: int = 20
    vigil_port: int = 9400
    alertmanager_url: str | None = None  # None: the stack's; vigil's alerts go there
    live: bool = True  # redraw a status panel; otherwise print events line by line
    crash_vigil_at: float | None = None  # seconds into the run: kill -9 vigil and start it again


@dataclass
class Recording:
    """Everything a run saw; the outcome and the report are computed from it."""

    scenario: Scenario
    started: float
    ended: float = 0.0
    fault: dict[str, Any] | None = None  # the injector's ground-truth record
    events: list[Event] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    watcher: Watcher | None = None


def ensure_running(stack: Stack, market: Marketplace, say: Callable[[str], None]) -> list[str]:
    """Bring up what is not running; returns what was started (to stop it again on Ctrl-C)."""
    started = []
    if not all(s.state == "healthy" for s in stack.status()):
        say("starting the stack (PostgreSQL, Redis, RabbitMQ, Elasticsearch, Prometheus, Alertmanager)...")
        stack.up()
        started.append("stack")
    if not all(healthy for *_, healthy in market.status()):
        say("starting the marketplace...")
        market.up()
        started.append("marketplace")
    return started


def run_demo(options: DemoOptions, console: Console) -> tuple[Recording, Outcome]:
    scenario = options.scenario
    scenario.check()
    if not options.config.exists():
        raise DemoError(f"{options.config} not found: run from the repository or pass --config")
    base = read_config(options.config)
    if port_open("127.0.0.1", options.vigil_port):
        raise DemoError(
            f"127.0.0.1:{options.vigil_port} is in use (a `vigil run` already?): stop it, or pass --port"
        )
    stack = Stack()
    settings = stack.settings
    market = Marketplace(settings, log=lambda line: console.print(f"[dim]{line}[/]"))
    started_here = ensure_running(stack, market, lambda line: console.print(line))
    finished = False
    try:
        recording = _act(options, console, base, stack, market)
        finished = True
    finally:
        if not finished and started_here:  # interrupted: leave the machine as we found it
            console.print(f"stopping what the demo started: {', '.join(started_here)}")
            if "marketplace" in started_here:
                market.down()
            if "stack" in started_here:
                stack.down()
    slo = next(s for s in SYSTEM.slos if s.name == scenario.slo)
    assert recording.watcher is not None
    with PrometheusClient(settings.prometheus_url) as prometheus:
        outcome = assess(
            scenario,
            slo=slo,
            prometheus=prometheus,
            started=recording.started,
            ended=recording.ended,
            fault=recording.fault,
            alerts=sorted(recording.watcher.alerts.values(), key=lambda a: a.at),
            incidents=list(recording.watcher.incidents.values()),
            notifications=list(recording.watcher.notifications.values()),
        )
    return recording, outcome


def _act(
    options: DemoOptions, console: Console, base: dict[str, Any], stack: Stack, market: Marketplace
) -> Recording:
    scenario, settings = options.scenario, stack.settings
    phases = scenario.phases
    workdir = options.out_dir / "run"
    alertmanager = options.alertmanager_url or settings.alertmanager_url
    config = demo_config(
        base,
        workdir=workdir,
        settings=settings,
        alertmanager_urls=[options.alertmanager_url] if options.alertmanager_url else None,
    )
    targets = settings.home / "prometheus" / "targets" / "vigil" / "vigil.json"
    shape = make_shape(
        "black_friday",
        base_users=options.base_users,
        duration_s=phases.length_s,
        params=phases.shape_params(),
    )
    slos = SYSTEM.slos
    with PrometheusClient(settings.prometheus_url) as prometheus:
        settle(prometheus, lambda line: console.print(line))
    with contextlib.ExitStack() as cleanup:
        console.print(f"starting vigil (log: {workdir / 'vigil' / 'vigil.log'})...")
        vigil = cleanup.enter_context(
            running_vigil(config, workdir / "vigil", port=options.vigil_port, targets=targets)
        )
        vigil_url = vigil.url
        load = start_load(
            market.url("gateway"),
            shape="black_friday",
            base_users=options.base_users,
            duration_s=phases.length_s,
            seed=options.seed,
            shape_params=phases.shape_params(),
            csv_prefix=options.out_dir / "load" / "load",
        )
        cleanup.callback(stop_load, load)
        recording = Recording(scenario, started=time.time())
        watcher = recording.watcher = Watcher(
            PrometheusClient(settings.prometheus_url, attempts=1, timeout=3),
            vigil_url,
            alertmanager,
            slos,
            started=recording.started,
        )
        cleanup.callback(watcher.prometheus.close)
        cleanup.enter_context(_fault_thread(scenario, market, recording))
        schedule = _schedule(scenario, recording.started)
        crash_at = recording.started + options.crash_vigil_at if options.crash_vigil_at is not None else None
        title = f"vigil demo: {scenario.name}"
        with _display(console, options.live) as show:
            while (now := time.time()) < recording.started + phases.length_s and load.poll() is None:
                while schedule and schedule[0].at <= now:
                    _add(recording, schedule.pop(0), console, options.live)
                if crash_at is not None and now >= crash_at:
                    crash_at = None
                    vigil.crash_and_restart()  # what it learned and told must carry it through
                    _add(
                        recording,
                        Event(now, "phase", "vigil killed -9 and started again"),
                        console,
                        options.live,
                    )
                snapshot, events = watcher.poll(now)
                recording.snapshots.append(snapshot)
                for event in events:
                    _add(recording, event, console, options.live)
                elapsed = now - recording.started
                status = timeline.status_table(
                    snapshot,
                    started=recording.started,
                    phase=phases.phase_at(elapsed),
                    users=shape.users_at(elapsed),
                    slos=slos,
                    fault=_fault_state(scenario, recording),
                )
                show(timeline.view(title, status, recording.events, recording.started))
                time.sleep(max(0.0, POLL_S - (time.time() - now)))
        recording.ended = time.time()
    return recording


def settle(prometheus: PrometheusClient, say: Callable[[str], None], timeout: float = 600.0) -> None:
    """Wait until an earlier run's trouble is gone: vigil's detectors must learn normal from this run.

    "Gone" is the queues near-empty, no server error and every SLO within its limit, each for a whole
    minute, so that the 1-minute windows of vigil's signals (fulfilment delay, queue rates, error
    counts) no longer hold it either. The SLOs count apart from the queues: a few orders left queued by
    an earlier run, fulfilled minutes late, break the fulfilment SLO at steady traffic by themselves.
    """
    deadline = time.monotonic() + timeout
    told: set[str] = set()
    while True:
        depth, errors = _measured(prometheus, QUEUED), _measured(prometheus, ERRORED)
        broken = [slo.name for slo in SYSTEM.slos if _measured(prometheus, sli(slo)) > limit(slo)]
        unsettled = {
            "queues": f"up to {depth:.0f} messages queued" if depth > SETTLED_QUEUE_DEPTH else "",
            "errors": f"{errors:.0f} server errors" if errors >= 1 else "",
            "slos": f"SLO {', '.join(broken)} broken" if broken else "",
        }
        why = " and ".join(text for text in unsettled.values() if text)
        if not why:
            return
        if time.monotonic() > deadline:
            raise DemoError(f"the marketplace did not settle in {timeout:.0f} s: {why} in the last minute")
        if {k for k, text in unsettled.items() if text} - told:
            say(f"waiting for the marketplace to settle: {why} in the last minute")
            told |= {k for k, text in unsettled.items() if text}
        time.sleep(5)


def _measured(prometheus: PrometheusClient, query: str) -> float:
    return highest(prometheus, query, time.time()) or 0.0


def _add(recording: Recording, event: Event, console: Console, live: bool) -> None:
    recording.events.append(event)
    if not live:
        console.print(timeline.event_line(event, recording.started))


@contextlib.contextmanager
def _display(console: Console, live: bool) -> Iterator[Callable[[Any], None]]:
    if not live:
        yield lambda _renderable: None
        return
    with Live(console=console, refresh_per_second=2, transient=False) as screen:
        yield screen.update


@contextlib.contextmanager
def _fault_thread(scenario: Scenario, market: Marketplace, recording: Recording) -> Iterator[None]:
    """Injects the scenario's fault at its time, in the background; stopped (flags cleared) on exit."""
    if scenario.fault is None or scenario.fault_start is None:
        yield
        return
    stop = threading.Event()
    fault, start, duration = scenario.fault, scenario.fault_start, scenario.fault_for

    def act() -> None:
        if stop.wait(max(0.0, recording.started + start - time.time())):
            return
        injector = Injector(market, stop=stop)
        recording.fault = injector.inject(fault, duration, dict(scenario.params), service=scenario.target)

    thread = threading.Thread(target=act, name="fault", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def _fault_state(scenario: Scenario, recording: Recording) -> str:
    if scenario.fault is None or scenario.fault_start is None:
        return "none (a fault-free surge)"
    where = scenario.culprit
    if recording.fault is not None:
        return f"{scenario.fault} on {where}: over"
    if time.time() < recording.started + scenario.fault_start:
        due = timeline.clock(recording.started + scenario.fault_start, recording.started)
        return f"{scenario.fault} on {where} due at {due}"
    return f"{scenario.fault} on {where}: acting"


def _schedule(scenario: Scenario, started: float) -> list[Event]:
    phases = scenario.phases
    events = [
        Event(started, "phase", f"steady traffic: {phases.baseline_s:.0f} s while vigil learns normal"),
        Event(started + phases.baseline_s, "phase", f"Black Friday: ramping to {phases.peak:g}x the users"),
        Event(started + phases.hold_start, "phase", f"at the {phases.peak:g}x peak"),
        Event(started + phases.hold_start + phases.hold_s, "phase", "the sale winds down"),
    ]
    if scenario.fault is not None and scenario.fault_start is not None:
        culprit = scenario.culprit or ""
        begin = started + scenario.fault_start
        events.append(
            Event(begin, "fault", f"fault {scenario.fault} begins on {culprit}: {scenario.story}", culprit)
        )
        events.append(Event(begin + scenario.fault_for, "fault", f"fault {scenario.fault} ends", culprit))
    return sorted(events, key=lambda e: e.at)
