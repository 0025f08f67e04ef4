"""`vigil backtest` against the real Prometheus of the local stack, over the last ~20 minutes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vigil.backtest import Backtest, BacktestError, Rules, run_backtest, select_signals
from vigil.collectors.model import SeriesKey, labels_of
from vigil.collectors.prometheus_api import align_down, align_up
from vigil.collectors.prometheus_client import PrometheusClient
from vigil.config import VigilConfig, load_config
from vigil.stack import Stack

pytestmark = pytest.mark.integration

STEP = 15.0
CONFIG = """\
sources:
  prometheus: {{url: "{url}"}}
signals:
  - name: targets_up
    query: sum by (job) (up)
    step: 15s
    detector: {{min_deviation: 0.5}}
  - name: scrape_seconds
    query: max by (job) (scrape_duration_seconds)
    step: 15s
"""


@pytest.fixture(scope="module")
def window() -> tuple[float, float]:
    # Ends a minute ago: the newest scrapes may still be arriving, and determinism needs settled data.
    end = time.time() - 60
    return end - 20 * 60, end


@pytest.fixture
def config_path(stack: Stack, tmp_path: Path) -> Path:
    path = tmp_path / "vigil.yaml"
    path.write_text(CONFIG.format(url=stack.settings.prometheus_url))
    return path


@pytest.fixture
def settings(config_path: Path) -> VigilConfig:
    return load_config(config_path)


def client_for(settings: VigilConfig) -> PrometheusClient:
    assert settings.sources.prometheus is not None
    return PrometheusClient(settings.sources.prometheus.url)


def replay(settings: VigilConfig, window: tuple[float, float], max_points: int = 10_000) -> Backtest:
    with client_for(settings) as client:
        signals = select_signals(settings, None)
        return run_backtest(settings, client, signals, *window, Rules(), max_points=max_points)


def test_replay_covers_every_step_of_the_range_for_each_series(
    settings: VigilConfig, window: tuple[float, float]
) -> None:
    start, end = window
    result = replay(settings, window, max_points=25)  # 80 steps: several requests per signal
    grid = [align_up(start, STEP) + k * STEP for k in range(round((end - start) / STEP) + 2)]
    grid = [t for t in grid if t <= align_down(end, STEP)]
    assert [s.name for s in result.signals] == ["targets_up", "scrape_seconds"]
    with client_for(settings) as client:
        for signal, config in zip(result.signals, settings.signals, strict=True):
            assert signal.steps == len(grid)
            assert signal.requests == -(-len(grid) // 25)
            # Prometheus answering the whole range in one request is the reference for each series.
            reference = {
                SeriesKey(signal.name, labels_of(s.metric)): [t for t, _ in s.values]
                for s in client.query_range(config.query or "", grid[0], grid[-1], STEP)
            }
            assert {s.key for s in signal.series} == set(reference)
            for series in signal.series:
                assert series.times == reference[series.key], series.key
                assert len(series.scores) == len(series.times)
            # Prometheus scrapes itself all the time: its series must cover every step of the range.
            (own,) = [s for s in signal.series if s.key.label_dict() == {"job": "prometheus"}]
            assert own.times == grid


def test_the_replay_is_deterministic(settings: VigilConfig, window: tuple[float, float]) -> None:
    first, second = replay(settings, window), replay(settings, window)
    assert [(s.key, s.times, s.scores) for r in first.signals for s in r.series] == [
        (s.key, s.times, s.scores) for r in second.signals for s in r.series
    ]
    assert first.episodes == second.episodes
    # Chunking is invisible in the results.
    chunked = replay(settings, window, max_points=7)
    assert [s.scores for r in chunked.signals for s in r.series] == [
        s.scores for r in first.signals for s in r.series
    ]


def vigil(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vigil.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_prints_json_that_parses(config_path: Path, window: tuple[float, float], tmp_path: Path) -> None:
    start, end = window
    truth = tmp_path / "ground_truth.jsonl"
    fault = {"fault": "cache-outage", "service": "redis", "start": start + 300, "end": start + 330}
    truth.write_text(json.dumps(fault) + "\n")
    ran = vigil(
        "backtest", "--config", str(config_path), "--from", str(start), "--to", str(end), "--json",
        "--ground-truth", str(truth), "--for", "30s",
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report = json.loads(ran.stdout)
    assert (report["from"], report["to"]) == (start, end)
    assert [s["name"] for s in report["signals"]] == ["targets_up", "scrape_seconds"]
    for signal in report["signals"]:
        own = next(s for s in signal["series"] if s["labels"] == {"job": "prometheus"})
        assert own["points"] == signal["steps"] >= 80
    assert [f["fault"] for f in report["faults"]] == ["cache-outage"]
    assert set(report["faults"][0]) >= {"detected", "first_alert", "lag", "new_lag", "alerts"}
    assert isinstance(report["episodes"], list)
    assert isinstance(report["false_alarms"], list)
    # Only the signal asked for, as a table.
    table = vigil("backtest", "-c", str(config_path), "--from", "-20m", "--signal", "scrape_seconds")
    assert table.returncode == 0, table.stdout + table.stderr
    assert "replayed 1 signals" in table.stdout


def test_bad_promql_is_an_error_naming_the_signal(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "vigil.yaml"
    path.write_text(
        CONFIG.format(url=stack.settings.prometheus_url)
        + "  - name: broken_ratio\n    query: sum(rate(up[1m]) / 2\n"
    )
    with pytest.raises(BacktestError, match=r"bad PromQL in signal broken_ratio: .*parse error"):
        replay(load_config(path), (time.time() - 300, time.time()))
    ran = vigil("backtest", "--config", str(path), "--from", "-5m")
    assert ran.returncode == 1
    assert "bad PromQL in signal broken_ratio" in ran.stdout
