"""Alert rules: for-duration, hysteresis, resolution, labels and annotations; time is always given."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from vigil.alerts.model import PAGE, TICKET, Alert
from vigil.alerts.rules import AlertRule, Links, Observation, RuleEvaluator, human_duration
from vigil.collectors.model import SeriesKey
from vigil.detectors.backlog import QueueBacklog
from vigil.detectors.base import Band
from vigil.detectors.calibration import Calibrated
from vigil.detectors.rolling_mad import RollingMAD
from vigil.runtime.observe import observe, owner_in
from vigil.runtime.series import SeriesState
from vigil.runtime.trail import Trail
from vigil.system import parse_system

SYSTEM = parse_system("""
name: shop
services: [{name: catalog}, {name: payments}, {name: orders}]
components: [{name: broker, kind: rabbitmq}]
queues: [{name: payments.order-placed, component: broker, producers: [orders], consumers: [payments]}]
""")

LATENCY = SeriesKey("http_p99_latency_seconds", (("route", "/products"), ("service", "catalog")))
QUEUE = SeriesKey("queue_depth_messages", (("queue", "payments.order-placed"),))


def obs(
    score: float | None,
    t: float = 0.0,
    key: SeriesKey = LATENCY,
    observed: float | None = None,
    band: Band | None = None,
    time_to_breach: float | None = None,
) -> Observation:
    return Observation(key, t, score, observed, band, time_to_breach)


def run(rule: AlertRule, scores: Sequence[float | None], step: float = 15.0) -> list[list[Alert]]:
    """The alerts after each evaluation of one series with these scores, one every ``step`` seconds."""
    evaluator = RuleEvaluator(rule)
    return [evaluator.evaluate([obs(s, t=i * step)], now=i * step) for i, s in enumerate(scores)]


def occurrences(rounds: list[list[Alert]]) -> int:
    """How many times the alert started firing: each occurrence has its own start."""
    return len({a.starts_at for alerts in rounds for a in alerts})


def resolutions(rounds: list[list[Alert]]) -> int:
    return len({a.ends_at for alerts in rounds for a in alerts if a.ends_at is not None})


def test_an_alert_is_pending_for_its_for_duration_then_fires() -> None:
    evaluator = RuleEvaluator(AlertRule(for_=60))
    for t in (0, 15, 30, 45):
        assert evaluator.evaluate([obs(2.0, t)], now=t) == []
        assert len(evaluator.pending()) == 1
    (alert,) = evaluator.evaluate([obs(2.0, 60)], now=60)
    assert alert.starts_at == 60  # firing since, as Prometheus sends it
    assert alert.ends_at is None
    assert evaluator.pending() == []


def test_a_pending_alert_that_drops_back_starts_over() -> None:
    rounds = run(AlertRule(for_=60), [2.0, 2.0, 2.0, 0.5, 2.0, 2.0, 2.0, 2.0, 2.0])
    assert [len(r) for r in rounds] == [0, 0, 0, 0, 0, 0, 0, 0, 1]  # pending again from t=60: fires at 120
    assert rounds[-1][0].starts_at == 120


def test_without_for_an_alert_fires_at_once_and_a_score_of_exactly_the_threshold_is_not_anomalous() -> None:
    assert run(AlertRule(), [1.0]) == [[]]
    assert len(run(AlertRule(), [1.01])[0]) == 1


def test_a_value_past_its_signals_limit_fires_at_once_whatever_the_score() -> None:
    rule = AlertRule(for_=60, keep_firing_for=30, limits={LATENCY.signal: 0.5})
    evaluator = RuleEvaluator(rule)
    assert evaluator.evaluate([obs(0.2, t=0, observed=0.4)], now=0) == []  # below the limit: nothing
    assert evaluator.evaluate([obs(2.0, t=15, observed=0.45)], now=15) == []  # a guess: pending for 60 s
    (alert,) = evaluator.evaluate([obs(None, t=30, observed=0.9)], now=30)  # past it, even warming up
    assert (alert.starts_at, alert.ends_at) == (30.0, None)
    assert alert.annotations["limit"] == "0.5"
    assert alert.annotations["summary"] == "http_p99_latency_seconds is past its limit 0.5 for catalog"
    # Back under the limit with a calm score: keep_firing_for, then resolved.
    assert evaluator.evaluate([obs(0.1, t=45, observed=0.3)], now=45)[0].ends_at is None
    assert evaluator.evaluate([obs(0.1, t=75, observed=0.3)], now=75)[0].ends_at == 75.0
    # Another signal has no limit: its values fire nothing by themselves.
    assert RuleEvaluator(rule).evaluate([obs(0.1, key=QUEUE, observed=1e9)], now=0) == []


def test_hysteresis_keeps_a_score_oscillating_around_one_from_flapping() -> None:
    wobble = [1.3, 0.9, 1.1, 0.8, 1.2, 0.95, 1.05, 0.85] * 10  # 20 minutes hovering around 1
    calm = AlertRule(resolve_below=0.7, keep_firing_for=120)
    rounds = run(calm, wobble)
    assert occurrences(rounds) == 1
    assert resolutions(rounds) == 0
    assert all(len(r) == 1 for r in rounds)
    # The same scores without hysteresis flap on every dip: what the rule above is for.
    assert occurrences(run(AlertRule(), wobble)) == 40


def test_hold_time_alone_also_stops_flapping_on_short_dips() -> None:
    dips = [2.0, 0.2, 2.0, 0.2, 0.2, 2.0, 0.2] * 5  # never below for 45 s in a row
    assert occurrences(run(AlertRule(keep_firing_for=45), dips)) == 1
    assert resolutions(run(AlertRule(keep_firing_for=45), dips)) == 0


def test_a_firing_alert_resolves_after_staying_below_for_keep_firing_for() -> None:
    rule = AlertRule(resolve_below=0.7, keep_firing_for=60)
    # t:       0    15   30   45   60   75   90   105  120
    scores = [2.0, 0.5, 0.5, 0.8, 0.5, 0.5, 0.5, 0.5, 0.5]
    rounds = run(rule, scores)
    ends = [r[0].ends_at for r in rounds]
    # 0.8 at t=45 is above resolve_below: the hold restarts at t=60 and ends at t=120.
    assert ends == [None] * 8 + [120]
    assert rounds[-1][0].starts_at == 0


def test_resolved_alerts_are_resent_for_a_while_then_forgotten_and_a_new_firing_starts_over() -> None:
    evaluator = RuleEvaluator(AlertRule(), resolved_retention=300)
    evaluator.evaluate([obs(3.0, 0)], now=0)
    (resolved,) = evaluator.evaluate([obs(0.1, 15)], now=15)
    assert resolved.ends_at == 15
    assert evaluator.evaluate([obs(0.1, 300)], now=300) == [resolved]  # still within the retention
    assert evaluator.evaluate([obs(0.1, 330)], now=330) == []
    (again,) = evaluator.evaluate([obs(4.0, 345)], now=345)
    assert (again.starts_at, again.ends_at) == (345, None)
    assert again.fingerprint == resolved.fingerprint


def test_a_series_that_disappears_counts_as_no_longer_anomalous() -> None:
    evaluator = RuleEvaluator(AlertRule(keep_firing_for=30))
    evaluator.evaluate([obs(3.0, 0)], now=0)
    assert evaluator.evaluate([], now=15)[0].ends_at is None  # held for keep_firing_for
    assert evaluator.evaluate([], now=45)[0].ends_at == 45


def test_a_warming_up_detector_without_a_score_fires_nothing() -> None:
    assert run(AlertRule(), [None, None]) == [[], []]


def test_labels_route_queues_to_their_consumer_and_severity_is_per_signal() -> None:
    rule = AlertRule(
        alertname="MarketplaceAnomaly", severities={"queue_depth_messages": PAGE}, owner=owner_in(SYSTEM)
    )
    evaluator = RuleEvaluator(rule)
    unknown_queue = SeriesKey("queue_depth_messages", (("queue", "audit.events"),))
    alerts = evaluator.evaluate([obs(2.0, key=LATENCY), obs(2.0, key=QUEUE), obs(2.0, key=unknown_queue)], 0)
    by_signal = {(a.labels["signal"], a.labels.get("queue")): a.labels for a in alerts}
    assert by_signal["http_p99_latency_seconds", None] == {
        "alertname": "MarketplaceAnomaly",
        "service": "catalog",
        "route": "/products",
        "signal": "http_p99_latency_seconds",
        "severity": TICKET,
        "kind": "anomaly",  # what Alertmanager's inhibition of anomalies by SLO pages matches
    }
    assert by_signal["queue_depth_messages", "payments.order-placed"]["service"] == "payments"
    assert by_signal["queue_depth_messages", "payments.order-placed"]["severity"] == PAGE
    assert "service" not in by_signal["queue_depth_messages", "audit.events"]  # keeps the queue label only


def test_a_rule_can_watch_only_some_signals() -> None:
    evaluator = RuleEvaluator(AlertRule(signals=frozenset({"queue_depth_messages"})))
    alerts = evaluator.evaluate([obs(5.0, key=LATENCY), obs(5.0, key=QUEUE)], now=0)
    assert [a.labels["signal"] for a in alerts] == ["queue_depth_messages"]


def test_annotations_say_what_is_wrong_and_where_to_look() -> None:
    links = Links(
        base_url="http://vigil:9400/",
        dashboard_url="http://grafana/d/vigil?var-service={service}&var-signal={signal}",
        runbook_url="https://runbooks/{service}.md",
    )
    descriptions = {"queue_depth_messages": "messages waiting per queue"}
    rule = AlertRule(links=links, descriptions=descriptions, owner=owner_in(SYSTEM))
    observation = obs(2.5, key=QUEUE, observed=640.0, band=Band(120.0, 0.0, 400.0), time_to_breach=250.4)
    (alert,) = RuleEvaluator(rule).evaluate([observation], now=0)
    notes = alert.annotations
    assert notes["anomaly_score"] == "2.500"
    assert notes["observed"] == "640"
    assert notes["expected_range"] == "0 \u2013 400"
    assert notes["time_to_slo_breach"] == "4m10s"
    assert (
        notes["dashboard_url"]
        == "http://grafana/d/vigil?var-service=payments&var-signal=queue_depth_messages"
    )
    assert notes["runbook_url"] == "https://runbooks/payments.md"
    assert notes["summary"] == "queue_depth_messages is anomalous for payments (score 2.50)"
    assert notes["description"].startswith("messages waiting per queue. ")
    assert "640" in notes["description"]
    assert "4m10s" in notes["description"]
    assert alert.generator_url == "http://vigil:9400/api/v1/signals?signal=queue_depth_messages"
    # a backing component's alert points at the infrastructure dashboard, not at a service "unknown"
    redis = obs(2.5, key=SeriesKey("redis_exporter_up", (("component", "redis"),)))
    (down,) = RuleEvaluator(rule).evaluate([redis], now=0)
    assert down.annotations["dashboard_url"] == (
        "http://grafana/d/vigil?var-service=infrastructure&var-signal=redis_exporter_up"
    )


def test_annotations_leave_out_what_is_unknown() -> None:
    (alert,) = RuleEvaluator(AlertRule()).evaluate([obs(2.0, time_to_breach=float("inf"))], now=0)
    assert set(alert.annotations) == {"summary", "description", "anomaly_score"}


def test_annotations_follow_the_latest_score_while_the_identity_stays() -> None:
    evaluator = RuleEvaluator(AlertRule())
    (first,) = evaluator.evaluate([obs(2.0, 0)], now=0)
    (later,) = evaluator.evaluate([obs(6.0, 15)], now=15)
    assert (first.annotations["anomaly_score"], later.annotations["anomaly_score"]) == ("2.000", "6.000")
    assert (later.fingerprint, later.starts_at) == (first.fingerprint, 0)


def test_observe_reads_the_engine_state_and_the_backlog_forecast_through_wrappers() -> None:
    backlog = QueueBacklog(threshold=1000, horizon=600, window=10, warmup=5)
    points = Trail(20)
    for i in range(12):  # +3 messages per second
        backlog.learn_one(100 + 45 * i, t=15.0 * i)
        points.append(15.0 * i, 100 + 45 * i)
    wrapped = Calibrated(backlog, warmup=1000)
    state = SeriesState(QUEUE, "prometheus", wrapped, points, score=1.4, band=backlog.expected(165.0))
    idle = SeriesState(LATENCY, "prometheus", RollingMAD(), Trail(20))  # no point yet: nothing to observe
    (seen,) = observe([state, idle], now=180.0)
    assert seen.time_to_breach == pytest.approx(backlog.time_to_threshold(180.0))
    assert seen.time_to_breach == pytest.approx((1000 - (100 + 45 * 11) - 3 * 15) / 3, rel=0.01)
    assert (seen.t, seen.score, seen.observed) == (165.0, 1.4, 100 + 45 * 11)
    assert observe([state], now=180.0, time_to_breach=None)[0].time_to_breach is None
    one = Trail(20)
    one.append(1.0, 0.2)
    plain = SeriesState(LATENCY, "prometheus", RollingMAD(), one, score=float("nan"))
    assert observe([plain], now=2.0)[0].score is None  # a NaN score says nothing


def test_rule_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="resolve_below"):
        AlertRule(threshold=1.0, resolve_below=1.5)
    with pytest.raises(ValueError, match="only use"):
        Links(runbook_url="https://runbooks/{team}.md")
    with pytest.raises(ValueError, match="negative"):
        AlertRule(for_=-1)


def test_human_duration() -> None:
    assert [human_duration(s) for s in (0, 42.4, 250, 7500)] == ["0s", "42s", "4m10s", "2h5m"]
