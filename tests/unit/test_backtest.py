"""Backtest logic on synthetic scored series: episodes, `for:`, merging, ground-truth matching, replay."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.backtest import (
    BacktestError,
    Episode,
    Fault,
    Rules,
    SeriesReplay,
    find_episodes,
    load_ground_truth,
    match_faults,
    run_backtest,
    score_points,
    select_signals,
)
from vigil.cli import app
from vigil.collectors.model import SeriesKey
from vigil.collectors.prometheus_client import PrometheusClient, PromQLError, Series
from vigil.config import VigilConfig
from vigil.detectors.base import Band
from vigil.durations import parse_moment

KEY = SeriesKey("latency", (("service", "gateway"),))
STEP = 15.0
T0 = 1_800_000_000.0  # a multiple of 15: synthetic steps line up with the collector's alignment


def series(scores: Sequence[float], start: float = T0, step: float = STEP) -> SeriesReplay:
    return SeriesReplay(KEY, [start + i * step for i in range(len(scores))], [float(s) for s in scores])


def spans(episodes: list[Episode]) -> list[tuple[float, float, float]]:
    """(fired, end, peak) relative to T0, for readable assertions."""
    return [(e.start - T0, e.end - T0, e.peak) for e in episodes]


# --- time arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", T0),
        ("-2h", T0 - 7200),
        ("now-90s", T0 - 90),
        ("- 1h30m", T0 - 5400),
        ("1795549132", 1795549132.0),
        ("1795549132.5", 1795549132.5),
        ("2026-11-24T18:00:00Z", datetime(2026, 11, 24, 18, tzinfo=UTC).timestamp()),
        ("2026-11-24T19:00:00+01:00", datetime(2026, 11, 24, 18, tzinfo=UTC).timestamp()),
        ("2026-11-24 18:00", datetime(2026, 11, 24, 18, tzinfo=UTC).timestamp()),  # naive is UTC
    ],
)
def test_parse_time(text: str, expected: float) -> None:
    assert parse_moment(text, now=T0) == expected


@pytest.mark.parametrize("text", ["yesterday", "-2 fortnights", ""])
def test_parse_time_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        parse_moment(text, now=T0)


# --- scoring ------------------------------------------------------------------------------------------


class Recorder:
    """A detector that scores by how many points it has learned, and records the call order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self.learned = 0

    def score_one(self, x: float, t: float) -> float:
        self.calls.append(("score", t))
        return float(self.learned)

    def learn_one(self, x: float, t: float) -> None:
        self.calls.append(("learn", t))
        self.learned += 1

    def expected(self, t: float) -> Band | None:
        return None


def test_points_are_scored_before_they_are_learned_in_time_order() -> None:
    detector = Recorder()
    times, scores = score_points([(30.0, 3), (0.0, 1), (15.0, 2)], detector)
    assert times == [0.0, 15.0, 30.0]
    assert scores == [0.0, 1.0, 2.0]  # each score saw only the points before it
    assert detector.calls == [(op, t) for t in (0.0, 15.0, 30.0) for op in ("score", "learn")]


def test_non_finite_and_repeated_points_are_dropped_like_the_engine_does() -> None:
    times, _ = score_points([(0.0, 1), (15.0, math.nan), (15.0, 2), (15.0, 3), (30.0, math.inf)], Recorder())
    assert times == [0.0, 15.0]


# --- episodes -----------------------------------------------------------------------------------------


def test_runs_above_one_are_episodes_with_their_peak() -> None:
    scores = [0.2, 1.5, 3.0, 0.4, 0.1, 2.0, 0.0]
    assert spans(find_episodes(series(scores), STEP, Rules())) == [(15, 30, 3.0), (75, 75, 2.0)]


def test_a_score_of_exactly_one_is_not_anomalous() -> None:
    assert find_episodes(series([1.0, 1.0, 0.5]), STEP, Rules()) == []


def test_an_episode_still_open_at_the_end_of_the_range_is_reported() -> None:
    assert spans(find_episodes(series([0, 0, 2, 5]), STEP, Rules())) == [(30, 45, 5.0)]


def test_for_delays_firing_and_drops_short_runs() -> None:
    #          t:  0  15  30  45  60  75  90 105 120
    scores = [2, 2, 0, 2, 2, 2, 2, 0, 0]
    (episode,) = find_episodes(series(scores), STEP, Rules(hold=30))
    assert episode.pending_since == T0 + 45  # pending from the first point above 1
    assert episode.start == T0 + 75  # fires on the first evaluation 30 s later
    assert episode.end == T0 + 90
    # The run at 0..15 lasted 15 s: still pending when it resolved, so it never fired.


def test_for_equal_to_the_run_length_fires_on_its_last_point() -> None:
    (episode,) = find_episodes(series([0, 2, 2, 2, 0]), STEP, Rules(hold=30))
    assert (episode.start - T0, episode.end - T0) == (45, 45)


def test_a_dip_resets_the_for_timer() -> None:
    assert find_episodes(series([2, 2, 0.5, 2, 2]), STEP, Rules(hold=30)) == []


def test_a_missing_step_ends_a_run() -> None:
    replay = SeriesReplay(KEY, [T0, T0 + 15, T0 + 45, T0 + 60], [2, 2, 2, 2])  # T0+30 absent
    assert spans(find_episodes(replay, STEP, Rules())) == [(0, 15, 2), (45, 60, 2)]
    assert spans(find_episodes(replay, STEP, Rules(hold=30))) == []


def test_close_episodes_merge_within_the_gap() -> None:
    #          t:  0  15  30  45  60  75  90 105 120 135
    scores = [3, 0, 0, 2, 0, 0, 0, 0, 0, 4]
    assert len(find_episodes(series(scores), STEP, Rules())) == 3
    merged = find_episodes(series(scores), STEP, Rules(merge_gap=45))
    assert spans(merged) == [(0, 45, 3), (135, 135, 4)]  # 45 - 0 <= 45 merges; 135 - 45 > 45 does not
    assert spans(find_episodes(series(scores), STEP, Rules(merge_gap=90))) == [(0, 135, 4)]


def test_merging_applies_to_fired_episodes_only() -> None:
    # With for: 30s the runs at 0..30 and 90..120 fire (at 30 and 120); the blip at 60 never fires, so it
    # cannot chain them together although it lies within 60 s of both.
    scores = [2, 2, 2, 0, 2, 0, 2, 2, 2]
    assert spans(find_episodes(series(scores), STEP, Rules(hold=30, merge_gap=60))) == [
        (30, 30, 2),
        (120, 120, 2),
    ]
    merged = find_episodes(series(scores), STEP, Rules(hold=30, merge_gap=90))
    assert spans(merged) == [(30, 120, 2)]
    assert merged[0].pending_since == T0


# --- ground truth -------------------------------------------------------------------------------------


def episode(start: float, end: float, signal: str = "latency") -> Episode:
    return Episode(SeriesKey(signal), T0 + start, T0 + start, T0 + end, 2.0)


def fault(start: float, end: float, name: str = "catalog-slow-sql") -> Fault:
    return Fault(name, "catalog", T0 + start, T0 + end)


def test_episodes_overlapping_a_fault_or_its_grace_detect_it() -> None:
    faults = [fault(100, 130), fault(500, 520, "cache-outage"), fault(900, 910, "warehouse-crash")]
    early, during, late, after_grace, unrelated = (
        episode(60, 105),  # began before the fault and lasted into it: a lead
        episode(115, 150),
        episode(575, 590),  # 55 s after cache-outage ended: within the 60 s grace
        episode(985, 990),  # 75 s after warehouse-crash: too late
        episode(300, 310),
    )
    matches, false_alarms = match_faults([early, during, late, after_grace, unrelated], faults, grace=60)
    assert [m.alerts for m in matches] == [(early, during), (late,), ()]
    assert [m.lag for m in matches] == [-40, 75, None]  # negative: the alert led the fault
    assert [m.new_lag for m in matches] == [15, 75, None]  # the first alert that began during the fault
    assert matches[0].first_alert == T0 + 60
    assert false_alarms == [after_grace, unrelated]


def test_one_episode_can_detect_several_faults_and_is_no_false_alarm() -> None:
    long = episode(0, 200)
    matches, false_alarms = match_faults([long], [fault(50, 60), fault(150, 160)], grace=0)
    assert [m.lag for m in matches] == [-50, -150]
    assert [m.new_lag for m in matches] == [None, None]
    assert false_alarms == []


def test_ground_truth_is_read_and_limited_to_the_range(tmp_path: Path) -> None:
    path = tmp_path / "ground_truth.jsonl"
    records = [
        {"fault": "cache-outage", "service": "redis", "start": T0 - 100, "end": T0 - 50, "params": {}},
        {
            "fault": "warehouse-stall",
            "service": "warehouse",
            "start": T0 - 10,
            "end": T0 + 5,
            "params": {"s": 2},
        },
        {"fault": "memory-leak", "service": "catalog", "start": T0 + 50, "end": None, "params": {}},
        {"fault": "catalog-slow-sql", "service": "catalog", "start": T0 + 500, "end": T0 + 510},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    faults = load_ground_truth(path, T0, T0 + 300)
    assert [(f.fault, f.start, f.end) for f in faults] == [
        ("warehouse-stall", T0 - 10, T0 + 5),  # overlaps the start of the range
        ("memory-leak", T0 + 50, T0 + 300),  # still open: runs to the end of the range
    ]
    assert faults[0].params == {"s": 2}


def test_a_bad_ground_truth_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "gt.jsonl"
    path.write_text('{"fault": "x", "start": 1, "end": 2}\n{"start": 3}\n')
    with pytest.raises(ValueError, match=r"gt\.jsonl:2"):
        load_ground_truth(path, 0, 10)


# --- replay through a synthetic Prometheus ------------------------------------------------------------


class SyntheticPrometheus(PrometheusClient):
    """Answers range queries from a function of time, like Prometheus would: values on the requested steps."""

    def __init__(self, spike_at: float) -> None:
        super().__init__("http://synthetic.invalid")
        self.spike_at = spike_at
        self.requests: list[tuple[float, float, float]] = []

    def query_range(
        self, promql: str, start: float, end: float, step: float, *, name: str | None = None
    ) -> list[Series]:
        if "(" in promql and ")" not in promql:
            raise PromQLError(promql, "1:4: parse error: unclosed left parenthesis", name=name)
        self.requests.append((start, end, step))
        steps = [start + i * step for i in range(round((end - start) / step) + 1)]
        # A gently wobbling series with one spike: the detector must flag exactly the spike.
        values = [(t, 100.0 + (t / step) % 3 + (1000.0 if t == self.spike_at else 0.0)) for t in steps]
        return [Series({"__name__": "x", "service": "gateway"}, values)]


def config(query: str = "x") -> VigilConfig:
    return VigilConfig.model_validate(
        {
            "sources": {
                "prometheus": {"url": "http://synthetic.invalid"},
                "elasticsearch": {"url": "http://synthetic.invalid"},
            },
            "signals": [
                {"name": "latency", "query": query, "step": "15s", "detector": {"window": 20, "warmup": 5}},
                # Computed from Elasticsearch's log counts: nothing Prometheus could replay.
                {
                    "name": "logged",
                    "inputs": ["log_errors", "log_lines"],
                    "by": ["service"],
                    "detector": {"kind": "burn_rate"},
                },
            ],
        }
    )


def test_replay_covers_every_step_in_chunks_and_fires_on_the_spike() -> None:
    settings = config()
    client = SyntheticPrometheus(spike_at=T0 + 60 * STEP)
    signals = select_signals(settings, None)
    result = run_backtest(settings, client, signals, T0 + 1, T0 + 100 * STEP + 7, Rules(), max_points=30)
    (replay,) = result.signals
    assert [s.name for s in signals] == ["latency"]  # log signals cannot be replayed from Prometheus
    assert (replay.start, replay.end, replay.steps) == (T0 + STEP, T0 + 100 * STEP, 100)
    assert replay.series[0].times == [T0 + k * STEP for k in range(1, 101)]
    assert len(client.requests) == 4  # 100 steps, at most 30 a request
    assert all(round((end - start) / step) + 1 <= 30 for start, end, step in client.requests)
    assert [(e.key.label_dict(), e.start) for e in result.episodes] == [({"service": "gateway"}, T0 + 900)]
    # The same replay in one request scores identically: chunking changes nothing.
    again = run_backtest(settings, SyntheticPrometheus(T0 + 900), signals, T0 + 1, T0 + 1507, Rules())
    assert again.signals[0].series[0].scores == replay.series[0].scores


def test_bad_promql_names_the_signal() -> None:
    settings = config("sum(x")
    with pytest.raises(BacktestError, match="bad PromQL in signal latency: 1:4: parse error"):
        run_backtest(settings, SyntheticPrometheus(0), select_signals(settings, None), T0, T0 + 600, Rules())


def test_signals_are_chosen_by_name() -> None:
    settings = config()
    assert [s.name for s in select_signals(settings, ["latency", "latency"])] == ["latency"]
    with pytest.raises(ValueError, match="unknown signal"):
        select_signals(settings, ["nosuch"])
    with pytest.raises(ValueError, match="only signals Prometheus computes"):
        select_signals(settings, ["logged"])


# --- command line errors, before any request ----------------------------------------------------------

runner = CliRunner()


def test_cli_reports_config_and_argument_errors_with_exit_2(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["backtest", "--config", str(tmp_path / "nope.yaml"), "--from", "-1h"])
    assert missing.exit_code == 2
    assert "no such file" in missing.output
    path = tmp_path / "vigil.yaml"
    path.write_text("sources: {prometheus: {url: 'http://127.0.0.1:1'}}\nsignals: [{name: up, query: up}]\n")
    bad_time = runner.invoke(app, ["backtest", "-c", str(path), "--from", "yesterday"])
    assert bad_time.exit_code == 2
    assert "not a time: 'yesterday'" in bad_time.output
    backwards = runner.invoke(app, ["backtest", "-c", str(path), "--from", "now", "--to", "-1h"])
    assert backwards.exit_code == 2
    assert "must be before" in backwards.output
