"""The incident summary: what on-call needs, in text, PNG and HTML, whatever data is missing."""

from __future__ import annotations

import base64
import dataclasses
import io
import re
from html.parser import HTMLParser

import matplotlib.image
import numpy as np
import pytest

from vigil.alerts.model import Alert
from vigil.alerts.plot import SIZE_PIXELS, SLO_BROKE, VIGIL_FIRED, Marker, plot_png
from vigil.alerts.summary import IncidentView, SeriesHistory, humanize, render_html, render_text, seconds_of

NOW = 1_760_000_000.0  # 2025-10-09 08:53:20 UTC
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def latency_alert(**annotations: str) -> Alert:
    base = {
        "summary": "Checkout p99 latency far above normal",
        "anomaly_score": "4.2",
        "observed": "0.8 s",
        "expected_range": "0.15-0.25 s",
        "time_to_slo_breach": "480",
        "suspects": "payments, inventory-db",
        "dashboard_url": "http://127.0.0.1:3000/d/gateway",
        "runbook_url": "https://runbooks.example/gateway-latency",
    }
    labels = {
        "alertname": "VigilAnomaly",
        "service": "gateway",
        "severity": "page",
        "signal": "latency_p99",
        "route": "/api/checkout",
    }
    return Alert(labels, base | annotations, starts_at=NOW - 600, generator_url="http://127.0.0.1:9090/graph")


def incident(alerts: list[Alert] | None = None, **changes: object) -> IncidentView:
    view = IncidentView(
        id="a1b2c3",
        title="Checkout latency high",
        service="gateway",
        severity="page",
        status="firing",
        opened_at=NOW - 600,
        alerts=[latency_alert()] if alerts is None else alerts,
        suspects=["payments", "inventory-db"],
    )
    return dataclasses.replace(view, **changes)


def history(n: int = 120, *, band: bool = True, scores: bool = True, fingerprint: str = "") -> SeriesHistory:
    times = NOW - 30.0 * np.arange(n)[::-1]
    expected = 0.2 + 0.02 * np.sin(times / 300)
    observed = expected.copy()
    observed[-20:] += np.linspace(0.0, 0.6, 20)[: min(n, 20)] if n >= 20 else 0.0
    observed[n // 3 : n // 3 + 5] = np.nan  # a scrape gap
    return SeriesHistory(
        label="latency_p99 route=/api/checkout",
        times=times,
        observed=observed,
        expected=expected if band else None,
        lower=expected - 0.05 if band else None,
        upper=expected + 0.05 if band else None,
        scores=np.abs(observed - expected) / 0.15 if scores else None,
        unit="s",
        fingerprint=fingerprint,
    )


# --- text -------------------------------------------------------------------------------------------


def test_text_has_the_key_facts() -> None:
    text = render_text(incident(), [history()], NOW)
    headline = text.splitlines()[0]
    for fact in ("PAGE", "gateway", "Checkout latency high", "FIRING", "10m", "08:43 UTC"):
        assert fact in headline
    assert "Likely cause: payments, inventory-db" in text
    assert "0.8 s vs expected 0.15-0.25 s · score 4.2" in text
    assert "SLO breach in ~8m (estimated)" in text
    assert "Dashboard: http://127.0.0.1:3000/d/gateway" in text
    assert "Runbook: https://runbooks.example/gateway-latency" in text
    assert "Source: http://127.0.0.1:9090/graph" in text
    assert "08:43  vigil fired" in text


def test_resolved_incident_says_when_and_how_long_and_drops_the_breach_estimate() -> None:
    view = incident(
        status="resolved", resolved_at=NOW - 60, slo_broke_at=NOW - 300, fault_started_at=NOW - 720
    )
    text = render_text(view, [], NOW)
    assert "RESOLVED at 08:52 UTC after 9m (1m ago)" in text.splitlines()[0]
    assert "estimated" not in text
    timeline = text[text.index("Timeline") :].splitlines()[1:]
    assert timeline == [
        "08:41  fault started",
        "08:43  vigil fired (+2m)",
        "08:48  SLO broke (+7m)",
        "08:52  resolved (+11m)",
        "vigil fired 5m before the SLO broke",
    ]


def test_broken_slo_is_reported_instead_of_an_estimate() -> None:
    text = render_text(incident(slo_broke_at=NOW - 120), [], NOW)
    assert "SLO broken since 08:51 UTC (2m ago)" in text
    assert "estimated" not in text


def test_the_soonest_breach_of_the_still_firing_alerts_counts() -> None:
    alerts = [
        latency_alert(time_to_slo_breach="1h30m"),
        dataclasses.replace(latency_alert(time_to_slo_breach="20m"), labels={"signal": "errors"}),
        dataclasses.replace(latency_alert(time_to_slo_breach="60"), labels={"signal": "x"}, ends_at=NOW - 1),
    ]
    assert "SLO breach in ~20m (estimated)" in render_text(incident(alerts), [], NOW)


@pytest.mark.parametrize(
    "histories",
    [
        [],
        [history(band=False)],
        [history(scores=False)],
        [history(band=False, scores=False)],
        [SeriesHistory("empty", [], [])],
        [SeriesHistory("all NaN", [NOW - 60, NOW], [np.nan, np.nan])],
    ],
    ids=["no history", "no band", "no scores", "observed only", "empty", "all NaN"],
)
@pytest.mark.parametrize(
    "alerts", [[], [Alert({"alertname": "VigilAnomaly"})]], ids=["no alerts", "bare alert"]
)
def test_partial_data_renders(histories: list[SeriesHistory], alerts: list[Alert]) -> None:
    view = IncidentView("x", "", "", "", "", opened_at=NOW - 5, alerts=alerts)
    text = render_text(view, histories, NOW)
    assert "Likely cause: unknown yet" in text
    assert "vigil fired" in text
    html = render_html(view, histories, NOW)
    assert html.count("<img ") == len(histories)


def test_missing_annotations_fall_back_on_the_alerts_history() -> None:
    alert = Alert({"alertname": "VigilAnomaly", "service": "gateway", "signal": "latency_p99"})
    series = history(fingerprint=alert.fingerprint)
    text = render_text(incident([alert], suspects=[]), [series], NOW)
    last = series.columns()
    observed, expected = last.observed[-1], last.expected[-1]
    assert f"{observed:.3g} s vs expected {expected - 0.05:.3g}\N{EN DASH}{expected + 0.05:.3g} s" in text
    assert f"score {last.scores[-1]:.1f}" in text


def test_without_alerts_the_histories_are_the_signals_worst_first() -> None:
    calm = dataclasses.replace(history(), label="calm", scores=np.zeros(120))
    text = render_text(incident([]), [calm, history()], NOW)
    signals = text[text.index("Top signals") :]
    assert signals.index("latency_p99") < signals.index("calm")


def test_signals_are_ranked_by_score_and_capped() -> None:
    alerts = [
        dataclasses.replace(latency_alert(anomaly_score=str(score)), labels={"signal": f"s{score}"})
        for score in (1.5, 9.0, 2.0, 3.0, 1.1, 7.0, 1.2)
    ]
    text = render_text(incident(alerts), [], NOW)
    names = re.findall(r"^• (s[\d.]+)$", text, flags=re.MULTILINE)
    assert names == ["s9.0", "s7.0", "s3.0", "s2.0", "s1.5"]
    assert "+2 more" in text


def test_suspects_come_from_the_annotations_when_the_incident_has_none() -> None:
    text = render_text(incident(suspects=[]), [], NOW)
    assert "Likely cause: payments, inventory-db" in text


def test_untrusted_text_cannot_forge_lines() -> None:
    alert = latency_alert(summary="fine\n[PAGE] other: fake headline\r\n", observed="1\n2")
    text = render_text(incident([alert]), [], NOW)
    assert not any(line.startswith("[PAGE] other") for line in text.splitlines())
    assert "fine [PAGE] other: fake headline" in text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (44.6, "45s"), (60, "1m"), (719, "11m"), (3600, "1h"), (7500, "2h 5m"), (90000, "1d 1h")],
)
def test_humanize(seconds: float, text: str) -> None:
    assert humanize(seconds) == text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("480", 480.0), ("8m", 480.0), ("1h30m", 5400.0), ("2d", 172800.0), ("soon", None), ("", None)],
)
def test_seconds_of(text: str, seconds: float | None) -> None:
    assert seconds_of(text) == seconds


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="lower"):
        SeriesHistory("bad", [1.0, 2.0], [1.0, 2.0], lower=[1.0]).columns()


# --- PNG --------------------------------------------------------------------------------------------


def decode(png: bytes) -> np.ndarray:
    assert png.startswith(PNG_MAGIC)
    return np.asarray(matplotlib.image.imread(io.BytesIO(png), format="png"))


MARKERS = [Marker(VIGIL_FIRED, NOW - 600), Marker(SLO_BROKE, NOW - 120)]


@pytest.mark.parametrize(
    "series",
    [
        history(),
        history(band=False),
        history(scores=False),
        history(n=1),
        SeriesHistory("with infinities", [NOW - 60, NOW], [np.inf, 1.0], scores=[np.inf, 2.0]),
        SeriesHistory("empty", [], []),
        SeriesHistory("all NaN", [NOW - 60, NOW], [np.nan, np.nan]),
        None,
    ],
    ids=["full", "no band", "no scores", "one point", "infinities", "empty", "all NaN", "none"],
)
def test_png_is_valid_and_always_the_same_size(series: SeriesHistory | None) -> None:
    width, height = SIZE_PIXELS
    assert decode(plot_png(series, MARKERS)).shape[:2] == (height, width)


def test_png_is_deterministic() -> None:
    assert plot_png(history(), MARKERS) == plot_png(history(), MARKERS)


def test_no_data_figure_is_mostly_blank_and_a_plot_is_not() -> None:
    def blank_share(png: bytes) -> float:
        return float(np.mean(np.all(decode(png)[..., :3] > 0.95, axis=-1)))

    assert blank_share(plot_png(SeriesHistory("empty", [], []), MARKERS)) > 0.97
    assert blank_share(plot_png(history(), MARKERS)) < 0.9


# --- HTML -------------------------------------------------------------------------------------------


class Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.hrefs: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        if tag == "img":
            self.sources.append(values.get("src") or "")
        if tag == "a":
            self.hrefs.append(values.get("href") or "")


def test_html_escapes_alert_text_and_embeds_one_image_per_history() -> None:
    hostile = latency_alert(
        summary="<script>alert('x')</script>", dashboard_url="javascript:alert(1)", observed='"><img src=x>'
    )
    histories = [history(), history(band=False), SeriesHistory("empty", [], [])]
    html = render_html(incident([hostile]), histories, NOW)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html

    page = Images()
    page.feed(html)
    assert "script" not in page.tags
    assert len(page.sources) == len(histories)  # the injected <img src=x> stayed text
    for source in page.sources:
        prefix = "data:image/png;base64,"
        assert source.startswith(prefix)  # no external assets
        width, height = SIZE_PIXELS
        assert decode(base64.b64decode(source[len(prefix) :])).shape[:2] == (height, width)
    assert "javascript:alert(1)" not in page.hrefs
    assert "https://runbooks.example/gateway-latency" in page.hrefs
    assert "Checkout latency high" in html
    assert "SLO breach in ~8m (estimated)" in html
