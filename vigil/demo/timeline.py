"""The demo's live view: a status panel (load, SLOs, vigil's highest scores) over a log of events."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from vigil.demo.leadtime import limit
from vigil.demo.watch import Event, Snapshot, describe
from vigil.system import SLO

STYLES = {
    "phase": "cyan",
    "fault": "bold magenta",
    "breach": "bold red",
    "vigil-alert": "bold yellow",
    "rule-alert": "yellow",
    "incident": "bold yellow",
    "resolved": "green",
}


def clock(at: float, started: float) -> str:
    """``+03:25`` since the start of the load."""
    seconds = max(0, int(at - started))
    return f"+{seconds // 60:02d}:{seconds % 60:02d}"


def event_line(event: Event, started: float) -> Text:
    line = Text(f"{clock(event.at, started)}  ", style="dim")
    line.append(f"{event.kind:<11} ", style=STYLES.get(event.kind, ""))
    line.append(event.text)
    return line


def status_table(
    snapshot: Snapshot, *, started: float, phase: str, users: int, slos: Sequence[SLO], fault: str
) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rps = "-" if snapshot.rps is None else f"{snapshot.rps:.1f} req/s"
    table.add_row(
        "time", f"{clock(snapshot.at, started)}  {time.strftime('%H:%M:%S', time.localtime(snapshot.at))}"
    )
    table.add_row("load", f"{phase}: {users} users, storefront {rps}")
    table.add_row("fault", fault)
    for slo in slos:
        value = snapshot.slis.get(slo.name)
        broken = value is not None and value > limit(slo)
        table.add_row(f"SLO {slo.name}", Text(describe(slo, value), style="bold red" if broken else "green"))
    scores = Text()
    for name, score in snapshot.scores:
        style = "bold red" if score > 1 else ("yellow" if score > 0.6 else "")
        scores.append(f"{score:5.2f}  {name}\n", style=style)
    table.add_row("vigil scores", scores if snapshot.scores else Text("warming up", style="dim"))
    table.add_row("incidents open", str(snapshot.open_incidents))
    return table


def view(
    title: str, status: Table, events: Sequence[Event], started: float, keep: int = 14
) -> RenderableType:
    log = Group(*(event_line(e, started) for e in events[-keep:])) if events else Text("", style="dim")
    return Group(Panel(status, title=title, border_style="blue"), log)
