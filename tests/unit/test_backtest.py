"""Backtest logic on synthetic scored series: episodes, `for:`, merging, ground-truth matching, replay."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.backtest import BacktestError, Overrides, Replay, run_backtest, select_signals
from vigil.backtest_faults import Episode, Fault, load_ground_truth, match_faults
from vigil.cli import app
from vigil.collectors.model import Point, SeriesKey
from vigil.collectors.prometheus_client import PrometheusClient, PromQLError, Series
from vigil.config import VigilConfig
from vigil.durations import parse_moment
from vigil.runtime.service import ROUND_DELAY, first_round

KEY = SeriesKey("latency", (("service", "gateway"),))
STEP = 15.0
T0 = 1_800_000_000.0  # a multiple of 15: synthetic steps line up with the collector's alignment


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


# --- the replay source -------------------------------------------------------------------------------


def test_the_replay_source_hands_out_points_as_time_passes() -> None:
    source = Replay({KEY: [Point(T0 + 30, 3.0), Point(T0, 1.0), Point(T0 + 15, 2.0)]})
    assert source.collect(T0 - 1).series == {}
    assert source.collect(T0 + 15).series == {KEY: [Point(T0, 1.0), Point(T0 + 15, 2.0)]}
    assert source.collect(T0 + 15).series == {}  # each point once
    assert source.collect(T0 + 100).series == {KEY: [Point(T0 + 30, 3.0)]}


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
    instant = Overrides(hold=0.0, keep_firing_for=0.0)
    result = run_backtest(settings, client, signals, T0 + 1, T0 + 100 * STEP + 7, instant, max_points=30)
    (replay,) = result.signals
    assert [s.name for s in signals] == ["latency"]  # log signals cannot be replayed from Prometheus
    assert (replay.start, replay.end, replay.steps) == (T0 + STEP, T0 + 100 * STEP, 100)
    assert replay.times == {
        SeriesKey("latency", (("service", "gateway"),)): [T0 + k * STEP for k in range(1, 101)]
    }
    assert len(client.requests) == 4  # 100 steps, at most 30 a request
    assert all(round((end - start) / step) + 1 <= 30 for start, end, step in client.requests)
    # Rounds every 15 s on the step grid, as `vigil run` keeps them (from T0 + 15, not T0 + 1): the
    # spike's point reaches the engine, and fires, in the round of its own step.
    (episode,) = result.episodes
    assert (episode.key.label_dict(), episode.pending_since, episode.start) == (
        {"service": "gateway"},
        T0 + 900,
        T0 + 900,
    )
    assert episode.end == T0 + 915  # the next round's point is normal again: resolved at once
    assert episode.peak > 1
    (incident,) = result.incidents
    assert (incident.likely_cause, incident.opened_at) == ("gateway", T0 + 900)
    # The same replay in one request fires identically: chunking changes nothing.
    again = run_backtest(settings, SyntheticPrometheus(T0 + 900), signals, T0 + 1, T0 + 1507, instant)
    assert again.episodes == result.episodes


def test_the_configs_alert_rule_decides_what_fires() -> None:
    settings = config()  # for: 30s, keep_firing_for: 60s
    signals = select_signals(settings, None)
    result = run_backtest(settings, SyntheticPrometheus(T0 + 900), signals, T0 + 1, T0 + 1507, Overrides())
    assert result.episodes == []  # one anomalous point is not 30 s of trouble
    held = run_backtest(
        settings, SyntheticPrometheus(T0 + 900), signals, T0 + 1, T0 + 1507, Overrides(hold=0.0)
    )
    (episode,) = held.episodes
    assert episode.end == T0 + 915 + 60  # keep_firing_for: a minute after the score fell (at T0 + 915)


def test_bad_promql_names_the_signal() -> None:
    settings = config("sum(x")
    with pytest.raises(BacktestError, match="bad PromQL in signal latency: 1:4: parse error"):
        run_backtest(
            settings, SyntheticPrometheus(0), select_signals(settings, None), T0, T0 + 600, Overrides()
        )


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
    damaged = tmp_path / "case.jsonl.gz"
    damaged.write_bytes(gzip.compress(b'{"message": "a document without its time"}\n'))
    bad_logs = runner.invoke(app, ["backtest", "-c", str(path), "--from", "-1h", "--logs", str(damaged)])
    assert bad_logs.exit_code == 2
    assert "case.jsonl.gz:1: not an exported log document" in bad_logs.output


def test_vigil_run_keeps_its_rounds_on_the_step_grid_as_the_replay_does() -> None:
    """A round at a random phase reads a point up to a step older than a Prometheus rule evaluated then
    sees; on the grid (a moment after, for the scrape to land) it reads the newest."""
    assert first_round(1000.3, 15.0).timestamp() == 1005.0 + ROUND_DELAY
    assert first_round(1005.0, 5.0).timestamp() == 1005.0 + ROUND_DELAY
