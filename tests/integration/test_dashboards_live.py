"""Every panel of every generated dashboard returns live data: a query that returns nothing is a broken panel.

The marketplace runs under real load, vigil runs on it (scraped by Prometheus like a deployment), and a
bad release is acted out on every service in turn so that each one has real errors in Elasticsearch for
its "Recent errors" panel. Then each dashboard's variables are resolved and each target of each panel
(repeated panels once per value) is run the way Grafana would run it, against the real Prometheus and
Elasticsearch.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from elasticsearch import Elasticsearch
from typer.testing import CliRunner

from tests.integration.market import checkout
from tests.integration.vigil_process import running_vigil
from vigil.cli import app
from vigil.config import read_config
from vigil.dashboards.build import dashboards
from vigil.dashboards.queries import panel_queries, resolve_variables
from vigil.dashboards.query_runner import has_data, run
from vigil.demo.vigil_process import demo_config
from vigil.demo_marketplace.faults import Injector
from vigil.demo_marketplace.loadgen import start_load, stop_load
from vigil.demo_marketplace.runner import Marketplace
from vigil.stack import Stack
from vigil.stack.private_prometheus import free_port
from vigil.stack.settings import StackSettings
from vigil.system import load_system

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SYSTEM_FILE = REPO / "demo_marketplace" / "system.yaml"
SYSTEM = load_system(SYSTEM_FILE)


def fast_vigil_config(workdir: Path) -> dict[str, Any]:
    """The repository's vigil.yaml at a 2 s pace (detectors warm up in seconds), alerts kept local."""
    base = read_config(REPO / "vigil.yaml")
    # Incidents open for real, but no other test's Alertmanager sees this vigil's alerts.
    closed = [f"http://127.0.0.1:{free_port()}"]
    return demo_config(base, workdir=workdir, settings=StackSettings(), pace="2s", alertmanager_urls=closed)


def error_logs_since(es: Elasticsearch, service: str, since: float) -> int:
    query = {
        "bool": {
            "filter": [
                {"term": {"service.name": service}},
                {"terms": {"log.level": ["error", "critical"]}},
                {"range": {"@timestamp": {"gte": int(since * 1000), "format": "epoch_millis"}}},
            ]
        }
    }
    return int(es.count(index=SYSTEM.telemetry.logs.index, query=query)["count"])


def act_out_bad_release(market: Marketplace, es: Elasticsearch, service: str, since: float) -> None:
    """A bad release of ``service`` that fails all its work, held until its errors reach Elasticsearch.

    The test places the traffic itself (a product page reaches gateway, catalog and recommendations; a
    checkout reaches cart and orders, then payments, the payment gateway and warehouse through the
    queues) and checks the fault acted. Bounded: shipping a log line and an index refresh take seconds;
    60 s is room for a busy machine.
    """
    stop = threading.Event()
    fault = threading.Thread(
        target=Injector(market, stop=stop).inject,
        args=("bad-release", 60, {"error_rate": 1.0}),
        kwargs={"service": service},
    )
    fault.start()
    try:
        deadline = time.monotonic() + 60
        while error_logs_since(es, service, since) == 0:
            assert time.monotonic() < deadline, f"no error log of {service} reached Elasticsearch in 60 s"
            with contextlib.suppress(requests.RequestException):
                requests.get(f"{market.url('gateway')}/api/products/7", timeout=10)
            with contextlib.suppress(requests.RequestException, AssertionError):  # fails when it acts
                checkout(market)
            time.sleep(1)
    finally:
        stop.set()
        fault.join()


def test_every_panel_of_every_dashboard_returns_live_data(
    stack: Stack, marketplace: Marketplace, tmp_path: Path
) -> None:
    settings = stack.settings
    es = Elasticsearch(settings.elasticsearch_url)
    started = time.time()
    load = start_load(marketplace.url("gateway"), shape="steady", base_users=8, duration_s=240)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(stop_load, load)
        cleanup.enter_context(running_vigil(stack, fast_vigil_config(tmp_path), tmp_path))
        for service in SYSTEM.services:  # each one's "Recent errors" panel needs real errors
            act_out_bad_release(marketplace, es, service.name, started)
        boards = dashboards(SYSTEM)
        broken: list[str] = []
        deadline = time.monotonic() + 60
        while True:  # vigil's bands and Prometheus' 1m recording rules need a little time after warm-up
            broken, checked = [], 0
            start, end = datetime.fromtimestamp(started, UTC), datetime.now(UTC)
            for board in boards:
                values = resolve_variables(
                    board, prometheus_url=settings.prometheus_url, start=start, end=end
                )
                for query in panel_queries(board, values):
                    result = run(
                        query,
                        start=start,
                        end=end,
                        prometheus_url=settings.prometheus_url,
                        elasticsearch_url=settings.elasticsearch_url,
                        logs=SYSTEM.telemetry.logs,
                    )
                    checked += 1
                    if not has_data(result):
                        why = result.error or "no data"
                        where = f"{board['uid']} / {query.panel_title} / {query.ref_id}"
                        broken.append(f"{where}: {why}\n  {query.text}")
            print(f"{checked} panel queries run, {checked - len(broken)} returned data")
            if not broken or time.monotonic() > deadline:
                break
            time.sleep(5)
        annotations = [a for board in boards for a in board["annotations"]["list"] if "expr" in a]
        for annotation in annotations:  # incidents come and go; the query itself must be valid
            answer = requests.get(
                f"{settings.prometheus_url}/api/v1/query",
                params={"query": annotation["expr"]},
                timeout=10,
            ).json()
            assert answer["status"] == "success", (annotation["expr"], answer)
    assert not broken, f"{len(broken)} broken panel queries:\n" + "\n".join(broken)

    # The reviewer's view of the same queries, without Grafana.
    preview = CliRunner().invoke(
        app,
        [
            "dashboards",
            "preview",
            "vigil-catalog",
            "--system",
            str(SYSTEM_FILE),
            "--out",
            str(tmp_path / "p"),
        ],
    )
    assert preview.exit_code == 0, preview.output
    png = (tmp_path / "p" / "vigil-catalog.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert len(png) > 50_000
    assert "Recent errors" in (tmp_path / "p" / "vigil-catalog.html").read_text()
