"""The ``vigil`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vigil.console import console
from vigil.marketplace_cli import app as marketplace_app
from vigil.stack import Stack, StackError
from vigil.stack.install import InstallError

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
def demo() -> None:
    """Run the end-to-end demo (for now: bring the stack up and show it; the marketplace scenario follows)."""
    stack = _stack(None)
    try:
        stack.up()
    except (StackError, InstallError) as error:
        console.print(f"[red]demo: the stack did not come up:[/] {error}")
        raise typer.Exit(1) from error
    healthy = _print_status(stack)
    console.print(
        "The stack is up. The marketplace, load, fault injection and vigil's detection join this demo "
        "as they land; stop everything with `vigil stack down`."
    )
    if not healthy:
        raise typer.Exit(1)


@app.command()
def run(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="vigil.yaml; default: scrape the demo")
    ] = None,
    port: Annotated[int | None, typer.Option(help="override server.port")] = None,
) -> None:
    """Collect signals on a schedule, score them, and serve /metrics, /api/v1/* and /healthz."""
    from vigil.config import ConfigError, load_config
    from vigil.runtime.defaults import default_config
    from vigil.runtime.service import run as run_service

    try:
        settings = load_config(config) if config is not None else default_config()
    except ConfigError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from error
    if port is not None:
        settings = settings.model_copy(update={"server": settings.server.model_copy(update={"port": port})})
    console.print(
        f"vigil watching {len(settings.signals)} signals; API on "
        f"http://{settings.server.host}:{settings.server.port}/docs"
    )
    run_service(settings)


if __name__ == "__main__":
    app()
