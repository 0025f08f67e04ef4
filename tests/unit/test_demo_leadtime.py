"""The demo's judgement: when rules fire on recorded data, lead times, culprits, scenario checks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.unit.demo_outcomes import outcome
from vigil.demo.leadtime import breach_rule, burn_rate_rules, first_firing, limit, parse_for, sli, static_rule
from vigil.demo.outcome import explained_by
from vigil.demo.scenarios import SCENARIOS, Phases, scenario
from vigil.demo.watch import SeenAlert
from vigil.demo_marketplace.catalog import SYSTEM

SLOS = {s.name: s for s in SYSTEM.slos}


def test_a_rule_fires_once_its_condition_held_for_its_for_duration() -> None:
    times = [100.0 + 5 * i for i in range(30)]
    assert first_firing(times, start=0, for_s=0) == 100.0
    assert first_firing(times, start=0, for_s=60) == 160.0
    assert first_firing(times, start=130, for_s=0) is None  # it already held: not caused by what began at 130
    assert first_firing([*times, 300.0, 305.0], start=130, for_s=5) == 305.0  # a new streak after it
    assert first_firing(times, start=0, for_s=1000) is None
    assert first_firing([], start=0, for_s=0) is None


def test_a_missed_evaluation_starts_the_for_duration_over() -> None:
    held = [0.0, 5.0, 10.0, 15.0, 30.0, 35.0, 40.0, 45.0, 50.0]  # 20 and 25 missing: the condition broke
    assert first_firing(held, start=0, for_s=15) == 15.0
    assert first_firing(held, start=0, for_s=20) == 50.0


def test_the_slis_are_p99_latency_and_the_failing_share() -> None:
    checkout, errors = SLOS["checkout-latency"], SLOS["error-ratio"]
    assert sli(checkout).startswith("histogram_quantile(0.99, sum by (le)")
    assert 'route="/api/checkout"' in sli(checkout)
    assert limit(checkout) == 0.5
    assert limit(errors) == pytest.approx(0.01)
    assert "5xx" in sli(errors)
    assert breach_rule(checkout).for_s == 0
    assert static_rule(checkout).for_s == 60  # "p99 > 500 ms for 1 min"
    assert static_rule(errors).for_s == 0  # "error ratio > 1%"


def test_the_burn_rate_baseline_is_the_generated_rules() -> None:
    rules = burn_rate_rules(SLOS["error-ratio"])
    assert [r.name for r in rules] == ["burn rate 1h/5m 14.4x", "burn rate 6h/30m 6x", "burn rate 3d/6h 1x"]
    assert all(r.for_s == 120 for r in rules)
    assert "slo:sli_error:ratio_rate1h" in rules[0].expr
    assert parse_for("2m") == 120
    assert parse_for("90s") == 90


def test_leads_are_positive_when_vigil_was_earlier() -> None:
    o = outcome()
    assert o.lead_vs_breach == 100
    assert o.lead_vs_static == 160
    assert o.lead_vs_burn_rate is None  # the burn-rate alert never fired: nothing to compare with
    assert outcome(vigil_alert=1450.0).lead_vs_breach == -50
    assert o.relative(o.vigil_alert) == 30
    assert o.to_json()["after_fault_start_s"]["slo_breach"] == 130


def test_the_culprit_is_the_incidents_likely_cause_else_the_alerts_service() -> None:
    assert outcome().culprit_named is True
    assert outcome(likely_cause="gateway").culprit_named is False
    assert outcome(likely_cause=None, vigil_alert_service="catalog").culprit_named is True
    assert outcome(vigil_alert=None).culprit_named is None


def test_every_scenario_is_consistent_with_the_fault_catalogue_and_the_slos() -> None:
    for story in SCENARIOS.values():
        story.check()
        assert story.slo in SLOS
    assert scenario("surge").fault is None
    assert scenario("surge").culprit is None
    assert scenario("errors").culprit == "catalog"  # a bad release aimed at the catalog
    assert scenario("backlog").culprit == "warehouse"
    with pytest.raises(ValueError, match="unknown scenario 'nope'; known: latency"):
        scenario("nope")
    with pytest.raises(ValueError, match="must end before the peak does"):
        replace(scenario("latency"), fault_for=10_000).check()
    with pytest.raises(ValueError, match="has no parameters"):
        replace(scenario("latency"), params={"delay_ms": 1}).check()


def test_phases_name_the_moment_of_the_sale() -> None:
    phases = Phases(baseline_s=100, ramp_s=20, hold_s=150, decay_s=10, tail_s=5)
    assert phases.length_s == 285
    assert phases.hold_start == 120
    assert [phases.phase_at(t) for t in (0, 110, 200, 275, 280)] == [
        "steady",
        "surge ramp",
        "5x peak",
        "decay",
        "steady",
    ]


def test_an_alert_counts_for_the_fault_when_the_fault_can_reach_its_service() -> None:
    def seen(service: str) -> SeenAlert:
        return SeenAlert(0.0, {"service": service, "kind": "anomaly"}, "")

    assert explained_by(seen("catalog"), "catalog")
    assert explained_by(seen("gateway"), "catalog")  # calls it
    assert explained_by(seen("recommendations"), "catalog")  # joins its products table
    assert not explained_by(seen("payment-gateway"), "catalog")
    assert not explained_by(seen("catalog"), None)  # a fault-free run explains nothing
    assert explained_by(seen("payments"), "payment-gateway")
    # A cache outage: the component's own alert, and the services that use it.
    redis = SeenAlert(0.0, {"component": "redis", "kind": "anomaly", "signal": "redis_exporter_up"}, "")
    assert redis.service == "redis"
    assert explained_by(redis, "redis")
    assert explained_by(seen("cart"), "redis")
    assert explained_by(seen("gateway"), "redis")  # through the catalog and the cart
    assert not explained_by(seen("payment-gateway"), "redis")


def test_the_likely_cause_is_found_though_alertmanager_holds_the_alert_with_its_incident() -> None:
    from vigil.demo.outcome import _likely_cause, per_group

    rule_labels = {"alertname": "VigilAnomaly", "service": "cart", "signal": "http_error_ratio"}
    seen = SeenAlert(0.0, {**rule_labels, "incident": "ab12"}, "")
    incidents = [{"likely_cause": "redis", "alerts": [{"labels": rule_labels}]}]
    assert _likely_cause(seen, incidents) == "redis"
    payloads = [{"groupLabels": {"incident": "ab12"}}] * 2 + [{"groupLabels": {"service": "gateway"}}]
    assert per_group(payloads) == {"incident=ab12": 2, "service=gateway": 1}


def test_only_notifications_about_alerts_of_this_run_count() -> None:
    from vigil.demo.watch import about_this_run

    earlier, later = "2026-12-04T02:00:00Z", "2026-12-04T02:10:00.123456789Z"
    started = 1796350200.0  # 2026-12-04T02:10:00Z
    assert about_this_run({"alerts": [{"startsAt": earlier}, {"startsAt": later}]}, started)
    assert not about_this_run({"alerts": [{"startsAt": earlier}]}, started)


def test_vigils_own_alerts_are_told_from_prometheus_rules_on_its_exported_scores() -> None:
    direct = SeenAlert(0.0, {"kind": "anomaly", "service": "catalog", "signal": "db_p99_seconds"}, "")
    via_prometheus = SeenAlert(0.0, {**direct.labels, "job": "vigil", "instance": "127.0.0.1:9400"}, "")
    slo_rule = SeenAlert(0.0, {"kind": "slo", "service": "gateway", "slo": "error-ratio"}, "")
    assert direct.from_vigil
    assert not via_prometheus.from_vigil
    assert not slo_rule.from_vigil
    assert slo_rule.subject == "error-ratio"
    assert SeenAlert(0.0, {**direct.labels, "route": "/search"}, "").subject == "db_p99_seconds (/search)"
