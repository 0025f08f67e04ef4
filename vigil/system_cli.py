"""``vigil system``: validate a system file, see what vigil derives from it, draw its service map."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from vigil.console import console

if TYPE_CHECKING:  # vigil.system is imported when a command runs
    from vigil.system import System

app = typer.Typer(
    help="The watched system as data: services, calls, components, resources, queues and SLOs.",
    no_args_is_help=True,
)

SystemFile = Annotated[Path, typer.Argument(help="the system file (YAML)")]


def load_or_exit(path: Path) -> System:
    """The system file at ``path``, or every problem in it printed and exit 1 (for any command)."""
    from vigil.system import SystemFileError, load_system

    try:
        return load_system(path)
    except SystemFileError as error:
        console.print(f"[red]{error}[/]", highlight=False)
        raise typer.Exit(1) from error


@app.command("check")
def check(
    path: SystemFile,
    signals: Annotated[bool, typer.Option("--signals", help="also list the signals vigil derives")] = False,
) -> None:
    """Validate FILE; print what it describes and who depends on whom. Exit 1 with every problem named."""
    from vigil.system.signals import derive_signals

    system = load_or_exit(path)
    services = Table("service", "team", "calls", "uses", "queues", "SLOs", title=f"{system.name}: services")
    for s in system.services:
        queues = [f"<- {q.name}" for q in system.consumes(s.name)] + [
            f"-> {q.name}" for q in system.publishes(s.name)
        ]
        slos = [slo.name for slo in system.slos if slo.service == s.name]
        name = f"{s.name} (external)" if s.external else s.name
        services.add_row(
            name, s.team, ", ".join(s.calls), ", ".join(s.uses), ", ".join(queues), ", ".join(slos)
        )
    console.print(services)
    components = Table("component", "kind", "selector", "used by", title="components")
    for c in system.components:
        selector = ", ".join(f"{k}={v}" for k, v in c.selector.items()) or "(no health metrics)"
        components.add_row(c.name, c.kind, selector, ", ".join(system.users_of(c.name)))
    if system.components:
        console.print(components)
    derived = derive_signals(system)
    console.print(
        f"[green]valid[/]: {len(system.services)} services, {len(system.components)} components, "
        f"{len(system.resources)} shared resources, {len(system.queues)} queues, {len(system.slos)} SLOs; "
        f"{len(derived)} signals derived"
    )
    if signals:
        table = Table("signal", "computed from", "detector", "description", title="derived signals")
        for entry in derived:
            source = entry["metric"]["name"] if "metric" in entry else " + ".join(entry["inputs"])
            detector = (
                entry.get("detector", {}).get("kind", "-") if entry.get("detect", True) else "input only"
            )
            table.add_row(entry["name"], source, detector, entry.get("description", ""))
        console.print(table)


@app.command("graph")
def graph(
    path: SystemFile,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write")] = Path("system.png"),
) -> None:
    """Draw FILE's service map (calls, queues, shared tables, components, SLOs) as a PNG."""
    from vigil.system.graph import draw

    system = load_or_exit(path)
    console.print(f"wrote {draw(system, out)}")
