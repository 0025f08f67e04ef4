"""`vigil run` against the real Prometheus and Elasticsearch: scores out, outages survived."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from tests.integration.netproxy import TcpForwarder
from tests.integration.private_prometheus import History, every, prometheus_with_history
from tests.integration.vigil_process import running_vigil
from vigil.collectors.logs import LogCollector
from vigil.collectors.prometheus_api import PrometheusClient, PrometheusCollector, PromSignal
from vigil.detectors.rolling_mad import RollingMAD
from vigil.runtime.engine import Engine
from vigil.runtime.server import create_app
from vigil.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture
def vigil_process(stack: Stack, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    config = {
        "interval": "2s",
        "training_window": "10m",  # a warm start on what the stack's Prometheus holds, however little
        "sources": {
            "prometheus": {"url": stack.settings.prometheus_url, "initial_lookback": "2m"},
            "elasticsearch": {"url": stack.settings.elasticsearch_url, "window": "30s"},
        },
        "signals": [
            {"name": "scrape_targets_up", "query": "sum by (job) (up)", "step": "5s"},
            {
                "name": "scrape_duration_seconds",
                "query": "max by (job) (scrape_duration_seconds)",
                "step": "5s",
            },
        ],
    }
    with running_vigil(stack, config, tmp_path) as (port, targets):
        yield port, targets


def test_scores_are_served_and_scraped_back_by_prometheus(
    stack: Stack, vigil_process: tuple[int, Path], tmp_path: Path
) -> None:
    port, targets = vigil_process
    deadline = time.monotonic() + 90
    found: list[dict] = []
    while not found and time.monotonic() < deadline:
        try:
            answer = requests.get(
                f"{stack.settings.prometheus_url}/api/v1/query",
                timeout=5,
                params={
                    "query": f'vigil_anomaly_score{{signal="scrape_targets_up", instance="127.0.0.1:{port}"}}'
                },
            ).json()
            found = answer["data"]["result"]
        except requests.RequestException:
            pass
        time.sleep(1)
    assert found, "Prometheus never scraped vigil's anomaly scores"
    jobs = {series["metric"]["job"] for series in found}
    assert "prometheus" in jobs, "the signal's own labels (job) are kept (honor_labels)"
    assert targets.exists()
    signals = requests.get(f"http://127.0.0.1:{port}/api/v1/signals", timeout=5).json()
    assert {s["signal"] for s in signals} >= {"scrape_targets_up", "scrape_duration_seconds"}
    assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["status"] == "ok"
    assert "warm start: " in (tmp_path / "vigil.log").read_text()


@pytest.fixture
def prometheus_with_an_hour(tmp_path: Path) -> Iterator[tuple[str, float]]:
    """A private Prometheus holding an hour of ``up`` for two jobs, two hours ago; yields (url, its start).

    The test's clock walks through that hour, so every step it asks for exists, however long ago the
    stack's own Prometheus started and whatever other tests scraped."""
    start = (time.time() - 2 * 3600) // 60 * 60
    histories = [
        History("up", {"job": job, "instance": f"127.0.0.1:{port}"}, every(start + 2, start + 3600, 5))
        for job, port in (("prometheus", 9090), ("node", 9100))
    ]
    with prometheus_with_history(tmp_path / "prometheus", histories) as url:
        yield url, start


def test_sources_going_down_and_coming_back(stack: Stack, prometheus_with_an_hour: tuple[str, float]) -> None:
    url, history_start = prometheus_with_an_hour
    prometheus = TcpForwarder(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    elastic = TcpForwarder(("127.0.0.1", stack.settings.elasticsearch_port))
    prometheus.start()
    elastic.start()
    clock = [history_start + 1200.5]
    collectors = [
        PrometheusCollector(
            "prometheus",
            PrometheusClient(f"http://127.0.0.1:{prometheus.port}", timeout=2, attempts=1),
            [PromSignal("targets_up", "sum by (job) (up)", 5.0)],
            clock=lambda: clock[0],
        ),
        LogCollector(
            "elasticsearch",
            Elasticsearch(f"http://127.0.0.1:{elastic.port}", request_timeout=2, max_retries=0),
            window=30,
            clock=lambda: clock[0],
        ),
    ]
    engine = Engine(collectors, lambda _k: RollingMAD(warmup=3), clock=lambda: clock[0])
    api = TestClient(create_app(engine))
    try:
        engine.tick()
        assert api.get("/healthz").json()["status"] == "ok"
        before = {s.key: s.last_timestamp for s in engine.series() if s.source == "prometheus"}
        assert before

        prometheus.stop()
        elastic.stop()
        clock[0] += 60
        engine.tick()  # must not raise
        health = api.get("/healthz").json()
        assert health["status"] == "degraded"
        assert not health["sources"]["prometheus"]["up"]
        assert not health["sources"]["elasticsearch"]["up"]
        assert 'vigil_source_up{source="prometheus"} 0.0' in api.get("/metrics").text

        prometheus.start()
        elastic.start()
        clock[0] += 30
        engine.tick()
        health = api.get("/healthz").json()
        assert health["status"] == "ok"
        assert len(health["sources"]["prometheus"]["gaps"]) == 1
        after = {s.key: s for s in engine.series() if s.source == "prometheus"}
        assert {k.label_dict()["job"] for k in before} == {"prometheus", "node"}
        for key, last in before.items():
            # Caught up: every 5 s step of the outage was read once Prometheus answered again.
            new = [t for t in after[key].trail.array()[:, 0].tolist() if t > last]
            assert new == [last + 5 * i for i in range(1, len(new) + 1)], key
            assert new[-1] == clock[0] // 5 * 5, key
    finally:
        prometheus.stop()
        elastic.stop()
