"""Logs kept beside a recording replay exactly as Elasticsearch served them.

The documents are written here into a private index on the real Elasticsearch (never the demo's
``logs-marketplace-*``): catalog logs calmly for half an hour, then a burst of database errors. They are
exported as a recording keeps them, and the log collector must count the same from the file as from
Elasticsearch; a backtest over them must then alert on catalog's errors, at the window the live
collector would have closed.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests.integration.test_log_collector import BASE, FakeClock, doc, es, index_docs, prefix  # noqa: F401
from vigil.backtest import Overrides, run_backtest
from vigil.backtest_logs import RecordedLogs, export_logs
from vigil.collectors.logs import LogCollector
from vigil.collectors.prometheus_client import PrometheusClient
from vigil.config import VigilConfig

pytestmark = pytest.mark.integration

CALM_S, BURST_S = 1800, 120  # 30 one-minute windows to learn from (warm-up 10), then two of errors


def _documents() -> list[dict]:
    docs = [doc("catalog", i * 0.5, f"served product {i % 97} in {i % 13} ms") for i in range(2 * CALM_S)]
    docs += [
        doc("catalog", CALM_S + i * 0.1, f"database timeout after {3000 + i} ms", level="error")
        for i in range(10 * BURST_S)
    ]
    return docs


def test_exported_logs_count_and_alert_as_elasticsearch_served_them(
    es: Elasticsearch,  # noqa: F811
    prefix: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    docs = _documents()
    index_docs(es, prefix, docs)
    end = BASE + CALM_S + BURST_S + 60
    path = tmp_path / "logs" / "case.jsonl.gz"

    assert export_logs(es, f"{prefix}-*", BASE, end, path) == len(docs)
    assert not path.with_name(path.name + ".partial").exists()
    logs = RecordedLogs.load(path)
    assert len(logs) == len(docs)

    # The same windows, read from Elasticsearch and from the file, count the same lines and templates.
    clock = FakeClock(end + 10)
    live = LogCollector("logs", es, index=f"{prefix}-*", clock=clock, initial_lookback=end - BASE + 60)
    kept = LogCollector("logs", None, reader=logs, clock=clock, initial_lookback=end - BASE + 60)
    live_counts, kept_counts = live.collect(), kept.collect()
    assert live_counts.up
    assert kept_counts.up
    assert kept_counts.series == live_counts.series
    assert sum(p.value for points in kept_counts.series.values() for p in points if p.value) > 0

    config = VigilConfig.model_validate(
        {
            "signals": [],
            "sources": {
                "elasticsearch": {"url": "http://unused", "index": f"{prefix}-*", "initial_lookback": 60}
            },
        }
    )
    with PrometheusClient("http://127.0.0.1:1") as unused:  # no Prometheus signal: never asked
        result = run_backtest(config, unused, [], BASE, end, Overrides(), logs=logs)
    errors = [e for e in result.episodes if e.key.signal == "log_errors"]
    assert errors, result.episodes
    first = errors[0]
    assert first.key.label_dict() == {"service": "catalog"}
    # The first error window [CALM_S, CALM_S + 60) is read once closed (+ the 5 s settle), then `for`.
    assert BASE + CALM_S + 60 <= first.start <= BASE + CALM_S + BURST_S + 60, first
    assert all(e.start >= BASE + CALM_S for e in result.episodes), result.episodes  # nothing in the calm


def test_a_damaged_export_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "case.jsonl.gz"
    with gzip.open(path, "wt") as out:
        out.write('{"@timestamp": "2026-11-24T10:00:00Z", "message": "ok"}\n{"message": "no time"}\n')
    with pytest.raises(ValueError, match=r"case.jsonl.gz:2: not an exported log document"):
        RecordedLogs.load(path)
    with gzip.open(path, "wt") as out:
        out.write('{"@timestamp": "yesterday"}\n')
    with pytest.raises(ValueError, match=r":1: .*yesterday"):
        RecordedLogs.load(path)
