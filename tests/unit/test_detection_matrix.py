"""The fault matrix bench: its plan, and the parts of its verdict that need no stack."""

from __future__ import annotations

import pytest

from alerts.alertmanager_config import Timing
from bench.detection_judge import Told, about, in_time, notifications
from bench.detection_plan import FAULT_FOR, PHASES, SEVERITIES, START_IN, Case, plan
from bench.detection_replay import summarise
from vigil.alerts.incidents import Incident
from vigil.alerts.model import Alert
from vigil.backtest_faults import Episode
from vigil.collectors.model import SeriesKey
from vigil.demo_marketplace.faults import FAULTS


def test_every_fault_of_the_catalogue_is_in_the_plan_once_per_seed_with_a_surge() -> None:
    cases = plan([1, 2])
    for seed in (1, 2):
        mine = [c for c in cases if c.seed == seed]
        assert sorted(c.fault for c in mine if c.fault) == sorted(FAULTS)
        assert [c for c in mine if c.fault is None] == [Case(seed, None)]
    assert plan([1, 2]) == cases  # a pure function of the seeds
    assert plan([3]) != plan([4])
    for case in cases:
        if case.fault is None:
            continue
        assert case.params == SEVERITIES[case.fault][case.severity]
        assert (case.target is not None) == FAULTS[case.fault].any_service
        # the fault ends while the sale is still at its peak, so recovery is not a second fault
        assert case.fault_at is not None
        assert case.fault_at + FAULT_FOR <= PHASES.hold_start + PHASES.hold_s


def test_plan_names_unknown_faults() -> None:
    with pytest.raises(ValueError, match=r"unknown fault.*nosuch"):
        plan([1], ["nosuch"])


def test_phases_start_where_they_say() -> None:
    assert START_IN["steady"] < PHASES.baseline_s <= START_IN["ramp"] < PHASES.hold_start <= START_IN["peak"]
    assert Case.from_json(plan([5])[0].to_json()) == plan([5])[0]


def test_in_time_is_before_the_breach_or_within_the_abrupt_budget() -> None:
    assert in_time(None, None, 100.0) is None  # no SLO broke: not counted either way
    assert in_time(None, 150.0, 100.0) is False
    assert in_time(140.0, 150.0, 100.0) is True
    assert in_time(160.0, 150.0, 100.0) is False
    assert in_time(114.0, 105.0, 100.0) is True  # abrupt: within 15 s of the onset
    assert in_time(116.0, 105.0, 100.0) is False


def _episode(fp: str, start: float, end: float, severity: str = "page") -> Episode:
    return Episode(SeriesKey(fp), start, start, end, 2.0, fp, severity)


def test_notifications_follow_alertmanagers_group_wait_interval_and_inhibition() -> None:
    timing = Timing()  # page group_wait 10 s, ticket 1 min; group_interval 5 min
    incident = Incident("i1", 0.0, {fp: Alert({"alertname": fp}) for fp in ("a", "b", "c", "d")})
    alerts = [_episode("a", 0, 200), _episode("b", 5, 200), _episode("x", 1, 9)]  # x: another incident's
    # a and b fire within group_wait: one notification; both resolved by the next flush: one resolution
    assert notifications(alerts, incident, timing) == Told(1, 1)
    # c joins after the first notification: told with the resolutions, no third message
    assert notifications([*alerts, _episode("c", 100, 250)], incident, timing) == Told(1, 1)
    # a ticket of the incident while its page fires is muted by the inhibit rule: never told
    assert notifications([*alerts, _episode("c", 100, 250, "ticket")], incident, timing) == Told(1, 1)
    # a ticket that fired (and was told) before the page, heard again once the page ended: told
    # resolved in its own group
    early = [_episode("a", 100, 350), _episode("d", 0, 400, "ticket")]
    assert notifications(early, incident, timing) == Told(2, 2)
    # ... but had it ended under the page, its resolution is muted too: never told
    assert notifications(
        [_episode("a", 100, 700), _episode("d", 0, 400, "ticket")], incident, timing
    ) == Told(2, 1)
    # an alert that first joined another incident keeps that label: another group, not muted
    incident.merged_from["c"] = "i0"
    assert notifications([*alerts, _episode("c", 100, 250, "ticket")], incident, timing) == Told(2, 2)
    # an alert that comes back after its group emptied opens a new group: told again
    assert notifications(
        [_episode("a", 0, 50), _episode("a2", 1000, 1100)], _with(incident, "a2"), timing
    ) == Told(2, 2)


def _with(incident: Incident, fp: str) -> Incident:
    incident.alerts[fp] = Alert({"alertname": fp})
    return incident


def test_summary_counts_false_alerts_per_fault_free_hour() -> None:
    rows = [
        {"case": "a", "seed": 1, "fault": "x", "in_time": True, "vigil_after_s": 5.0, "culprit_rank": 1,
         "notifications": 2, "fault_free_s": 1800.0, "false_alerts": [],
         "static_after_s": 5.0, "lead_vs_static_s": 0.0},
        {"case": "b", "seed": 1, "fault": "y", "in_time": None, "vigil_after_s": None, "culprit_rank": None,
         "notifications": 0, "fault_free_s": 1800.0, "false_alerts": [{}]},
        {"case": "c", "seed": 1, "fault": None, "fault_free_s": 3600.0, "false_alerts": []},
    ]  # fmt: skip
    summary = summarise(rows)
    assert summary["faults_breaking_an_slo"] == 1
    assert summary["recall_in_time"] == 1.0
    assert summary["alerted"] == 0.5
    assert summary["culprit_top1"] == 1.0
    assert summary["not_later_than_static"] == 1.0  # at the same moment is not later
    assert summary["false_alerts_per_8h"] == 4.0  # one in two fault-free hours
    assert summary["false_alerts_in_surges"] == 0


def test_an_alert_is_about_what_its_labels_say_to_the_on_call() -> None:
    key = SeriesKey("queue_consumers", (("component", "rabbitmq"), ("queue", "warehouse.order-paid")))
    # the alert rule names the queue's owner as its service: that is whom a crash of its consumers is about
    assert about(Episode(key, 0, 0, 1, 2.0, "f", "ticket", "warehouse")) == "warehouse"
    assert about(Episode(key, 0, 0, 1, 2.0)) == "rabbitmq"  # from the series alone
