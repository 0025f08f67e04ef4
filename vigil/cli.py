"""The ``vigil`` command line."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from vigil.alerts_cli import app as alerts_app
from vigil.console import console
from vigil.dashboards_cli import app as dashboards_app
from vigil.logs_cli import app as logs_app
from vigil.marketplace_cli import app as marketplace_app
from vigil.stack import Stack, StackError
from vigil.stack.install import InstallError
from vigil.system_cli import app as system_app

if TYPE_CHECKING:  # the backtest's modules are imported only when it runs
    from vigil.backtest import Backtest
    from vigil.collectors.model import SeriesKey

app = typer.Typer(
    help="vigil: notice marketplace trouble before customers feel it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack_app = typer.Typer(
    help="The local stack of real services (PostgreSQL, Redis, RabbitMQ, Elasticsearch, "
    "Prometheus, Alertmanager, exporters) on 127.0.0.1.",
    no_args_is_help=True,
)
app.add_typer(stack_app, name="stack")
app.add_typer(marketplace_app, name="marketplace")
app.add_typer(alerts_app, name="alerts")
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(system_app, name="system")
app.add_typer(logs_app, name="logs")

Components = Annotated[list[str] | None, typer.Argument(help="component names; all when omitted")]

STATE_STYLE = {"healthy": "green", "unhealthy": "yellow", "stopped": "dim", "foreign": "red"}


def _print_status(stack: Stack) -> bool:
    table = Table("component", "state", "pid", "url", "detail")
    statuses = stack.status()
    for s in statuses:
        table.add_row(s.name, f"[{STATE_STYLE[s.state]}]{s.state}[/]", str(s.pid or ""), s.url, s.detail)
    console.print(table)
    return all(s.state == "healthy" for s in statuses)


def _stack(names: list[str] | None) -> Stack:
    try:
        return Stack(names=names, log=lambda line: console.print(f"[dim]{line}[/]"))
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error


@stack_app.command("up")
def stack_up(components: Components = None) -> None:
    """Install what is missing, start what is not running, wait until all are healthy."""
    stack = _stack(components)
    try:
        stack.up()
    except (StackError, InstallError) as error:
        console.print(f"[red]stack up failed:[/] {error}")
        raise typer.Exit(1) from error
    _print_status(stack)


@stack_app.command("down")
def stack_down(components: Components = None) -> None:
    """Stop the components this stack started (by pid); nothing else is touched."""
    stopped = _stack(components).down()
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@stack_app.command("status")
def stack_status(components: Components = None) -> None:
    """Show each component, its URL and health; exits 1 unless all are healthy."""
    if not _print_status(_stack(components)):
        raise typer.Exit(1)


@stack_app.command("install")
def stack_install(components: Components = None) -> None:
    """Only install the packages and artifacts the components need."""
    from vigil.stack.install import install

    stack = _stack(components)
    try:
        install(stack.components, stack.log)
    except InstallError as error:
        console.print(f"[red]install failed:[/] {error}")
        raise typer.Exit(1) from error
    console.print("everything the stack needs is installed")


@app.command()
def demo(
    scenario: Annotated[
        str,
        typer.Option(help="latency | backlog | payment-latency | errors | cache-outage | surge (no fault)"),
    ] = "latency",
    seed: Annotated[int, typer.Option(help="seed of the load generator's users")] = 42,
    out: Annotated[
        Path | None, typer.Option(help="report folder; default reports/demo-<scenario>-<time>")
    ] = None,
    config: Annotated[Path, typer.Option("--config", "-c", help="vigil.yaml to run (at demo pace)")] = Path(
        "vigil.yaml"
    ),
    users: Annotated[int, typer.Option(help="users before the surge (5x at the peak)")] = 20,
    port: Annotated[
        int, typer.Option(help="vigil's port (the stack's Alertmanager calls back to it)")
    ] = 9400,
    live: Annotated[
        bool | None,
        typer.Option(
            help="redraw a live status panel (else one line per event); default: live only on a terminal"
        ),
    ] = None,
    crash_vigil_at: Annotated[
        str | None,
        typer.Option(help="kill -9 vigil this long into the run (e.g. 5m, mid-surge) and start it again"),
    ] = None,
) -> None:
    """The whole story: a Black Friday surge, a fault at its peak, and vigil catching it before customers do.

    Brings up the stack and the marketplace (reusing what runs), starts vigil, plays the load and the
    scenario's fault, shows a live timeline, then a summary and a report (Markdown + PNG) in --out.
    Ctrl-C stops the load, the fault and vigil, and whatever the demo itself started.
    """
    from vigil.demo.report import summary, write_report
    from vigil.demo.run import DemoError, DemoOptions, run_demo
    from vigil.demo.scenarios import scenario as find_scenario
    from vigil.durations import parse_duration

    try:
        chosen = find_scenario(scenario)
    except ValueError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from error
    folder = out or Path("reports") / f"demo-{chosen.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    options = DemoOptions(
        chosen,
        folder,
        config=config,
        seed=seed,
        base_users=users,
        vigil_port=port,
        crash_vigil_at=parse_duration(crash_vigil_at) if crash_vigil_at is not None else None,
        # A redrawn panel shows nothing in a file or a pipe until it ends; there, print events as they come.
        live=console.is_terminal if live is None else live,
    )
    try:
        recording, outcome = run_demo(options, console)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: load, fault and vigil stopped[/]")
        raise typer.Exit(130) from None
    except (DemoError, StackError, InstallError) as error:
        console.print(f"[red]demo: {error}[/]")
        raise typer.Exit(1) from error
    console.print(summary(outcome))
    report = write_report(recording, outcome, folder)
    console.print(f"report: {report}")


@app.command()
def run(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="vigil.yaml: the system file, sources, alerting")
    ] = Path("vigil.yaml"),
    system: Annotated[
        Path | None,
        typer.Option("--system", help="the system file to watch (overrides system: in the config)"),
    ] = None,
    port: Annotated[int | None, typer.Option(help="override server.port")] = None,
    shard: Annotated[
        str | None, typer.Option(help="INDEX/COUNT: score only this replica's share of the series")
    ] = None,
) -> None:
    """Collect signals on a schedule, score them, and serve /metrics, /api/v1/* and /healthz."""
    from vigil.config import ConfigError, ShardConfig, load_config
    from vigil.runtime.service import run as run_service

    try:
        settings = load_config(config, system=system)
        if shard is not None:
            settings = settings.model_copy(update={"shard": ShardConfig.parse(shard)})
    except (ConfigError, ValueError) as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from error
    if port is not None:
        settings = settings.model_copy(update={"server": settings.server.model_copy(update={"port": port})})
    import logging

    # vigil's own news (checkpoints, sources down and back) at INFO; libraries only when they warn.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("vigil").setLevel(logging.INFO)
    console.print(
        f"vigil watching {len(settings.signals)} signals; API on "
        f"http://{settings.server.host}:{settings.server.port}/docs"
    )
    run_service(settings)


@app.command()
def backtest(
    config: Annotated[Path, typer.Option("--config", "-c", help="vigil.yaml with PromQL signals")],
    start: Annotated[str, typer.Option("--from", help="ISO 8601, unix seconds, -2h or now")],
    end: Annotated[str, typer.Option("--to", help="ISO 8601, unix seconds, -2h or now")] = "now",
    signals: Annotated[
        list[str] | None, typer.Option("--signal", "-s", help="replay only this signal (repeatable)")
    ] = None,
    ground_truth: Annotated[
        Path | None, typer.Option(help="fault records (JSON lines) to match episodes against")
    ] = None,
    hold: Annotated[
        str | None,
        typer.Option("--for", help="above the threshold this long to fire; default: the config's"),
    ] = None,
    keep_firing_for: Annotated[
        str | None, typer.Option(help="below the resolve level this long to resolve; default: the config's")
    ] = None,
    grace: Annotated[str, typer.Option(help="alerts this long after a fault ended still detect it")] = "1m",
    logs: Annotated[
        Path | None,
        typer.Option(
            help="log documents exported beside a recording (.jsonl.gz): replay the log signals too"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
) -> None:
    """Replay history from Prometheus through vigil's engine and alert rules: what would have fired, when."""
    import json
    import time

    from rich.markup import escape

    from vigil import backtest as bt
    from vigil.backtest_faults import load_ground_truth
    from vigil.backtest_logs import RecordedLogs
    from vigil.collectors.prometheus_client import PrometheusClient
    from vigil.config import ConfigError, load_config
    from vigil.durations import parse_duration, parse_moment

    # Errors are escaped: PromQL such as `rate(x[1m])` would otherwise be read as rich markup.
    try:
        settings = load_config(config)
    except ConfigError as error:
        console.print(f"[red]{escape(str(error))}[/]")
        raise typer.Exit(2) from error
    now = time.time()  # once, so `--from -1h --to now` is exactly one hour
    try:
        begin, until = parse_moment(start, now), parse_moment(end, now)
        overrides = bt.Overrides(
            parse_duration(hold) if hold is not None else None,
            parse_duration(keep_firing_for) if keep_firing_for is not None else None,
            parse_duration(grace),
        )
        chosen = bt.select_signals(settings, signals)
        if not begin < until:
            raise ValueError(f"--from ({start}) must be before --to ({end})")
        faults = load_ground_truth(ground_truth, begin, until) if ground_truth is not None else None
        recorded = RecordedLogs.load(logs) if logs is not None else None
    except (ValueError, OSError) as error:
        console.print(f"[red]backtest: {escape(str(error))}[/]")
        raise typer.Exit(2) from error
    source = settings.sources.prometheus
    if source is None or not chosen:
        console.print("[red]backtest: the config has no PromQL signals to replay[/]")
        raise typer.Exit(2)
    # Range reads are far larger than `vigil run`'s incremental rounds: allow them more time.
    with PrometheusClient(source.url, headers=source.headers, timeout=max(source.timeout, 60.0)) as client:
        try:
            result = bt.run_backtest(settings, client, chosen, begin, until, overrides, faults, logs=recorded)
        except bt.BacktestError as error:
            console.print(f"[red]backtest failed: {escape(str(error))}[/]")
            raise typer.Exit(1) from error
    if as_json:
        typer.echo(json.dumps(bt.to_json(result), indent=2))  # plain echo: no rich markup or wrapping
        return
    points = sum(len(times) for s in result.signals for times in s.times.values())
    series_count = sum(len(s.times) for s in result.signals)
    console.print(
        f"replayed {len(result.signals)} signals, {series_count} series, {points} points: "
        f"{len(result.episodes)} episodes, {len(result.incidents)} incidents"
    )
    for table in _backtest_tables(result):
        console.print(table)


def _backtest_tables(result: Backtest) -> list[Table]:
    from datetime import UTC, datetime

    from rich.markup import escape

    def at(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%m-%d %H:%M:%S")

    def labels(key: SeriesKey) -> str:
        return escape(",".join(f"{k}={v}" for k, v in key.labels))

    episodes = Table("signal", "labels", "fired (UTC)", "until", "lasted s", "peak", title="episodes")
    false_alarms = set(result.false_alarms or [])
    if result.faults is not None:
        episodes.add_column("ground truth")
    for e in result.episodes:
        row = [e.key.signal, labels(e.key), at(e.start), at(e.end), f"{e.end - e.start:.0f}", f"{e.peak:.3g}"]
        if result.faults is not None:
            row.append("[yellow]false alarm[/]" if e in false_alarms else "fault")
        episodes.add_row(*row)
    if result.faults is None:
        return [episodes]
    detected = sum(1 for m in result.faults if m.alerts)
    columns = ("fault", "service", "start (UTC)", "lasted s", "first alert", "lag s", "new alert lag s")
    faults = Table(*columns, "first series", "alerts", "likely cause")
    faults.title = f"faults: {detected}/{len(result.faults)} detected, {len(false_alarms)} false alarms"
    for m in result.faults:
        f = m.fault
        first = m.alerts[0] if m.alerts else None
        faults.add_row(
            f.fault,
            f.service,
            at(f.start),
            f"{f.end - f.start:.0f}",
            at(first.start) if first else "",
            f"{m.lag:+.0f}" if m.lag is not None else "[red]missed[/]",
            f"{m.new_lag:+.0f}" if m.new_lag is not None else "",
            f"{first.key.signal} {labels(first.key)}" if first else "",
            str(len(m.alerts)),
            escape(m.likely_cause or ""),
        )
    return [episodes, faults]


if __name__ == "__main__":
    app()
