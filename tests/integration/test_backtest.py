"""`vigil backtest` against a real Prometheus holding 35 minutes of history written by this module.

The history is backfilled (``promtool tsdb create-blocks-from openmetrics``) into a private Prometheus,
so the replayed range is fully covered on a machine whose stack started a minute ago, and no other
test's traffic can change what is replayed.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.private_prometheus import History, every, prometheus_with_history
from vigil.backtest import Backtest, BacktestError, Overrides, run_backtest, select_signals
from vigil.collectors.model import SeriesKey, labels_of
from vigil.collectors.prometheus_api import align_down, align_up
from vigil.collectors.prometheus_client import PrometheusClient
from vigil.config import VigilConfig, load_config

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


# Three hours ago, on a minute: far enough back that it is history, not a scrape arriving now.
T0 = (time.time() - 3 * 3600) // 60 * 60
JOBS = {"prometheus": "127.0.0.1:9090", "node": "127.0.0.1:9100"}
FIRST, LAST = T0 - 600 + 3, T0 + 1500 + 3  # scraped 3 s after the step grid, like a real scrape phase
BATCH_SCRAPES = every(FIRST, T0 + 300, 15)  # a job that stops being scraped 5 minutes into the window


def history() -> list[History]:
    """Scrapes every 15 s from T0-10m to T0+25m: two jobs always up, one that stops, and a scrape time
    with a 2-minute spike."""
    rng = random.Random(7)
    scrapes = every(FIRST, LAST, 15)
    series = [History("up", {"job": job, "instance": where}, scrapes) for job, where in JOBS.items()]
    series.append(History("up", {"job": "batch", "instance": "127.0.0.1:9999"}, BATCH_SCRAPES))
    for job, where in JOBS.items():
        seconds = [(t, 2.0 if T0 + 600 <= t < T0 + 720 else 0.01 + rng.random() / 1000) for t, _ in scrapes]
        series.append(History("scrape_duration_seconds", {"job": job, "instance": where}, seconds))
    return series


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with prometheus_with_history(tmp_path_factory.mktemp("prometheus"), history()) as url:
        yield url


@pytest.fixture(scope="module")
def window() -> tuple[float, float]:
    # Not on the step grid at either end: alignment is part of what is tested.
    return T0 + 4.2, T0 + 1200 + 9.5


@pytest.fixture
def config_path(prometheus_url: str, tmp_path: Path) -> Path:
    path = tmp_path / "vigil.yaml"
    path.write_text(CONFIG.format(url=prometheus_url))
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
        instant = Overrides(hold=0.0, keep_firing_for=0.0)  # every run above the threshold is an episode
        return run_backtest(settings, client, signals, *window, instant, max_points=max_points)


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
            assert signal.times == reference
            # A job scraped all along covers every step of the range; one that stopped, only its part.
            by_job = {key.label_dict()["job"]: times for key, times in signal.times.items()}
            jobs = {*JOBS, "batch"} if config.name == "targets_up" else set(JOBS)
            assert set(by_job) == jobs
            assert by_job["prometheus"] == grid
            if config.name == "targets_up":
                # Its last scrape still answers for Prometheus' 5-minute lookback, then the series ends.
                last_scrape = BATCH_SCRAPES[-1][0]
                assert by_job["batch"] == [t for t in grid if t < last_scrape + 300]


def test_the_replay_is_deterministic(settings: VigilConfig, window: tuple[float, float]) -> None:
    first, second = replay(settings, window), replay(settings, window)
    assert first.episodes, "the 2-minute scrape-time spike is an episode"
    assert first.episodes == second.episodes
    assert [(i.id, i.likely_cause) for i in first.incidents] == [
        (i.id, i.likely_cause) for i in second.incidents
    ]
    # Chunking is invisible in the results.
    chunked = replay(settings, window, max_points=7)
    assert chunked.episodes == first.episodes


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
    span = ("--from", str(start), "--to", str(end))
    table = vigil("backtest", "-c", str(config_path), *span, "--signal", "scrape_seconds")
    assert table.returncode == 0, table.stdout + table.stderr
    assert "replayed 1 signals" in table.stdout


def test_bad_promql_is_an_error_naming_the_signal(prometheus_url: str, tmp_path: Path) -> None:
    path = tmp_path / "vigil.yaml"
    path.write_text(
        CONFIG.format(url=prometheus_url) + "  - name: broken_ratio\n    query: sum(rate(up[1m]) / 2\n"
    )
    with pytest.raises(BacktestError, match=r"bad PromQL in signal broken_ratio: .*parse error"):
        replay(load_config(path), (time.time() - 300, time.time()))
    ran = vigil("backtest", "--config", str(path), "--from", "-5m")
    assert ran.returncode == 1
    assert "bad PromQL in signal broken_ratio" in ran.stdout
