"""``vigil alerts``: vigil's alerts in Alertmanager; ``vigil alerts silence`` mutes them for a while."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from vigil.console import console
from vigil.system_cli import load_or_exit

if TYPE_CHECKING:
    from vigil.alerts.alertmanager import AlertmanagerClient

app = typer.Typer(
    help="vigil's alerts: Alertmanager config and Prometheus rules for a system; silences.",
    no_args_is_help=True,
)
silence_app = typer.Typer(
    help="Mute matching alerts in Alertmanager for a while; a later --start plans a maintenance window.",
    no_args_is_help=True,
)
app.add_typer(silence_app, name="silence")

AlertmanagerUrls = Annotated[
    list[str] | None,
    typer.Option(
        "--alertmanager-url",
        envvar="VIGIL_ALERTMANAGER_URL",
        help="Alertmanager (repeat for an HA pair); default: the local stack's",
    ),
]


def client(urls: list[str] | None) -> AlertmanagerClient:
    """A client for ``urls``, or for the local stack's Alertmanager."""
    from vigil.alerts.alertmanager import AlertmanagerClient
    from vigil.stack.settings import StackSettings

    if not urls:
        settings = StackSettings()
        urls = [f"http://{settings.host}:{settings.alertmanager_port}"]
    return AlertmanagerClient(urls)


def _at(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _fail(what: str, error: Exception) -> typer.Exit:
    console.print(f"[red]{what}: {escape(str(error))}[/]")
    return typer.Exit(1)


@silence_app.command("add")
def add(
    matchers: Annotated[
        list[str],
        typer.Option("--matcher", "-m", help="name=value, name!=value, name=~regex or name!~regex"),
    ],
    comment: Annotated[str, typer.Option(help="why: the next person on call reads it")],
    duration: Annotated[str, typer.Option("--for", help="how long, e.g. 30m, 2h, 1h30m")] = "1h",
    start: Annotated[str, typer.Option(help="now, +2h, ISO 8601 (UTC); later: maintenance")] = "now",
    author: Annotated[str | None, typer.Option(help="default: $VIGIL_USER or the login name")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the silence id")] = False,
    alertmanager_url: AlertmanagerUrls = None,
) -> None:
    """Silence the alerts matching every --matcher."""
    from vigil.alerts.alertmanager import AlertmanagerError
    from vigil.alerts.silences import add_silence, plan_silence

    try:
        silence = plan_silence(
            matchers, now=time.time(), duration=duration, comment=comment, start=start, author=author
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    with client(alertmanager_url) as am:
        try:
            silence_id = add_silence(am, silence)
        except AlertmanagerError as error:
            raise _fail("silence not created", error) from error
    if quiet:
        typer.echo(silence_id)
        return
    what = ", ".join(escape(str(m)) for m in silence.matchers)
    window = f"from {_at(silence.starts_at)} until {_at(silence.ends_at)}"
    console.print(f"silence [bold]{silence_id}[/] mutes {what} {window}")


@silence_app.command("list")
def list_(
    show_all: Annotated[bool, typer.Option("--all", help="expired silences too")] = False,
    matchers: Annotated[
        list[str] | None, typer.Option("--matcher", "-m", help="only silences that mute these labels")
    ] = None,
    alertmanager_url: AlertmanagerUrls = None,
) -> None:
    """Active and pending (maintenance window) silences, soonest ending first."""
    from vigil.alerts.alertmanager import AlertmanagerError
    from vigil.alerts.silences import STATES, Matcher, list_silences

    try:
        wanted = [str(Matcher.parse(m)) for m in matchers or []]
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    states = STATES if show_all else ("active", "pending")
    with client(alertmanager_url) as am:
        try:
            silences = list_silences(am, states=states, filter=wanted)
        except AlertmanagerError as error:
            raise _fail("cannot list silences", error) from error
    table = Table("id", "state", "matchers", "starts", "ends", "by", "comment")
    for s in silences:
        matched = escape(" ".join(str(m) for m in s.matchers))
        table.add_row(s.id, s.state, matched, _at(s.starts_at), _at(s.ends_at), s.created_by, s.comment)
    console.print(table)


@silence_app.command("expire")
def expire(
    silence_ids: Annotated[list[str], typer.Argument(help="ids from `vigil alerts silence list`")],
    alertmanager_url: AlertmanagerUrls = None,
) -> None:
    """End silences now: their alerts notify again."""
    from vigil.alerts.alertmanager import AlertmanagerError
    from vigil.alerts.silences import expire_silence

    failed = False
    with client(alertmanager_url) as am:
        for silence_id in silence_ids:
            try:
                expire_silence(am, silence_id)
            except AlertmanagerError as error:
                console.print(f"[red]{escape(silence_id)}: {escape(str(error))}[/]")
                failed = True
            else:
                console.print(f"expired {silence_id}")
    if failed:
        raise typer.Exit(1)


SystemOption = Annotated[Path, typer.Option("--system", help="the system file (YAML) to generate for")]


@app.command("config")
def alertmanager_config(
    system: SystemOption,
    secret_file: Annotated[
        Path | None,
        typer.Option(
            help="the secret vigil's webhook expects (absolute); else $VIGIL_ALERTS_VIGIL_SECRET_FILE"
        ),
    ] = None,
    vigil_url: Annotated[
        str | None, typer.Option(help="vigil's webhook; else $VIGIL_ALERTS_VIGIL_URL or the local default")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="file to write; default: stdout")] = None,
) -> None:
    """Alertmanager's configuration for a system: routes by severity, then team and service; inhibitions.

    Channels (Slack, PagerDuty, email, per team or service) come from VIGIL_ALERTS_* variables.
    """
    import os

    from pydantic import ValidationError

    from vigil.alerts.alertmanager_config import WEBHOOK_PATH, ReceiverSettings, build_config, render

    given: dict[str, object] = {}
    if secret_file is not None:
        given["vigil_secret_file"] = secret_file.expanduser().resolve()
    if vigil_url is not None:
        given["vigil_url"] = vigil_url
    elif "VIGIL_ALERTS_VIGIL_URL" not in os.environ:
        given["vigil_url"] = "http://127.0.0.1:9400" + WEBHOOK_PATH
    try:
        settings = ReceiverSettings(**given)
        text = render(build_config(settings, system=load_or_exit(system)))
    except (ValidationError, ValueError) as error:
        raise _fail("alertmanager config", error) from error
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        console.print(f"wrote {out}")


@app.command("rules")
def prometheus_rules(
    system: SystemOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for the rule files")] = Path("rules"),
    mirror_anomalies: Annotated[
        bool,
        typer.Option(
            help="also alert on vigil_anomaly_score in Prometheus, for setups where vigil does not send "
            "alerts itself (with it, every anomaly would be raised twice)"
        ),
    ] = False,
) -> None:
    """Prometheus rules for a system: SLO recording rules and multi-window burn-rate alerts, and queue
    backlog alerts (check them with `promtool check rules`)."""
    from vigil.alerts.prometheus_rules import RuleGenerationError, rule_files, write_rules

    try:
        written = write_rules(out, rule_files(load_or_exit(system), mirror_anomalies=mirror_anomalies))
    except RuleGenerationError as error:
        raise _fail("rules", error) from error
    for path in written:
        console.print(f"wrote {path}")
