"""Blocks several dashboards share: a service's SLOs, vigil's scores and bands, incidents, logs."""

from __future__ import annotations

from vigil.dashboards import panels as p
from vigil.dashboards import promql as q
from vigil.system import SLO
from vigil.system.telemetry import LogTelemetry

PAGE_BURN_RATE = 14.4  # the fast-burn page of the SRE workbook (1h/5m windows), as in the alert rules
# Two vigil replicas briefly score the same series while shards move; show it once.
ONE_PER_SERIES = "max without (instance, instance_name, job)"


def slo_section(slos: list[SLO]) -> p.Section:
    """One service's SLOs from the recorded series, which label the SLO's service ``service`` whatever
    the system's own service label is."""
    owner = {"service": slos[0].service}
    return p.Section(
        "Service level objectives",
        [
            p.timeseries(
                title="SLI: good events (5m)",
                description="Share of good events per SLO over 5 minutes: "
                + "; ".join(f"{slo.name}: {slo.description or slo.kind}" for slo in slos),
                unit="percentunit",
                targets=[p.prom(f"1 - {q.selector('slo:sli_error:ratio_rate5m', owner)}", "{{slo}}")],
                threshold=min(slo.objective for slo in slos),
                width=12,
            ),
            p.timeseries(
                title="Error budget burn rate (1h)",
                description=f"How fast each SLO spends its error budget; {PAGE_BURN_RATE}x for 1h pages.",
                unit="short",
                targets=[
                    p.prom(
                        f"{q.selector('slo:sli_error:ratio_rate1h', owner)}"
                        f" / {q.selector('slo:error_budget:ratio', owner)}",
                        "{{slo}}",
                    )
                ],
                threshold=PAGE_BURN_RATE,
                width=12,
            ),
        ],
    )


def open_incidents(series: str, description: str, *, width: int = 8) -> p.Sized:
    """How many incidents ``series`` (a ``vigil_incident_open`` selector) counts as open; 0, not blank."""
    return p.stat(
        title="Open incidents",
        description=description,
        unit="none",
        targets=[p.prom(f"count(count by (incident) ({series})) or vector(0)", "open")],
        thresholds=(("green", None), ("red", 1)),
        width=width,
        height=8,
    )


def band(variable: str, matchers: str, legend: str) -> p.Sized:
    """Observed against the expected band, one panel per value of ``variable`` (a signal); ``legend`` names
    the labels that tell a signal's series apart (may be empty)."""
    prefix = f"{legend} " if legend else ""
    dashed = {
        "matcher": {"id": "byRegexp", "options": "/expected/"},
        "properties": [
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            {"id": "color", "value": {"mode": "fixed", "fixedColor": "text"}},
        ],
    }
    return p.timeseries(
        title=f"${variable}: observed vs expected",
        description="The signal as vigil saw it and the band its detector expected; outside it scores high.",
        unit="short",
        targets=[
            p.prom(f"{ONE_PER_SERIES} (vigil_observed{{{matchers}}})", f"{prefix}observed"),
            p.prom(f"{ONE_PER_SERIES} (vigil_expected_lower{{{matchers}}})", f"{prefix}expected low"),
            p.prom(f"{ONE_PER_SERIES} (vigil_expected_upper{{{matchers}}})", f"{prefix}expected high"),
        ],
        overrides=[dashed],
        repeat=variable,
    )


def logs_section(logs: LogTelemetry, service: str) -> p.Section:
    """The service's warnings and errors, in the system's log field names (ECS unless it says otherwise)."""
    own = f"{logs.service_field}:{q.quote(service)}"
    level = logs.level_field
    return p.Section(
        "Logs (Elasticsearch)",
        [
            p.timeseries(
                title="Warnings and errors logged",
                description=f"Log lines at warning level or above from {service}, per level.",
                unit="short",
                targets=[p.log_counts(f"{own} AND {level}:(warning OR error OR critical)", split_by=level)],
                bars=True,
                stack=True,
                width=24,
                height=6,
            ),
            p.logs(
                title="Recent errors",
                description=f"The newest error lines logged by {service} (from every replica).",
                targets=[p.log_lines(f"{own} AND {level}:(error OR critical)")],
            ),
        ],
    )
