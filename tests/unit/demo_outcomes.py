"""A recorded demo run's outcome, for the tests of what is computed and shown from it."""

from __future__ import annotations

from dataclasses import replace

from vigil.demo.outcome import Outcome


def outcome(**changes: object) -> Outcome:
    base = Outcome(
        scenario="latency",
        fault="catalog-slow-sql",
        culprit="catalog",
        slo="browse-latency",
        started=1000.0,
        ended=1600.0,
        fault_start=1270.0,
        fault_end=1510.0,
        slo_breach=1400.0,
        static_alert=1460.0,
        burn_rate_alert=None,
        burn_rate_rule=None,
        vigil_alert=1300.0,
        vigil_alert_service="catalog",
        vigil_alert_signal="db_p99_seconds",
        likely_cause="catalog",
    )
    return replace(base, **changes)  # type: ignore[arg-type]
