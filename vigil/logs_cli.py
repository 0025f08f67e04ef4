"""``vigil logs templates``: the message templates in a stretch of Elasticsearch logs, as vigil mines them."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from vigil.console import console

if TYPE_CHECKING:
    from vigil.collectors.log_templates import TemplateCount

app = typer.Typer(help="What vigil reads in the logs.", no_args_is_help=True)


@app.command("templates")
def templates(
    index: Annotated[str, typer.Option(help="index pattern of the ECS log documents")] = "logs-*",
    since: Annotated[str, typer.Option(help="how far back to read, e.g. 15m, 1h, 1d")] = "1h",
    es_url: Annotated[
        str | None,
        typer.Option("--es-url", envvar="VIGIL_ES_URL", help="Elasticsearch; default: the local stack's"),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            help="a `vigil run` replica's log-templates-*.json (in its state_dir): read-only, so the ids "
            "shown are the ones its log_template_lines series carry"
        ),
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="how many templates to show")] = 20,
    service: Annotated[str | None, typer.Option(help="only this service's lines")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """The most frequent message templates of the last --since, with their line counts and an example."""
    from elasticsearch import ApiError, Elasticsearch, TransportError

    from vigil.collectors.log_templates import LogTemplates, count_templates
    from vigil.collectors.logs import line_of, read_documents
    from vigil.durations import parse_duration

    try:
        seconds = parse_duration(since)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--since") from error
    if state is not None and not state.is_file():
        raise typer.BadParameter(f"{state}: no such file", param_hint="--state")
    url = es_url or _local_elasticsearch()
    end = time.time()
    with tempfile.TemporaryDirectory(prefix="vigil-templates-") as work:
        copy = None
        if state is not None:  # drain3 writes its state back on every change: never into vigil run's file
            copy = Path(work) / state.name
            shutil.copyfile(state, copy)
        miner = LogTemplates(copy)
        try:
            with Elasticsearch(url, request_timeout=30) as es:
                lines = (line_of(source) for source in read_documents(es, index, end - seconds, end))
                counted = count_templates(
                    ((svc, message) for svc, _, message in lines if service in (None, svc)), miner
                )
        except (ApiError, TransportError) as error:
            console.print(f"[red]reading {escape(index)} from {escape(url)}: {escape(str(error))}[/]")
            raise typer.Exit(1) from error
    total, shown = sum(c.lines for c in counted), counted[:top]
    if as_json:
        print(json.dumps({"lines": total, "templates": len(counted), "top": [_row(c) for c in shown]}))
        return
    title = f"{total} lines in the last {since}, {len(counted)} templates"
    table = Table("id", "lines", "share", "services", "template", "example", title=title)
    for c in shown:
        table.add_row(
            c.template_id,
            str(c.lines),
            f"{c.lines / total:.1%}",
            ", ".join(s for s, _ in c.services.most_common(3)),
            escape(c.template),
            escape(c.example),
        )
    console.print(table)


def _row(c: TemplateCount) -> dict[str, object]:
    return {
        "id": c.template_id,
        "template": c.template,
        "lines": c.lines,
        "services": dict(c.services.most_common()),
        "example": c.example,
    }


def _local_elasticsearch() -> str:
    from vigil.stack.settings import StackSettings

    return str(StackSettings().elasticsearch_url)
