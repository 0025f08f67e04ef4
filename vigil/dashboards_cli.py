"""``vigil dashboards``: build, check, lint, preview and push the Grafana dashboards made from a system file.

Which system: ``--system FILE``, else the ``system:`` of ``--config vigil.yaml``, else ``$VIGIL_SYSTEM``.
There is no implicit default: dashboards of the wrong system would look right and show nothing.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from vigil.console import console

if TYPE_CHECKING:  # vigil.system is imported when a command runs
    from vigil.system import System

app = typer.Typer(help="Grafana dashboards as code: build, check, lint, preview, push.", no_args_is_help=True)

SYSTEM_ENV = "VIGIL_SYSTEM"
T = TypeVar("T")

Out = Annotated[
    Path | None,
    typer.Option("--out", help="directory of the build (default: the repository's dashboards/generated)"),
]
SystemOption = Annotated[
    Path | None,
    typer.Option("--system", help=f"the system file (default: --config's `system:`, else ${SYSTEM_ENV})"),
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="vigil.yaml whose `system:` names the system file")
]


def system_path(system: Path | None, config: Path | None) -> Path:
    """The system file the options name: --system, else --config's ``system:``, else $VIGIL_SYSTEM."""
    from vigil.config import ConfigError, read_config

    if system is not None:
        return system
    if config is not None:
        try:
            named = read_config(config).get("system")  # made relative to the config file's folder
        except ConfigError as error:
            console.print(f"[red]{escape(str(error))}[/]", highlight=False)
            raise typer.Exit(2) from None
        if not named:
            console.print(f"[red]{escape(str(config))} names no system file[/] (`system:`); pass --system")
            raise typer.Exit(2)
        return Path(named)
    if os.environ.get(SYSTEM_ENV):
        return Path(os.environ[SYSTEM_ENV])
    console.print(f"[red]no system file: pass --system[/] (or --config vigil.yaml, or set ${SYSTEM_ENV})")
    raise typer.Exit(2)


def load(system: Path | None, config: Path | None) -> System:
    from vigil.system import SystemFileError, load_system

    try:
        return load_system(system_path(system, config))
    except SystemFileError as error:
        console.print(f"[red]{escape(str(error))}[/]", highlight=False)
        raise typer.Exit(2) from None


@app.command()
def build(
    system: SystemOption = None,
    config: ConfigOption = None,
    out: Out = None,
    check: Annotated[
        bool, typer.Option("--check", help="change nothing; exit 1 if OUT differs from the build")
    ] = False,
    api_payloads: Annotated[
        bool,
        typer.Option("--api-payloads", help="also write api/<uid>.json bodies for POST /api/dashboards/db"),
    ] = False,
    prometheus_url: Annotated[str, typer.Option(help="Prometheus URL for the datasource provisioning")] = (
        "http://127.0.0.1:9090"
    ),
    elasticsearch_url: Annotated[
        str, typer.Option(help="Elasticsearch URL for the datasource provisioning")
    ] = ("http://127.0.0.1:9200"),
    grafana_path: Annotated[
        str, typer.Option(help="where Grafana will read the dashboard files (the provider's path)")
    ] = "/var/lib/grafana/dashboards/vigil",
) -> None:
    """Write every dashboard's JSON and Grafana's provisioning files (deterministic: sorted keys)."""
    from vigil.dashboards import build as b

    out = out or b.COMMITTED
    options = b.BuildOptions(prometheus_url, elasticsearch_url, grafana_path, api_payloads)
    files = _built(lambda chosen: b.render(chosen, options), load(system, config))
    if check:
        problems = b.check(out, files)
        if problems:
            for problem in problems:
                console.print(escape(problem), highlight=False)
            console.print(
                f"[red]{len(problems)} file(s) in {out} differ from the build[/]: run "
                f"`vigil dashboards build --out {out}` with the same system file and commit the result"
            )
            raise typer.Exit(1)
        console.print(f"{out}: up to date ({len(files)} files)")
        return
    b.write(out, files)
    boards = [json.loads(text) for name, text in files.items() if name.startswith("dashboards/")]
    panels = Counter(panel["type"] for board in boards for panel in board["panels"] if panel["type"] != "row")
    kinds = ", ".join(f"{count} {kind}" for kind, count in panels.most_common())
    console.print(
        f"wrote {len(files)} files ({len(boards)} dashboards, {panels.total()} panels: {kinds}) to {out}"
    )


@app.command()
def lint(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="dashboard JSON files (default: the system's build)")
    ] = None,
    system: SystemOption = None,
    config: ConfigOption = None,
) -> None:
    """Check dashboards against the lint rules (units, descriptions, datasource variable, PromQL, ...)."""
    from vigil.dashboards.build import dashboards
    from vigil.dashboards.lint import lint as run_lint

    boards = [_load(path) for path in paths] if paths else _built(dashboards, load(system, config))
    findings = [finding for board in boards for finding in run_lint(board)]
    for f in findings:
        console.print(
            f"[red]{f.rule}[/] {escape(f.dashboard)} / {escape(f.panel or '-')}: {escape(f.message)}"
        )
    if findings:
        raise typer.Exit(1)
    console.print(f"{len(boards)} dashboards: no findings")


@app.command()
def preview(
    uid: Annotated[str, typer.Argument(help="dashboard uid, e.g. vigil-catalog or vigil-overview")],
    system: SystemOption = None,
    config: ConfigOption = None,
    out: Annotated[Path, typer.Option("--out", help="directory for the PNG and HTML")] = Path("preview"),
    minutes: Annotated[int, typer.Option(help="time range: the last N minutes")] = 30,
    prometheus_url: Annotated[str, typer.Option()] = "http://127.0.0.1:9090",
    elasticsearch_url: Annotated[str, typer.Option()] = "http://127.0.0.1:9200",
) -> None:
    """Render a dashboard to PNG and HTML from live data, without Grafana."""
    from vigil.dashboards.build import dashboards
    from vigil.dashboards.preview import render

    chosen = load(system, config)
    boards = {board["uid"]: board for board in _built(dashboards, chosen)}
    if uid not in boards:
        console.print(f"[red]unknown dashboard {uid!r}[/]; known: {', '.join(boards)}")
        raise typer.Exit(2)
    end = datetime.now(UTC)
    png, html = render(
        boards[uid],
        prometheus_url=prometheus_url,
        elasticsearch_url=elasticsearch_url,
        start=end - timedelta(minutes=minutes),
        end=end,
        out_dir=out,
        logs=chosen.telemetry.logs,
    )
    console.print(f"wrote {png} and {html}")


@app.command()
def push(
    grafana_url: Annotated[
        str, typer.Option("--grafana-url", envvar="VIGIL_GRAFANA_URL", help="e.g. http://grafana:3000")
    ],
    system: SystemOption = None,
    config: ConfigOption = None,
    token_file: Annotated[Path | None, typer.Option(help="file holding a service account token")] = None,
    user: Annotated[str | None, typer.Option(help="basic auth user (with --password-file)")] = None,
    password_file: Annotated[Path | None, typer.Option(help="file holding the basic auth password")] = None,
    message: Annotated[
        str, typer.Option(help="version message shown in Grafana's history")
    ] = "vigil dashboards push",
) -> None:
    """Upload every dashboard to a running Grafana (POST /api/dashboards/db into the vigil folder)."""
    import httpx

    from vigil.dashboards.build import dashboards
    from vigil.dashboards.grafana_api import GrafanaClient, GrafanaError, credentials
    from vigil.dashboards.grafana_api import push as push_all

    try:
        auth = credentials(token_file=token_file, user=user, password_file=password_file)
    except (ValueError, OSError) as error:
        console.print(f"[red]{escape(str(error))}[/]")
        raise typer.Exit(2) from None
    boards = _built(dashboards, load(system, config))
    client = GrafanaClient(grafana_url, auth=auth)
    try:
        pushed = push_all(client, boards, message=message)
    except (GrafanaError, httpx.HTTPError) as error:
        console.print(f"[red]push to {escape(grafana_url)} failed[/]: {escape(str(error))}")
        raise typer.Exit(1) from None
    finally:
        client.close()
    table = Table("uid", "title", "version", "url")
    for item in pushed:
        table.add_row(item.uid, item.title, str(item.version), f"{grafana_url.rstrip('/')}{item.url}")
    console.print(table)


def _built(make: Callable[[System], T], system: System) -> T:
    """What ``make`` builds for ``system``; a system the dashboards cannot be made for exits 2, named."""
    try:
        return make(system)
    except ValueError as error:  # e.g. a service whose dashboard uid is the overview's
        console.print(f"[red]{escape(str(error))}[/]", highlight=False)
        raise typer.Exit(2) from None


def _load(path: Path) -> dict[str, Any]:
    try:
        board: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        console.print(f"[red]{path}: not a dashboard JSON file[/] ({escape(str(error))})")
        raise typer.Exit(2) from None
    return board
