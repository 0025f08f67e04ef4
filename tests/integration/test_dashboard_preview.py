"""A hand-built dashboard run against the real Prometheus and Elasticsearch under load, then drawn."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vigil.dashboards.preview import render
from vigil.dashboards.queries import panel_queries, resolve_variables
from vigil.dashboards.query_runner import QueryResult, has_data, run
from vigil.demo_marketplace.loadgen.runner import start_load, stop_load
from vigil.demo_marketplace.runner import Marketplace
from vigil.stack import Stack
from vigil.system import load_system

pytestmark = pytest.mark.integration

# Where the marketplace's logs are and how their fields are named.
MARKETPLACE_LOGS = load_system(
    Path(__file__).resolve().parents[2] / "demo_marketplace" / "system.yaml"
).telemetry.logs

PROM = {"type": "prometheus", "uid": "${datasource}"}
LOGS = {"type": "elasticsearch", "uid": "${logs}"}
REQUESTS = "http_server_request_duration_seconds_count"
RATE = f'sum by (service) (rate({REQUESTS}{{service=~"$service"}}[$__rate_interval]))'
P99 = (
    "histogram_quantile(0.99, sum by (le) "
    '(rate(http_server_request_duration_seconds_bucket{service="$service"}[$__rate_interval])))'
)


def panel(
    panel_id: int, kind: str, title: str, grid: tuple[int, int, int, int], **extra: Any
) -> dict[str, Any]:
    x, y, w, h = grid
    return {
        "id": panel_id,
        "type": kind,
        "title": title,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        **extra,
    }


def prom(expr: str, legend: str = "", *, instant: bool = False) -> dict[str, Any]:
    return {"datasource": PROM, "refId": "A", "expr": expr, "legendFormat": legend, "instant": instant}


def dashboard() -> dict[str, Any]:
    level_counts = {
        "datasource": LOGS,
        "refId": "A",
        "query": "service.name:$service",
        "timeField": "@timestamp",
        "metrics": [{"id": "1", "type": "count"}],
        "bucketAggs": [
            {
                "id": "2",
                "type": "terms",
                "field": "log.level",
                "settings": {"size": "10", "min_doc_count": "1"},
            },
            {"id": "3", "type": "date_histogram", "field": "@timestamp", "settings": {"interval": "auto"}},
        ],
    }
    newest = {**level_counts, "metrics": [{"id": "1", "type": "logs", "settings": {"limit": "20"}}]}
    del newest["bucketAggs"]
    unit = {"defaults": {"unit": "reqps"}}
    return {
        "uid": "vigil-preview-test",
        "title": "Preview <test> & more",
        "time": {"from": "now-15m", "to": "now"},
        "templating": {
            "list": [
                {"type": "datasource", "name": "datasource", "query": "prometheus"},
                {"type": "datasource", "name": "logs", "query": "elasticsearch"},
                {
                    "type": "query",
                    "name": "service",
                    "datasource": PROM,
                    "query": f'label_values({REQUESTS}{{job="marketplace"}}, service)',
                    "regex": "/^(gateway|catalog)$/",
                    "multi": True,
                    "includeAll": True,
                },
            ]
        },
        "panels": [
            panel(1, "row", "Traffic", (0, 0, 24, 1), collapsed=False, panels=[]),
            panel(
                2,
                "timeseries",
                "Request rate by service",
                (0, 1, 16, 8),
                datasource=PROM,
                fieldConfig=unit,
                targets=[prom(RATE, "{{service}}")],
            ),
            panel(
                3,
                "stat",
                "Requests now",
                (16, 1, 8, 8),
                datasource=PROM,
                fieldConfig=unit,
                targets=[prom(f"sum({RATE})", instant=True)],
            ),
            panel(
                4,
                "timeseries",
                "p99 latency",
                (0, 9, 12, 7),
                datasource=PROM,
                repeat="service",
                fieldConfig={"defaults": {"unit": "s"}},
                targets=[prom(P99, "p99")],
            ),
            panel(
                5,
                "row",
                "Logs",
                (0, 16, 24, 1),
                collapsed=True,
                panels=[
                    panel(
                        6,
                        "timeseries",
                        "Log lines by level",
                        (0, 17, 12, 8),
                        datasource=LOGS,
                        targets=[level_counts],
                    ),
                    panel(7, "logs", "Newest log lines", (12, 17, 12, 8), datasource=LOGS, targets=[newest]),
                ],
            ),
        ],
    }


@pytest.fixture(scope="module")
def loaded(stack: Stack, marketplace: Marketplace) -> Iterator[tuple[datetime, datetime]]:
    """A real load; yields once every panel has data, and is stopped after the tests
    (not left to run out its time: nothing waits for it)."""
    started = datetime.now(UTC)
    load = start_load(marketplace.url("gateway"), shape="steady", base_users=5, duration_s=600)
    try:
        yield started - timedelta(minutes=5), _when_every_panel_has_data(stack, started)
    finally:
        stop_load(load)


def _when_every_panel_has_data(stack: Stack, started: datetime) -> datetime:
    """The end of a window in which every panel has data: requests scraped by Prometheus, and log lines
    shipped to Elasticsearch and searchable (on a busy machine the logs can trail the metrics)."""
    start = started - timedelta(minutes=5)
    deadline = time.monotonic() + 150  # locust starts, two scrapes, a shipper round; room for a busy machine
    while True:
        end = datetime.now(UTC)
        values = resolve_variables(
            dashboard(), prometheus_url=stack.settings.prometheus_url, start=start, end=end
        )
        results = {
            q.panel_title: run(q, start=start, end=end, **urls(stack))
            for q in panel_queries(dashboard(), values)
        }
        empty = sorted(title for title, result in results.items() if not has_data(result))
        rate, now = results.get("Request rate by service"), results.get("Requests now")
        flowing = not empty and rate is not None and now is not None
        # Requests in the last scrapes too (the instant panel): a busy machine can stall the load a while.
        if flowing and rate.series[0].values[-3:].max() > 0 and now.series[0].values[0] > 0:
            return end
        assert time.monotonic() < deadline, (
            f"no data under load for {empty}: {[r.error for r in results.values()]}"
        )
        time.sleep(2)


def urls(stack: Stack) -> dict[str, Any]:
    """Where the queries go: the stack's Prometheus and Elasticsearch, the marketplace's log index."""
    return {
        "prometheus_url": stack.settings.prometheus_url,
        "elasticsearch_url": stack.settings.elasticsearch_url,
        "logs": MARKETPLACE_LOGS,
    }


def test_every_panel_query_returns_data(stack: Stack, loaded: tuple[datetime, datetime]) -> None:
    start, end = loaded
    values = resolve_variables(
        dashboard(), prometheus_url=stack.settings.prometheus_url, start=start, end=end
    )
    assert values["service"] == ["catalog", "gateway"]
    assert values["datasource"] == ["vigil-prometheus"]
    assert values["logs"] == ["vigil-elasticsearch"]
    queries = panel_queries(dashboard(), values)
    assert [q.panel_title for q in queries] == [
        "Request rate by service",
        "Requests now",
        "p99 latency (catalog)",
        "p99 latency (gateway)",
        "Log lines by level",
        "Newest log lines",
    ]
    results: dict[str, QueryResult] = {
        q.panel_title: run(q, start=start, end=end, **urls(stack)) for q in queries
    }
    for title, result in results.items():
        assert result.error is None, f"{title}: {result.error}"
        assert has_data(result), f"{title} has no data"
    by_service = results["Request rate by service"].series
    assert sorted(s.name for s in by_service) == ["catalog", "gateway"]
    assert results["Requests now"].series[0].values[0] > 0
    levels = results["Log lines by level"]
    assert levels.hits
    assert {s.name for s in levels.series} <= {
        "debug",
        "info",
        "warning",
        "error",
        "critical",
    }
    assert (
        sum(s.values.sum() for s in levels.series) == levels.hits
    )  # every line falls in one histogram bucket
    logs = results["Newest log lines"].logs
    assert 0 < len(logs) <= 20
    assert {line.service for line in logs} <= {"catalog", "gateway"}
    assert [line.timestamp for line in logs] == sorted((line.timestamp for line in logs), reverse=True)


def test_an_error_is_captured_not_raised(stack: Stack, loaded: tuple[datetime, datetime]) -> None:
    start, end = loaded
    broken = panel_queries(
        {"panels": [panel(1, "timeseries", "Broken", (0, 0, 8, 8), targets=[prom("sum(rate(x[5m])")])]}, {}
    )[0]
    result = run(broken, start=start, end=end, **urls(stack))
    assert result.error
    assert "parse" in result.error
    assert not has_data(result)


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert header[12:16] == b"IHDR"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_render_writes_a_png_and_a_self_contained_html(
    stack: Stack, loaded: tuple[datetime, datetime], tmp_path: Path
) -> None:
    start, end = loaded
    png, html = render(dashboard(), start=start, end=end, out_dir=tmp_path, **urls(stack))
    width, height = png_size(png)
    assert width == 1800
    assert 600 < height < 2000
    assert png.stat().st_size > 30_000  # drawn panels, not an empty canvas
    page = html.read_text()
    for title in (
        "Traffic",
        "Request rate by service",
        "p99 latency (gateway)",
        "Newest log lines",
    ):
        assert title in page
    assert page.count("data:image/png;base64,") == 6
    assert "<script" not in page
    assert 'src="http' not in page  # self-contained: every picture is inline
    assert "Preview &lt;test&gt; &amp; more" in page  # autoescaped, like the log lines
    assert "<test>" not in page
