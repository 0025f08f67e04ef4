"""A backtest over real Prometheus history finds a real fault injected into the marketplace, and names it.

This is how users check a config against past incidents: traffic, a recorded fault, then
`run_backtest` with the marketplace's ground truth must report the fault as detected, first by the
faulty service's series, and raise no false alarm on a service that was fine.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.market import Traffic
from vigil.backtest import Overrides, run_backtest, select_signals
from vigil.backtest_faults import load_ground_truth
from vigil.collectors.prometheus_client import PrometheusClient
from vigil.config import load_config
from vigil.demo_marketplace.faults import Injector
from vigil.demo_marketplace.runner import Marketplace

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG = """\
interval: 5s
sources:
  prometheus: {{url: "{url}"}}
signals:
  - name: p99_seconds
    query: >-
      histogram_quantile(0.99, sum by (service, le) (rate(http_server_request_duration_seconds_bucket{{
      job="marketplace", service=~"payment-gateway|catalog"}}[30s])))
    step: 5s
    detector: {{kind: seasonal_baseline, direction: up, min_abs: 0.1, min_rel: 0.5, warmup: 8}}
"""


def test_a_backtest_finds_an_injected_fault_and_names_the_service(
    marketplace: Marketplace, tmp_path: Path
) -> None:
    started = time.time()
    with Traffic(marketplace):
        time.sleep(75)  # normal history for the baseline to learn
        Injector(marketplace).inject("payment-gateway-slow", 45)  # blocks while the fault acts
        time.sleep(10)
    time.sleep(12)  # Prometheus has scraped the last of it
    path = tmp_path / "vigil.yaml"
    path.write_text(CONFIG.format(url=marketplace.stack.prometheus_url))
    config = load_config(path)
    start, end = started + 5, time.time() - 5
    faults = [
        f
        for f in load_ground_truth(marketplace.ground_truth_file, start, end)
        if f.fault == "payment-gateway-slow" and f.start >= started
    ]
    assert len(faults) == 1, "the injection was recorded as ground truth"
    with PrometheusClient(marketplace.stack.prometheus_url) as client:
        result = run_backtest(
            config, client, select_signals(config, None), start, end, Overrides(hold=10.0, grace=30.0), faults
        )

    (match,) = result.faults or []
    assert match.first_alert is not None, "the backtest detects the fault"
    assert match.fault.start < match.first_alert < match.fault.end  # while it was happening
    assert match.alerts[0].key.label_dict() == {"service": "payment-gateway"}
    assert result.false_alarms == []  # catalog was fine throughout, and so was the warm-up
