"""BurnRate: the SRE Workbook's multi-window, multi-burn-rate rules, checked at their boundaries."""

from __future__ import annotations

import math
import pickle

import pytest

from vigil.detectors.base import Band
from vigil.detectors.burn_rate import DEFAULT_RULES, BurnRate, BurnRule
from vigil.detectors.registry import make

MINUTE = 60.0
HEALTHY_DAYS_STEPS = 3 * 1440  # three days of one-minute steps: fills the longest (3 d) window
PAGE_1H = DEFAULT_RULES[0]


def healthy(detector: BurnRate, steps: int = HEALTHY_DAYS_STEPS, per_step: float = 100.0) -> float:
    """Feeds error-free minutes from t=0; returns the time of the next step."""
    for i in range(steps):
        detector.learn_one((0.0, per_step), t=MINUTE * i)
    return MINUTE * steps


def test_page_1h_fires_at_the_computed_step_of_a_15_percent_error_ratio() -> None:
    # 100 events a minute, 15% bad, objective 0.99: after k bad minutes the 1 h window holds
    # 15k bad of 6000 events, a burn of k/4, while the 5 min window already burns 15. The rule
    # (14.4x) fires once k/4 > 14.4, at the 58th minute; 6 h (k/24 vs 6x) and 3 d (k/288 vs 1x)
    # stay well below.
    detector = BurnRate(objective=0.99)
    start = healthy(detector)
    scores = []
    for k in range(1, 61):
        t = start + MINUTE * (k - 1)
        scores.append(detector.score_one((15.0, 100.0), t))
        detector.learn_one((15.0, 100.0), t)
    assert scores[57 - 1] == pytest.approx(57 / 4 / 14.4)
    assert scores[58 - 1] == pytest.approx(58 / 4 / 14.4)
    assert max(scores[:57]) < 1.0 < min(scores[57:])
    assert detector.firing_ == (("page-1h", "page"),)
    top = detector.rules_at(start + MINUTE * 59)[0]
    assert top.rule == PAGE_1H
    assert top.long_burn == pytest.approx(15.0)
    assert top.short_burn == pytest.approx(15.0)


def test_a_burst_that_only_trips_the_short_window_does_not_fire() -> None:
    detector = BurnRate(objective=0.99)
    t = healthy(detector)
    for _ in range(3):  # three minutes of 100% errors
        detector.learn_one((100.0, 100.0), t)
        t += MINUTE
    states = {state.rule.name: state for state in detector.rules_at(t - MINUTE)}
    assert states["page-1h"].short_burn == pytest.approx(300 / 500 / 0.01)  # 60x over 5 minutes
    assert states["page-1h"].long_burn == pytest.approx(300 / 6000 / 0.01)  # only 5x over the hour
    assert detector.score_one((0.0, 100.0), t) == pytest.approx(5 / 14.4)  # the next minute, healthy
    assert detector.firing_ == ()


def test_a_rule_cannot_fire_until_its_long_window_has_min_events() -> None:
    only_1h = [PAGE_1H]
    detector = BurnRate(objective=0.99, rules=only_1h, min_events=100)
    for i in range(120):  # one request a minute, all failing: at most 60 events in the hour
        assert detector.score_one((1.0, 1.0), MINUTE * i) == 0.0
        detector.learn_one((1.0, 1.0), MINUTE * i)
    assert detector.firing_ == ()

    detector = BurnRate(objective=0.99, rules=only_1h, min_events=50)
    scores = []
    for i in range(60):
        scores.append(detector.score_one((1.0, 1.0), MINUTE * i))
        detector.learn_one((1.0, 1.0), MINUTE * i)
    assert scores[48] == 0.0  # the 49th event
    assert scores[49] == pytest.approx(100 / 14.4)  # the 50th: 100% bad is a burn of 100


def test_the_score_drops_as_soon_as_the_short_window_clears() -> None:
    detector = BurnRate(objective=0.99)
    t = healthy(detector)
    for _ in range(70):
        detector.learn_one((15.0, 100.0), t)
        t += MINUTE
    assert detector.firing_ == (("page-1h", "page"),)
    # One healthy minute: the hour still burns 14.75x, but the last 5 minutes only 12x (4 bad of 5).
    assert detector.score_one((0.0, 100.0), t) == pytest.approx(12 / 14.4)
    detector.learn_one((0.0, 100.0), t)
    top = detector.rules_at(t)[0]
    assert top.long_burn == pytest.approx(15 * 59 / 6000 / 0.01)  # 59 bad minutes of 60: above 14.4
    assert not top.firing
    assert detector.firing_ == ()


def test_windows_follow_time_not_steps() -> None:
    # The same errors at 15 s steps: the 1 h window now holds 240 steps.
    detector = BurnRate(objective=0.99, rules=[PAGE_1H])
    for i in range(240):
        detector.learn_one((0.0, 25.0), t=15.0 * i)
    detector.learn_one((25.0, 25.0), t=15.0 * 240)
    state = detector.rules_at(15.0 * 240)[0]
    assert state.long_burn == pytest.approx(25 / 6000 / 0.01)  # 239 healthy steps + this one in the hour
    assert state.short_burn == pytest.approx(25 / 500 / 0.01)
    # Four days later every window is empty again.
    assert detector.rules_at(15.0 * 240 + 4 * 86400.0)[0].long_total == 0.0


def test_slow_burn_opens_a_ticket_not_a_page() -> None:
    # 2% errors, a burn of 2, for 7 hours on a fresh detector: too slow for either page (14.4x,
    # 6x) but above the ticket's 1x in both its 3 d and 6 h windows.
    detector = BurnRate(objective=0.99, min_events=100)
    for i in range(7 * 60):
        detector.learn_one((2.0, 100.0), t=MINUTE * i)
    assert detector.firing_ == (("ticket-3d", "ticket"),)
    assert detector.score_one((2.0, 100.0), MINUTE * 7 * 60) == pytest.approx(2.0)


def test_rules_from_config_mappings_and_the_band() -> None:
    rules = [{"name": "fast", "severity": "page", "factor": 10, "long_window": 600, "short_window": 60}]
    detector = make("burn_rate", objective=0.999, rules=rules, min_events=1)
    assert isinstance(detector, BurnRate)
    assert detector.rules_ == (BurnRule("fast", "page", 10, 600, 60),)
    assert detector.expected(0.0) is None
    detector.learn_one((0.0, 10.0), 0.0)
    band = detector.expected(0.0)
    assert band == Band(pytest.approx(0.001), 0.0, pytest.approx(0.01))
    assert detector.time_to_exhaustion(0.0) == math.inf
    with pytest.raises(ValueError, match="objective"):
        BurnRate(objective=1.0)


def test_broken_steps_count_as_no_events_and_the_state_is_bounded() -> None:
    detector = BurnRate(objective=0.99, min_events=1)
    detector.learn_one((float("nan"), 100.0), 0.0)
    detector.learn_one((5.0, float("inf")), 60.0)
    detector.learn_one((120.0, 100.0), 120.0)  # bad above total: clipped to total
    state = detector.rules_at(120.0)[0]
    assert state.long_total == 100.0
    assert state.long_burn == pytest.approx(100.0)
    size = len(pickle.dumps(detector))
    for i in range(5000):
        detector.learn_one((1.0, 100.0), 180.0 + 3600.0 * i)  # 200 days, hourly
    assert len(pickle.dumps(detector)) == pytest.approx(size, rel=0.05)
