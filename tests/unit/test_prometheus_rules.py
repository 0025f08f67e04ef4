"""Generated Prometheus rules: valid for promtool, and they alert when (and only when) they should."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.prometheus_rule_tests import write_rule_tests
from vigil.alerts.prometheus_rules import Links, rule_files, write_rules
from vigil.demo_marketplace.catalog import SYSTEM
from vigil.detectors.burn_rate import DEFAULT_RULES, BurnRule
from vigil.stack import StackSettings
from vigil.stack.components.monitoring import Prometheus
from vigil.system import SLO, SystemFileError, parse_system

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool comes with prometheus")


def promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=240)


def alerting_rules(files: dict) -> list[dict]:
    return [r for f in files.values() for g in f["groups"] for r in g["rules"] if "alert" in r]


def test_every_slo_records_its_error_ratio_over_every_window() -> None:
    slos = SYSTEM.slos
    groups = rule_files(SYSTEM)["slo.rules.yml"]["groups"]
    assert [g["name"] for g in groups] == [f"slo:{s.name}" for s in slos]
    for slo, group in zip(slos, groups, strict=True):
        records = {r["record"]: r for r in group["rules"] if "record" in r}
        for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"):
            rule = records[f"slo:sli_error:ratio_rate{window}"]
            assert rule["labels"] == {"slo": slo.name, "service": slo.service}
            assert f"[{window}]" in rule["expr"]


def test_latency_slos_count_slow_requests_from_the_threshold_bucket_as_exported() -> None:
    group = {g["name"]: g for g in rule_files(SYSTEM)["slo.rules.yml"]["groups"]}
    checkout = group["slo:checkout-latency"]["rules"][0]["expr"]
    assert 'le="0.5"' in checkout
    assert 'route="/api/checkout"' in checkout
    # prometheus_client exports 60 as "60.0"; le="60" would match no series at all.
    assert 'le="60.0"' in group["slo:fulfilment-delay"]["rules"][0]["expr"]
    errors = group["slo:error-ratio"]["rules"][0]["expr"]
    assert 'status_class="5xx"' in errors
    assert "or vector(0)" in errors


def test_a_threshold_between_declared_buckets_is_refused_naming_the_slo_and_the_bounds() -> None:
    text = """
name: shop
telemetry: {histograms: {http_server_request_duration_seconds: [0.1, 0.4, 0.5]}}
services: [{name: web}]
slos: [{name: odd, service: web, kind: latency, objective: 0.99, threshold_seconds: 0.45}]
"""
    with pytest.raises(
        SystemFileError, match=r"slos\[0\]\.threshold_seconds: 0\.45 s is not a bucket bound.*0\.4, 0\.5"
    ):
        parse_system(text)
    with pytest.raises(ValueError, match="needs threshold_seconds"):
        SLO(name="x", service="s", kind="latency", objective=0.9)


def test_any_system_gets_slo_rules_in_its_own_metric_names() -> None:
    """OpenTelemetry names by default: ``http_route``, ``http_response_status_code``, ``job`` as service."""
    shop = parse_system("""
name: shop
services: [{name: web}, {name: worker}]
components: [{name: mq, kind: rabbitmq}]
queues: [{name: jobs, component: mq, producers: [web], consumers: [worker]}]
slos:
  - {name: web-latency, service: web, kind: latency, objective: 0.995, threshold_seconds: 0.25,
     selector: {http_route: "~/api/.*"}}
  - {name: web-errors, service: web, kind: error_ratio, objective: 0.999}
""")
    files = rule_files(shop)
    groups = {g["name"]: g["rules"] for g in files["slo.rules.yml"]["groups"]}
    latency = groups["slo:web-latency"][0]["expr"]
    assert (
        'http_server_request_duration_seconds_bucket{job="web", http_route=~"/api/.*", le="0.25"}' in latency
    )
    errors = groups["slo:web-errors"][0]["expr"]
    assert 'http_response_status_code=~"5.."' in errors
    burns = [r for r in groups["slo:web-errors"] if r.get("alert") == "SLOErrorBudgetBurn"]
    assert all("0.001" in r["expr"] for r in burns)  # the 99.9% objective's budget
    (backlog,) = files["backlog.rules.yml"]["groups"]
    assert {r["labels"]["service"] for r in backlog["rules"]} == {"worker"}


def test_burn_alerts_follow_the_sre_workbook_windows_with_routing_labels_and_links() -> None:
    burns = [r for r in alerting_rules(rule_files(SYSTEM)) if r["alert"] == "SLOErrorBudgetBurn"]
    windows = {
        (r["labels"]["severity"], r["labels"]["long_window"], r["labels"]["short_window"]) for r in burns
    }
    assert windows == {("page", "1h", "5m"), ("page", "6h", "30m"), ("ticket", "3d", "6h")}
    assert len(burns) == 3 * len(SYSTEM.slos)
    page = next(
        r for r in burns if r["labels"]["slo"] == "checkout-latency" and r["labels"]["long_window"] == "1h"
    )
    assert page["expr"] == (
        'slo:sli_error:ratio_rate1h{slo="checkout-latency", service="gateway"} > (14.4 * 0.01)\nand\n'
        'slo:sli_error:ratio_rate5m{slo="checkout-latency", service="gateway"} > (14.4 * 0.01)'
    )
    assert page["labels"] | {"kind": "slo", "service": "gateway"} == page["labels"]
    assert set(page["annotations"]) == {"summary", "description", "runbook_url", "dashboard_url"}


def test_every_alert_carries_severity_kind_and_links() -> None:
    rules = alerting_rules(
        rule_files(
            SYSTEM,
            links=Links(runbook="https://rb/{alert}", dashboard="https://d/{service}"),
            mirror_anomalies=True,
        )
    )
    assert {r["alert"] for r in rules} == {
        "SLOErrorBudgetBurn",
        "QueueBacklogGrowing",
        "QueueWithoutConsumers",
        "VigilAnomaly",
    }
    for rule in rules:
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["labels"]["kind"] in {"slo", "backlog", "anomaly"}
        assert rule["annotations"]["runbook_url"] == f"https://rb/{rule['alert']}"
        assert rule["annotations"]["dashboard_url"].startswith("https://d/")


def test_queue_alerts_name_the_consuming_service() -> None:
    rules = [r for r in alerting_rules(rule_files(SYSTEM)) if r["labels"]["kind"] == "backlog"]
    by_queue = {r["labels"]["queue"]: r["labels"]["service"] for r in rules}
    assert by_queue == {"payments.order-placed": "payments", "warehouse.order-paid": "warehouse"}


def test_anomaly_alerts_are_tickets_unless_a_signal_is_chosen_to_page() -> None:
    assert "vigil.rules.yml" not in rule_files(SYSTEM)  # vigil sends its own alerts: no second copy
    (ticket,) = alerting_rules({"v": rule_files(SYSTEM, mirror_anomalies=True)["vigil.rules.yml"]})
    assert (ticket["expr"], ticket["for"]) == ("vigil_anomaly_score > 1", "1m")
    mirrored = rule_files(SYSTEM, page_signals=["queue_consumers"], mirror_anomalies=True)
    rules = alerting_rules({"v": mirrored["vigil.rules.yml"]})
    assert {r["labels"]["severity"]: r["expr"] for r in rules} == {
        "ticket": 'vigil_anomaly_score{signal!~"queue_consumers"} > 1',
        "page": 'vigil_anomaly_score{signal=~"queue_consumers"} > 1',
    }


def test_write_rules_writes_one_file_per_group_set_and_no_leftovers(tmp_path: Path) -> None:
    paths = write_rules(tmp_path, rule_files(SYSTEM, mirror_anomalies=True))
    assert sorted(p.name for p in paths) == ["backlog.rules.yml", "slo.rules.yml", "vigil.rules.yml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)
    assert yaml.safe_load((tmp_path / "slo.rules.yml").read_text()) == rule_files(SYSTEM)["slo.rules.yml"]
    assert "&id" not in (tmp_path / "backlog.rules.yml").read_text()  # no YAML anchors for people to decode


def test_the_stack_prepares_prometheus_with_the_rules(tmp_path: Path) -> None:
    prometheus = Prometheus(StackSettings(home=tmp_path))
    rules = prometheus.directory / "rules"
    rules.mkdir(parents=True)
    (rules / "vigil.rules.yml").write_text("groups: []\n")  # what an earlier version generated
    prometheus.prepare()
    # No rule on vigil's scores: vigil sends its alerts to Alertmanager itself, with their incidents.
    assert sorted(p.name for p in rules.glob("*.yml")) == ["backlog.rules.yml", "slo.rules.yml"]


@needs_promtool
def test_every_generated_file_passes_promtool_check(tmp_path: Path) -> None:
    for path in write_rules(tmp_path, rule_files(SYSTEM, mirror_anomalies=True)):
        result = promtool("check", "rules", path)
        assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
@pytest.mark.slow
def test_the_rules_pass_their_promtool_unit_tests(tmp_path: Path) -> None:
    """Paging at 20% errors at minute 46 (not 45), ticketing at 2% after 36 h, a burst that stops paging,
    slow requests counted through buckets, predict_linear on queues, the anomaly rule after 1m."""
    write_rules(tmp_path, rule_files(SYSTEM, mirror_anomalies=True))
    tests = write_rule_tests(tmp_path)
    result = promtool("test", "rules", *tests, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests)


@needs_promtool
@pytest.mark.slow
def test_the_unit_tests_catch_a_burn_alert_without_a_short_window(tmp_path: Path) -> None:
    """The same tests against rules whose short window equals the long one: the burst keeps paging."""
    files = rule_files(
        SYSTEM,
        burn_rules=[
            BurnRule(r.name, r.severity, r.factor, r.long_window, r.long_window) for r in DEFAULT_RULES
        ],
        mirror_anomalies=True,
    )
    write_rules(tmp_path, files)
    (fast_burn,) = [t for t in write_rule_tests(tmp_path, files) if t.name == "slo-fast-burn.tests.yml"]
    result = promtool("test", "rules", fast_burn, cwd=tmp_path)
    assert result.returncode != 0
    assert "stops paging" in result.stdout + result.stderr
