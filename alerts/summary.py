"""The incident summary a person reads: plain text for a phone, HTML with one plot per signal.

Both renderings come from one `Summary` of facts, computed once by `summarize`, so the text and the page
never disagree. Alert labels and annotations are untrusted (they come from rules and from the services'
own metric labels): the text flattens them to single bounded lines, the page is rendered with
autoescaping on and makes links clickable only for http(s) addresses.

The input is a small `IncidentView`, not the incident grouper's own class, so this module depends only on
the alert model; the grouper's incidents are turned into views by whoever renders them.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import jinja2
import numpy as np

from vigil.alerts.model import ALERTNAME, PAGE, SERVICE, SEVERITY, SIGNAL, Alert
from vigil.alerts.plot import FAULT_STARTED, RESOLVED, SLO_BROKE, VIGIL_FIRED, Marker, SeriesHistory, plot_png

__all__ = ["IncidentView", "Marker", "SeriesHistory", "Summary", "render_html", "render_text", "summarize"]

TOP_SIGNALS = 5  # a phone screen holds about this many before the links scroll away
FIRING = "firing"


@dataclass(frozen=True)
class IncidentView:
    """What the summary needs to know about an incident; times are unix seconds."""

    id: str
    title: str
    service: str
    severity: str  # PAGE or TICKET
    status: str  # "firing" or "resolved"
    opened_at: float  # when vigil fired
    resolved_at: float | None = None
    alerts: Sequence[Alert] = ()
    suspects: Sequence[str] = ()  # most likely cause first
    fault_started_at: float | None = None  # known in drills and backtests, rarely in production
    slo_broke_at: float | None = None

    def markers(self) -> list[Marker]:
        events = [
            (FAULT_STARTED, self.fault_started_at),
            (VIGIL_FIRED, self.opened_at),
            (SLO_BROKE, self.slo_broke_at),
            (RESOLVED, self.resolved_at),
        ]
        return [Marker(kind, at) for kind, at in events if at is not None]


@dataclass(frozen=True)
class SignalLine:
    name: str
    observed: str
    expected: str
    score: float | None


@dataclass(frozen=True)
class Link:
    label: str
    url: str

    @property
    def clickable(self) -> bool:  # anything else (javascript:, data:) stays text
        return self.url.lower().startswith(("https://", "http://"))


@dataclass(frozen=True)
class Summary:
    severity: str
    status: str
    service: str
    title: str
    since: str  # follows the status: 'for 12m (since 14:02 UTC)' or 'at 14:25 UTC after 23m (5m ago)'
    incident_id: str
    what: str  # the top alert's summary and description
    suspects: list[str]
    signals: list[SignalLine]
    more_signals: int
    breach: str  # '' when unknown
    links: list[Link]
    timeline: list[tuple[str, str]]  # (clock, what happened)
    lead: str  # how long before the SLO broke vigil fired, '' when unknown
    markers: list[Marker] = field(default_factory=list)


def summarize(incident: IncidentView, histories: Sequence[SeriesHistory], now: float) -> Summary:
    resolved = incident.resolved_at is not None and incident.resolved_at <= now
    if resolved and incident.resolved_at is not None:
        lasted = humanize(incident.resolved_at - incident.opened_at)
        ago = humanize(now - incident.resolved_at)
        since = f"at {clock(incident.resolved_at, now)} UTC after {lasted} ({ago} ago)"
    else:
        since = f"for {humanize(now - incident.opened_at)} (since {clock(incident.opened_at, now)} UTC)"
    alerts = sorted(incident.alerts, key=_rank, reverse=True)
    signals = _signals(alerts, histories, incident.service)
    what = next((_what(a) for a in alerts if _what(a)), "")
    return Summary(
        severity=one_line(incident.severity or "unknown", 20).upper(),
        status="RESOLVED" if resolved else one_line(incident.status or FIRING, 20).upper(),
        service=one_line(incident.service or "unknown service", 80),
        title=one_line(incident.title, 120),
        since=since,
        incident_id=one_line(incident.id, 40),
        what=what,
        suspects=_suspects(incident, alerts),
        signals=signals[:TOP_SIGNALS],
        more_signals=max(0, len(signals) - TOP_SIGNALS),
        breach="" if resolved else _breach(incident, alerts, now),
        links=_links(alerts),
        timeline=_timeline(incident.markers(), now),
        lead=_lead(incident),
        markers=incident.markers(),
    )


def render_text(incident: IncidentView, histories: Sequence[SeriesHistory], now: float) -> str:
    s = summarize(incident, histories, now)
    # The first line is what a phone's notification shows: severity, where, what, since when.
    lines = [f"[{s.severity}] {s.service}: {s.title} — {s.status} {s.since}", f"incident {s.incident_id}"]
    if s.what:
        lines += ["", s.what]
    lines.append("")
    lines.append(f"Likely cause: {', '.join(s.suspects)}" if s.suspects else "Likely cause: unknown yet")
    if s.breach:
        lines.append(s.breach)
    if s.signals:
        lines += ["", "Top signals:"]
        for signal in s.signals:
            lines += [f"• {signal.name}", f"  {_comparison(signal)}"]
        if s.more_signals:
            lines.append(f"  +{s.more_signals} more")
    if s.links:
        lines += ["", "Links:"] + [f"{link.label}: {link.url}" for link in s.links]
    lines += ["", "Timeline (UTC):"] + [f"{at}  {what}" for at, what in s.timeline]
    if s.lead:
        lines.append(s.lead)
    return "\n".join(lines) + "\n"


def render_html(incident: IncidentView, histories: Sequence[SeriesHistory], now: float) -> str:
    s = summarize(incident, histories, now)
    plots = [
        (h.label, base64.b64encode(plot_png(h, s.markers)).decode("ascii")) for h in histories
    ]  # one figure per history, embedded so the page needs nothing else
    return _TEMPLATE.render(s=s, plots=plots, page=s.severity == PAGE.upper(), comparison=_comparison)


# --- formatting helpers -------------------------------------------------------------------------------


def humanize(seconds: float) -> str:
    """A duration as a person says it: 45s, 12m, 2h 5m, 3d 4h."""
    if not math.isfinite(seconds):
        return "?"
    total = max(0, round(seconds))
    if total < 60:
        return f"{total}s"
    minutes = total // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def clock(t: float, now: float) -> str:
    """UTC time of day; with the date when it is not today's."""
    at, today = datetime.fromtimestamp(t, UTC), datetime.fromtimestamp(now, UTC)
    return at.strftime("%H:%M") if at.date() == today.date() else at.strftime("%b %d %H:%M")


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def one_line(text: str, limit: int) -> str:
    """Untrusted text flattened to one line of at most ``limit`` characters."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def number(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "?"


_DURATION = re.compile(
    r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?"
)


def seconds_of(text: str) -> float | None:
    """'480', '480.5', '8m', '1h30m' or '2d' as seconds; None when it is none of those."""
    text = text.strip().lower()
    try:
        value = float(text)
        return value if math.isfinite(value) else None
    except ValueError:
        pass
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        return None
    d, h, m, s = (float(g) if g else 0.0 for g in match.groups())
    return d * 86400 + h * 3600 + m * 60 + s


# --- facts -------------------------------------------------------------------------------------------


def _score(alert: Alert) -> float | None:
    try:
        value = float(alert.annotations.get("anomaly_score", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _rank(alert: Alert) -> float:
    score = _score(alert)
    return -1.0 if score is None else score  # alerts without a score after every scored one


def _what(alert: Alert) -> str:
    parts = [alert.annotations.get("summary", ""), alert.annotations.get("description", "")]
    return one_line(" — ".join(p for p in parts if p.strip()), 300)


def _signal_name(alert: Alert, service: str) -> str:
    """The signal and the labels that tell its series apart (the incident's service goes without saying)."""
    name = alert.labels.get(SIGNAL) or alert.name or "alert"
    implied = {ALERTNAME: "", SEVERITY: "", SIGNAL: "", SERVICE: service}
    extra = [
        f"{k}={v}" for k, v in sorted(alert.labels.items()) if k not in implied or implied[k] not in ("", v)
    ]
    return one_line(" ".join([name, *extra]), 100)


def _latest(history: SeriesHistory) -> tuple[str, str, float | None]:
    """(observed, expected, score) at the history's latest observed point."""
    data = history.columns()
    seen = np.flatnonzero(np.isfinite(data.observed))
    if seen.size == 0:
        return "", "", None
    i = int(seen[-1])
    unit = f" {history.unit}" if history.unit else ""
    observed = f"{number(data.observed[i])}{unit}"
    lower, upper, expected = data.lower[i], data.upper[i], data.expected[i]
    if math.isfinite(lower) and math.isfinite(upper):
        band = f"{number(lower)}\N{EN DASH}{number(upper)}{unit}"
    else:
        band = f"{number(expected)}{unit}" if math.isfinite(expected) else ""
    score = float(data.scores[i]) if math.isfinite(data.scores[i]) else None
    return observed, band, score


def _signals(alerts: Sequence[Alert], histories: Sequence[SeriesHistory], service: str) -> list[SignalLine]:
    by_alert = {h.fingerprint: h for h in histories if h.fingerprint}
    lines = []
    for alert in alerts:
        observed = one_line(alert.annotations.get("observed", ""), 40)
        expected = one_line(alert.annotations.get("expected_range", ""), 40)
        score = _score(alert)
        history = by_alert.get(alert.fingerprint)
        if history is not None and not (observed and expected and score is not None):
            h_observed, h_expected, h_score = _latest(history)
            observed, expected = observed or h_observed, expected or h_expected
            score = score if score is not None else h_score
        lines.append(SignalLine(_signal_name(alert, service), observed, expected, score))
    if not alerts:  # nothing alerted yet: what the histories show is all there is
        for history in histories:
            observed, expected, score = _latest(history)
            lines.append(SignalLine(one_line(history.label, 100), observed, expected, score))
        lines.sort(key=lambda line: line.score if line.score is not None else -1.0, reverse=True)
    return lines


def _comparison(signal: SignalLine) -> str:
    parts = [f"{signal.observed or '?'} vs expected {signal.expected or '?'}"]
    if signal.score is not None:
        parts.append(f"score {signal.score:.1f}")
    return " · ".join(parts)


def _suspects(incident: IncidentView, alerts: Sequence[Alert]) -> list[str]:
    named = list(incident.suspects) or [
        s for a in alerts for s in a.annotations.get("suspects", "").split(",") if s.strip()
    ]
    unique = dict.fromkeys(one_line(s, 60) for s in named)  # keeps the ranking order
    return list(unique)[:5]


def _breach(incident: IncidentView, alerts: Sequence[Alert], now: float) -> str:
    if incident.slo_broke_at is not None and incident.slo_broke_at <= now:
        ago = humanize(now - incident.slo_broke_at)
        return f"SLO broken since {clock(incident.slo_broke_at, now)} UTC ({ago} ago)"
    texts = [a.annotations.get("time_to_slo_breach", "").strip() for a in alerts if not a.resolved(now)]
    estimates = [v for v in (seconds_of(t) for t in texts if t) if v is not None]
    if estimates:
        return f"SLO breach in ~{humanize(min(estimates))} (estimated)"
    text = next((t for t in texts if t), "")
    return f"SLO breach: {one_line(text, 60)}" if text else ""


def _links(alerts: Sequence[Alert]) -> list[Link]:
    links: dict[tuple[str, str], Link] = {}
    for alert in alerts:
        for label, url in (
            ("Dashboard", alert.annotations.get("dashboard_url", "")),
            ("Runbook", alert.annotations.get("runbook_url", "")),
            ("Source", alert.generator_url),
        ):
            url = one_line(url, 500)
            if url:
                links.setdefault((label, url), Link(label, url))
    return sorted(links.values(), key=lambda link: ("Dashboard", "Runbook", "Source").index(link.label))


def _timeline(markers: Sequence[Marker], now: float) -> list[tuple[str, str]]:
    """(clock, event) in time order, each after the first with how long after the first it came."""
    ordered = sorted(markers, key=lambda m: m.at)
    return [
        (clock(m.at, now), m.kind if i == 0 else f"{m.kind} (+{humanize(m.at - ordered[0].at)})")
        for i, m in enumerate(ordered)
    ]


def _lead(incident: IncidentView) -> str:
    if incident.slo_broke_at is None:
        return ""
    gap = incident.slo_broke_at - incident.opened_at
    if gap >= 0:
        return f"vigil fired {humanize(gap)} before the SLO broke"
    return f"vigil fired {humanize(-gap)} after the SLO broke"


_TEMPLATE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ s.severity }} {{ s.status }} {{ s.service }}: {{ s.title }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 1rem auto; padding: 0 1rem; }
.badge { display: inline-block; padding: .1rem .5rem; border-radius: .3rem; color: #fff; font-weight: bold; }
.sev { background: {{ '#c0392b' if page else '#d68910' }}; } .status { background: #555; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: .25rem .5rem; }
tr:nth-child(even) { background: #f4f4f4; } img { max-width: 100%; height: auto; } .muted { color: #666; }
</style></head><body>
<p><span class="badge sev">{{ s.severity }}</span> <span class="badge status">{{ s.status }}</span>
<strong>{{ s.service }}</strong></p>
<h1>{{ s.title }}</h1>
<p class="muted">{{ s.status | lower }} {{ s.since }} · incident {{ s.incident_id }}</p>
{% if s.what %}<p>{{ s.what }}</p>{% endif %}
<p><strong>Likely cause:</strong> {{ s.suspects | join(', ') if s.suspects else 'unknown yet' }}</p>
{% if s.breach %}<p><strong>{{ s.breach }}</strong></p>{% endif %}
{% if s.signals %}<h2>Top signals</h2>
<table><tr><th>signal</th><th>observed vs expected</th></tr>
{% for signal in s.signals %}<tr><td>{{ signal.name }}</td><td>{{ comparison(signal) }}</td></tr>
{% endfor %}</table>
{% if s.more_signals %}<p class="muted">+{{ s.more_signals }} more</p>{% endif %}{% endif %}
{% if s.links %}<h2>Links</h2><ul>
{% for link in s.links %}<li>{{ link.label }}:
{% if link.clickable %}<a href="{{ link.url }}">{{ link.url }}</a>{% else %}{{ link.url }}{% endif %}</li>
{% endfor %}</ul>{% endif %}
<h2>Timeline (UTC)</h2><ul>
{% for at, what in s.timeline %}<li>{{ at }} {{ what }}</li>
{% endfor %}</ul>
{% if s.lead %}<p>{{ s.lead }}</p>{% endif %}
{% for label, png in plots %}<figure><img alt="{{ label }}" src="data:image/png;base64,{{ png }}">
<figcaption>{{ label }}</figcaption></figure>
{% endfor %}
</body></html>
"""
)
