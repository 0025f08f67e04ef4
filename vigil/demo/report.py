"""The demo's verdict on the terminal, and its report folder: ``report.md``, ``outcome.json``, PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from vigil.collectors.prometheus_client import PrometheusClient
from vigil.demo import plots
from vigil.demo.outcome import Outcome
from vigil.demo.run import Recording
from vigil.demo.timeline import clock
from vigil.demo_marketplace.catalog import SYSTEM
from vigil.stack.settings import StackSettings


def when(outcome: Outcome, at: float | None) -> str:
    """``+01:40 (40 s after the fault began)`` or ``never``."""
    if at is None:
        return "never"
    after = outcome.relative(at)
    since = "the fault began" if outcome.fault_start is not None else "the run began"
    return f"{clock(at, outcome.started)} ({after:+.0f} s after {since})"


def lead(seconds: float | None, what: str) -> str:
    if seconds is None:
        return f"- ({what} never came)"
    return f"{abs(seconds):.0f} s {'before' if seconds >= 0 else 'after'} {what}"


def rows(outcome: Outcome) -> list[tuple[str, str]]:
    table = []
    if outcome.fault is not None:
        table.append(
            ("fault", f"{outcome.fault} on {outcome.culprit}, from {when(outcome, outcome.fault_start)}")
        )
    else:
        table.append(("fault", "none: a fault-free Black Friday surge"))
    table += [
        ("vigil alerted", when(outcome, outcome.vigil_alert)),
        (f"SLO {outcome.slo} broke", when(outcome, outcome.slo_breach)),
        ("static threshold rule", when(outcome, outcome.static_alert)),
        ("SRE burn-rate alert", when(outcome, outcome.burn_rate_alert)),
    ]
    if outcome.vigil_alert is not None:
        table += [
            ("vigil's lead", lead(outcome.lead_vs_breach, "the SLO breach")),
            ("", lead(outcome.lead_vs_static, "the static rule")),
            ("", lead(outcome.lead_vs_burn_rate, "the burn-rate alert")),
            ("first alert", f"{outcome.vigil_alert_signal} on {outcome.vigil_alert_service}"),
            (
                "likely cause named",
                f"{outcome.likely_cause or outcome.vigil_alert_service} "
                f"({'right' if outcome.culprit_named else 'wrong'}: the fault was in {outcome.culprit})",
            ),
        ]
    if outcome.notifications:
        counts = outcome.notifications
        table.append(
            (
                "notifications",
                f"{sum(counts.values())} in {len(counts)} group(s), at most {max(counts.values())} per group",
            )
        )
    table.append(
        (
            "false alerts",
            str(len(outcome.false_alerts))
            + (
                ""
                if not outcome.false_alerts
                else ": " + ", ".join(f"{a['signal']} on {a['service']}" for a in outcome.false_alerts)
            ),
        )
    )
    return table


def summary(outcome: Outcome) -> RenderableType:
    table = Table(title=f"vigil demo: {outcome.scenario}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for name, value in rows(outcome):
        table.add_row(name, value)
    verdict = Text()
    if outcome.fault is not None and outcome.vigil_alert is not None and (outcome.lead_vs_breach or -1) > 0:
        verdict.append("vigil warned before customers felt it.", style="bold green")
    elif outcome.fault is not None and outcome.vigil_alert is not None and outcome.slo_breach is None:
        verdict.append("vigil warned; the SLO never broke in this run.", style="bold green")
    elif outcome.fault is None and not outcome.false_alerts:
        verdict.append("no alerts through the surge: nothing to page about.", style="bold green")
    else:
        verdict.append("vigil was not ahead this time; see the report.", style="bold yellow")
    return Group(table, verdict)


def write_report(recording: Recording, outcome: Outcome, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "outcome.json").write_text(json.dumps(outcome.to_json(), indent=2, sort_keys=True) + "\n")
    settings = StackSettings()
    slo = next(s for s in SYSTEM.slos if s.name == outcome.slo)
    with PrometheusClient(settings.prometheus_url) as prometheus:
        images = plots.render(prometheus, outcome, slo, folder)
    scenario = recording.scenario
    lines = [
        f"# vigil demo: {scenario.name}",
        "",
        scenario.story[0].upper() + scenario.story[1:] + ".",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows(outcome)),
        "",
        "Times are from the start of the load (`+mm:ss`). vigil's alert time is when Alertmanager first",
        "listed it; the SLO breach and both baselines are evaluated on the data Prometheus recorded",
        "(static rule: the SLO's 1-minute SLI past its limit for 1 minute for latency, at once for",
        "errors; burn rate: the generated multi-window rules with their own windows and `for`).",
        "",
        *(f"![{image.stem}]({image.name})" for image in images),
        "",
        "## Timeline",
        "",
        *(f"- `{clock(e.at, recording.started)}` **{e.kind}** {e.text}" for e in recording.events),
        "",
    ]
    report = folder / "report.md"
    report.write_text("\n".join(lines))
    return report
