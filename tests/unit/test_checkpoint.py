"""Checkpoints: a restarted engine scores exactly as the one that wrote it; a bad file means a cold start."""

from __future__ import annotations

import logging
import math
import pickle
from pathlib import Path
from typing import Any

import pytest

from vigil.collectors.model import Collection, Point, SeriesKey
from vigil.config import VigilConfig
from vigil.runtime import checkpoint as cp
from vigil.runtime.build import detector_factory, detector_specs
from vigil.runtime.checkpoint import Checkpoint, spec_digest
from vigil.runtime.engine import Engine

STEP = 15.0
SERVICES = [f"svc-{i}" for i in range(12)]


class Replay:
    """The source side: point ``i`` of every series on round ``i`` (a stand-in for Prometheus)."""

    name = "replay"

    def __init__(self) -> None:
        self.round = 0

    def value(self, service: str, signal: str, i: int) -> float:
        base = 0.1 + 0.01 * SERVICES.index(service)
        return base * (1 + 0.2 * math.sin(i / 7)) if signal == "latency" else 50 + (i * 13 % 7)

    def collect(self, now: float) -> Collection:
        i, self.round = self.round, self.round + 1
        series = {
            SeriesKey(signal, (("service", s),)): [Point(1_000_000 + STEP * i, self.value(s, signal, i))]
            for s in SERVICES
            for signal in ("latency", "rate")
        }
        return Collection(self.name, series)


def config(latency_detector: dict[str, Any] | None = None, shard: str = "0/1") -> VigilConfig:
    index, count = shard.split("/")
    return VigilConfig.model_validate(
        {
            "sources": {"prometheus": {"url": "http://127.0.0.1:9"}},
            "signals": [
                {"name": "latency", "query": "q", "detector": latency_detector or {"kind": "rolling_mad"}},
                {
                    "name": "rate",
                    "query": "q",
                    "detector": {"kind": "seasonal_baseline", "direction": "down"},
                },
            ],
            "shard": {"index": int(index), "count": int(count)},
        }
    )


def engine_and_checkpoint(path: Path, settings: VigilConfig) -> tuple[Engine, Replay, Checkpoint]:
    source = Replay()
    engine = Engine([source], detector_factory(settings), shard=(settings.shard.index, settings.shard.count))
    specs = {name: spec_digest(spec) for name, spec in detector_specs(settings).items()}
    return engine, source, Checkpoint(path, specs)


def scores(engine: Engine) -> dict[SeriesKey, float | None]:
    return {state.key: state.score for state in engine.series()}


def test_a_restored_engine_scores_the_next_points_exactly_as_the_one_that_wrote_it(tmp_path: Path) -> None:
    path = tmp_path / "state" / "checkpoint.pickle"
    first, source, checkpoint = engine_and_checkpoint(path, config())
    for _ in range(60):
        first.tick()
    written = checkpoint.save(first, now=2_000_000)
    assert written.series == 2 * len(SERVICES)
    assert written.bytes == path.stat().st_size > 0

    second, other_source, restart = engine_and_checkpoint(path, config())
    restored = restart.restore(second, now=2_000_100)
    assert (restored.series, restored.changed, restored.foreign, restored.problem) == (24, 0, 0, None)
    other_source.round = source.round  # the restarted vigil reads on where the first stopped
    for _ in range(5):
        first.tick()
        second.tick()
        assert scores(second) == scores(first)
    # Only the latest point comes back (history is in Prometheus); the next ones are the same.
    assert second.series()[0].trail.array()[:, 0].tolist() == first.series()[0].trail.array()[-6:, 0].tolist()


def test_without_a_checkpoint_every_series_starts_cold_quietly(tmp_path: Path) -> None:
    engine, _, checkpoint = engine_and_checkpoint(tmp_path / "none.pickle", config())
    assert checkpoint.restore(engine, now=0).problem == "no checkpoint yet"
    assert engine.series() == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x80\x05\x95truncated", "unreadable"),
        (b"", "unreadable"),
        (pickle.dumps({"format": cp.FORMAT - 1, "series": []}), f"format {cp.FORMAT - 1}"),
        (pickle.dumps(["not", "a", "checkpoint"]), "format 'list'"),
    ],
)
def test_a_corrupt_or_old_checkpoint_is_reported_and_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, reason: str
) -> None:
    path = tmp_path / "checkpoint.pickle"
    path.write_bytes(content)
    engine, _, checkpoint = engine_and_checkpoint(path, config())
    with caplog.at_level(logging.WARNING):
        restored = checkpoint.restore(engine, now=0)
    assert restored.series == 0
    assert restored.problem is not None
    assert reason in restored.problem
    assert f"checkpoint {path} ignored, every series starts cold: " in caplog.text
    engine.tick()  # and the engine simply learns from scratch
    assert len(engine.series()) == 2 * len(SERVICES)


def test_series_of_a_signal_whose_detector_changed_start_cold(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pickle"
    first, _, checkpoint = engine_and_checkpoint(path, config())
    for _ in range(20):
        first.tick()
    checkpoint.save(first, now=0)
    changed = config({"kind": "rolling_mad", "window": 30})
    second, _, restart = engine_and_checkpoint(path, changed)
    restored = restart.restore(second, now=0)
    assert (restored.series, restored.changed) == (len(SERVICES), len(SERVICES))
    assert {state.key.signal for state in second.series()} == {"rate"}


def test_a_replica_restores_only_the_series_it_owns_now(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pickle"
    whole, _, checkpoint = engine_and_checkpoint(path, config())
    for _ in range(10):
        whole.tick()
    checkpoint.save(whole, now=0)
    half, _, restart = engine_and_checkpoint(path, config(shard="1/2"))
    restored = restart.restore(half, now=0)
    assert restored.series + restored.foreign == 2 * len(SERVICES)
    assert 0 < restored.series < 2 * len(SERVICES)
    assert all(half.owns(state.key) for state in half.series())


def test_a_failed_write_leaves_the_previous_checkpoint_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "checkpoint.pickle"
    engine, _, checkpoint = engine_and_checkpoint(path, config())
    engine.tick()
    checkpoint.save(engine, now=0)
    before = path.read_bytes()

    def disk_full(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cp.pickle, "dump", disk_full)
    engine.tick()
    with pytest.raises(OSError, match="No space left"):
        checkpoint.save(engine, now=1)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pickle"]  # no half-written leftovers
