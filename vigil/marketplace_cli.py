"""``vigil marketplace``: run the demo marketplace, put load on it, break it on purpose."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from vigil.console import console
from vigil.stack import StackError

if TYPE_CHECKING:  # the marketplace's imports are only paid for by the commands that use it
    from vigil.demo_marketplace.runner import Marketplace

app = typer.Typer(
    help="The bundled demo marketplace: services, load and fault injection.", no_args_is_help=True
)


def _marketplace() -> Marketplace:
    from vigil.demo_marketplace.runner import Marketplace

    return Marketplace(log=lambda line: console.print(f"[dim]{line}[/]"))


@app.command("up")
def up(
    replicas: Annotated[str, typer.Option(help="replica counts, e.g. catalog=3,gateway=2")] = "",
    cache: Annotated[bool, typer.Option(help="serve catalog reads through the Redis cache")] = True,
) -> None:
    """Start every service (N replicas behind HAProxy) and the log shipper; register Prometheus targets."""
    from vigil.demo_marketplace.runner import parse_replicas

    try:
        counts = parse_replicas(replicas)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--replicas") from error
    market = _marketplace()
    try:
        market.up(counts, cache_enabled=cache)
    except StackError as error:
        console.print(f"[red]marketplace up failed:[/] {error}")
        raise typer.Exit(1) from error
    _print_status(market)


@app.command("down")
def down() -> None:
    """Stop the marketplace processes this machine's `up` started."""
    stopped = _marketplace().down()
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


def _print_status(market: Marketplace) -> bool:
    table = Table("process", "pid", "url", "healthy")
    rows = market.status()
    for name, pid, url, healthy in rows:
        table.add_row(name, str(pid or ""), url, "[green]yes[/]" if healthy else "[red]no[/]")
    console.print(table)
    return all(row[3] for row in rows)


@app.command("status")
def status() -> None:
    """Each replica, HAProxy and the log shipper with their health; exits 1 unless all are healthy."""
    if not _print_status(_marketplace()):
        raise typer.Exit(1)


@app.command("serve", hidden=True)
def serve(
    service: str, port: Annotated[int, typer.Option()], replica: str = "0", host: str = "127.0.0.1"
) -> None:
    """Run one replica of SERVICE in the foreground (what containers run)."""
    from vigil.demo_marketplace.serve import serve as run

    run(service, port, replica, host)


dlq_app = typer.Typer(help="Dead-letter queues: inspect and replay.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


def _amqp_url() -> str:
    from vigil.stack.settings import StackSettings

    return StackSettings().amqp_url


@contextmanager
def _broker_errors() -> Iterator[None]:
    from aio_pika.exceptions import AMQPError

    try:
        yield
    except (OSError, AMQPError) as error:
        where = _amqp_url().rpartition("@")[2]  # not the credentials
        console.print(f"[red]cannot reach RabbitMQ at {where}:[/] {error or type(error).__name__}")
        raise typer.Exit(1) from error


@dlq_app.command("list")
def dlq_list() -> None:
    """Each order queue with the messages waiting in it and in its dead-letter queue."""
    from vigil.demo_marketplace import dlq

    table = Table("queue", "waiting", "dead-lettered")
    with _broker_errors():
        depths = dlq.depths(_amqp_url())
    for name, (waiting, dead) in depths.items():
        table.add_row(name, str(waiting), f"[red]{dead}[/]" if dead else "0")
    console.print(table)


@dlq_app.command("replay")
def dlq_replay(
    queue: Annotated[
        str, typer.Argument(help="the queue whose dead letters go back, e.g. payments.order-placed")
    ],
    limit: Annotated[int | None, typer.Option(help="replay at most this many")] = None,
) -> None:
    """Move QUEUE's dead-lettered messages back into QUEUE, to be processed again (after a fix)."""
    from vigil.demo_marketplace import dlq

    try:
        with _broker_errors():
            replayed = dlq.replay(_amqp_url(), queue, limit)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    console.print(f"replayed {replayed} message(s) into {queue}")


fault_app = typer.Typer(help="Inject faults with recorded ground truth.", no_args_is_help=True)
app.add_typer(fault_app, name="fault")


@fault_app.command("list")
def fault_list() -> None:
    """The fault catalogue: name, culprit service, what happens, parameters."""
    from vigil.demo_marketplace.faults import FAULTS

    table = Table("fault", "service", "what happens", "parameters")
    for f in FAULTS.values():
        target = f"any (--service; default {f.service})" if f.any_service else f.service
        table.add_row(f.name, target, f.description, ", ".join(f"{k}={v}" for k, v in f.params.items()))
    console.print(table)


def _params(values: list[str]) -> dict[str, float]:
    params = {}
    for value in values:
        key, sep, number = value.partition("=")
        try:
            params[key] = float(number)
        except ValueError:
            sep = ""
        if not sep:
            raise typer.BadParameter(f"expected KEY=NUMBER, got {value!r}", param_hint="--param")
    return params


@fault_app.command("inject")
def fault_inject(
    name: str,
    duration: Annotated[str, typer.Option("--for", help="how long, e.g. 120s or 5m")] = "120s",
    param: Annotated[list[str] | None, typer.Option(help="override a parameter, KEY=NUMBER")] = None,
    service: Annotated[
        str | None, typer.Option(help="the service to target, for faults that can hit any service")
    ] = None,
) -> None:
    """Act out fault NAME for a while, then end it and append it to the ground-truth file."""
    from vigil.demo_marketplace.faults import Injector, fault, targeted
    from vigil.durations import parse_duration

    try:
        spec = targeted(fault(name), service)
        seconds = parse_duration(duration)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    market = _marketplace()
    injector = Injector(market)
    console.print(f"injecting {name} on {spec.service} for {seconds:.0f}s (Ctrl-C ends it early)")
    try:
        record = injector.inject(name, seconds, _params(param or []), service=service)
    except KeyboardInterrupt:
        injector.stop.set()
        raise
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    console.print(f"recorded in {market.ground_truth_file}: {record}")


@app.command("chaos")
def chaos(
    seed: Annotated[int, typer.Option(help="the same seed gives the same schedule")] = 42,
    duration: Annotated[str, typer.Option("--for", help="total length, e.g. 30m")] = "30m",
    faults: Annotated[str, typer.Option(help="comma-separated fault names; all when empty")] = "",
) -> None:
    """Run a seeded chaos schedule of faults, one at a time, each recorded as ground truth."""
    from vigil.demo_marketplace.faults import Injector, chaos_schedule, run_chaos
    from vigil.durations import parse_duration

    try:
        plan = chaos_schedule(
            seed, parse_duration(duration), faults=[f for f in faults.split(",") if f] or None
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    for step in plan:
        console.print(f"  +{step.offset:>7.0f}s  {step.label:<40} {step.duration:.0f}s")
    injector = Injector(_marketplace())
    try:
        run_chaos(injector, plan, on_event=console.print)
    except KeyboardInterrupt:
        injector.stop.set()
        raise
