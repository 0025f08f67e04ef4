"""The demo's live panel and summary render what the run saw."""

from __future__ import annotations

from rich.console import Console

from tests.unit.demo_outcomes import outcome
from vigil.demo.report import summary
from vigil.demo.timeline import clock, status_table, view
from vigil.demo.watch import Event, Snapshot
from vigil.demo_marketplace.catalog import SYSTEM


def rendered(renderable: object) -> str:
    console = Console(record=True, width=140, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_live_panel_shows_load_slos_scores_and_the_latest_events() -> None:
    slos = SYSTEM.slos
    snapshot = Snapshot(
        at=1130.0,
        rps=52.4,
        slis={"browse-latency": 0.318, "error-ratio": 0.002},
        scores=[("db_p99_seconds catalog", 3.2), ("http_request_rate gateway", 0.1)],
        open_incidents=1,
    )
    table = status_table(snapshot, started=1000.0, phase="5x peak", users=100, slos=slos, fault="acting")
    events = [Event(1100.0, "fault", "fault catalog-slow-sql begins"), Event(1125.0, "breach", "SLO broken")]
    text = rendered(view("vigil demo: latency", table, events, started=1000.0))
    assert "5x peak: 100 users, storefront 52.4 req/s" in text
    assert "p99 318 ms (limit 300 ms)" in text
    assert "0.20% failing (limit 1%)" in text
    assert "3.20  db_p99_seconds catalog" in text
    assert "+01:40  fault" in text
    assert "+02:05  breach" in text
    assert clock(1000.0 + 3725, 1000.0) == "+62:05"


def test_the_summary_says_when_vigil_alerted_and_the_slo_broke() -> None:
    backlog = outcome(
        scenario="backlog",
        fault="warehouse-stall",
        culprit="warehouse",
        slo="fulfilment-delay",
        fault_start=1240.0,
        vigil_alert_service="warehouse",
        vigil_alert_signal="fulfilment_delay_p99_seconds",
        likely_cause="warehouse",
    )
    text = rendered(summary(backlog))
    assert "warehouse-stall on warehouse, from +04:00" in text
    assert "+05:00 (+60 s after the fault began)" in text
    assert "100 s before the SLO breach" in text
    assert "160 s before the static rule" in text
    assert "(the burn-rate alert never came)" in text
    assert "warehouse (right: the fault was in warehouse)" in text
    assert "vigil warned before customers felt it." in text
