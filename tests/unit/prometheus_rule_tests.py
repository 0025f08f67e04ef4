"""``promtool test rules`` files for the generated rules: synthetic series, and when each alert must fire.

Generated rather than hand-written because promtool compares an alert's annotations verbatim: the expected
ones are taken from the rules themselves, so rewording an annotation does not break the tests, while the
timing, the labels and the rendered templates are still checked against what Prometheus really does.
Every scenario states its arithmetic in a comment; the times follow from the SLO's 99% objective.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vigil.alerts.model import PAGE, TICKET
from vigil.alerts.prometheus_rules import dump, rule_files
from vigil.demo_marketplace.catalog import SYSTEM

DAY_MINUTES = 24 * 60
# Three healthy days first, so the 3d window starts full, as in production.
BASELINE = 3 * DAY_MINUTES
REQUESTS_PER_MINUTE = 100
GATEWAY = {"service": "gateway", "route": "/api/checkout", "method": "POST", "job": "marketplace"}
HTTP_COUNT = "http_server_request_duration_seconds_count"
HTTP_BUCKET = "http_server_request_duration_seconds_bucket"


def counter(*segments: tuple[int, float], start: float = 0) -> str:
    """promtool series notation for a counter: ``start`` at t=0, then ``(minutes, increase per minute)``."""
    parts, value = [f"{start:g}"], start
    for minutes, per_minute in segments:
        parts.append(f"{value + per_minute:g}+{per_minute:g}x{minutes - 1}")
        value += minutes * per_minute
    return " ".join(parts)


def series(name: str, labels: Mapping[str, str], values: str) -> dict[str, str]:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def minutes(m: int) -> str:
    return f"{m}m"


def _find_rule(files: Mapping[str, dict[str, Any]], alert: str, **labels: str) -> dict[str, Any]:
    for content in files.values():
        for group in content["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == alert and labels.items() <= rule["labels"].items():
                    return rule
    raise LookupError(f"no {alert} rule with labels {labels}")


def _render(template: str, labels: Mapping[str, str], value: str) -> str:
    """The two template forms the rules use: ``{{ $labels.x }}`` and ``{{ $value | printf "%.Nf" }}``."""
    text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), template)
    return re.sub(r'\{\{ \$value \| printf "%\.(\d)f" \}\}', lambda m: f"{float(value):.{m.group(1)}f}", text)


def expected_alert(
    files: Mapping[str, dict[str, Any]],
    alert: str,
    series_labels: Mapping[str, str],
    value: str = "0",
    **rule_labels: str,
) -> dict[str, Any]:
    """The alert promtool must see: the series' labels plus the rule's, annotations rendered."""
    rule = _find_rule(files, alert, **rule_labels)
    labels = {**series_labels, **rule["labels"]}
    return {
        "exp_labels": labels,
        "exp_annotations": {k: _render(v, labels, value) for k, v in rule["annotations"].items()},
    }


def _error_ratio_series(healthy: int, segments: Sequence[tuple[int, float]]) -> list[dict[str, str]]:
    """Gateway traffic at 100/min: ``healthy`` minutes without errors, then ``(minutes, error share)``."""
    ok = counter((healthy, REQUESTS_PER_MINUTE), *((m, REQUESTS_PER_MINUTE * (1 - s)) for m, s in segments))
    bad = counter((healthy, 0), *((m, REQUESTS_PER_MINUTE * s) for m, s in segments))
    return [
        series(HTTP_COUNT, {**GATEWAY, "status_class": "2xx"}, ok),
        series(HTTP_COUNT, {**GATEWAY, "status_class": "5xx"}, bad),
    ]


def _one_group(files: Mapping[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """One group of the generated rules: promtool evaluates every loaded group at every step, and three days
    of one-minute steps over all SLOs would take minutes."""
    for content in files.values():
        for group in content["groups"]:
            if group["name"] == name:
                return {"groups": [group]}
    raise LookupError(f"no rule group {name!r}")


def _ratio(record: str, slo: str, service: str, value: float, at: str) -> dict[str, Any]:
    """``record`` of ``slo`` at ``at``, to 4 decimals (two rates' quotient is not exact in binary)."""
    return {
        "expr": f'round({record}{{slo="{slo}"}}, 0.0001)',
        "eval_time": at,
        "exp_samples": [{"labels": f'{{service="{service}", slo="{slo}"}}', "value": value}],
    }


ERROR_SLO = {"slo": "error-ratio", "service": "gateway"}
ERROR_SLO_RULES = "slo-error-ratio.extract.yml"


def _burn(files: Mapping[str, dict[str, Any]], long: str, severity: str) -> dict[str, Any]:
    return expected_alert(
        files, "SLOErrorBudgetBurn", ERROR_SLO, slo="error-ratio", long_window=long, severity=severity
    )


def _alerts(at: int, expected: list[dict[str, Any]]) -> dict[str, Any]:
    return {"eval_time": minutes(at), "alertname": "SLOErrorBudgetBurn", "exp_alerts": expected}


def fast_burn_tests(files: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    on = BASELINE  # the minute the errors start
    return {
        "rule_files": [ERROR_SLO_RULES],
        "evaluation_interval": "1m",
        "tests": [
            {
                # 20% errors = 20x the 1% budget. The 1h ratio is t/300 after t minutes: above 14.4% from
                # t = 44 (43/300 = 14.3%), the 5m one from t = 4; for: 2m -> fires at t = 46, not at 45.
                # The 6h ratio (t/1800) passes 6% only at t = 109, so until then the 6h/30m rule is quiet.
                "name": "sustained 20% errors page through the 1h/5m rule after 46 minutes",
                "interval": "1m",
                "input_series": _error_ratio_series(BASELINE, [(120, 0.2)]),
                "alert_rule_test": [
                    _alerts(on + 30, []),
                    _alerts(on + 45, []),
                    _alerts(on + 46, [_burn(files, "1h", PAGE)]),
                    _alerts(on + 110, [_burn(files, "1h", PAGE)]),
                    _alerts(on + 111, [_burn(files, "1h", PAGE), _burn(files, "6h", PAGE)]),
                ],
                "promql_expr_test": [
                    _ratio("slo:sli_error:ratio_rate1h", **ERROR_SLO, value=0.1, at=minutes(on + 30))
                ],
            },
            {
                # 15 minutes of 100% errors: the 1h ratio passes 14.4% at t = 9 (fires at 11) and stays
                # above it (25%) for most of the hour after, but the 5m ratio is 0 from t = 20 on.
                "name": "a 15-minute total outage pages, and stops paging 5 minutes after it ends",
                "interval": "1m",
                "input_series": _error_ratio_series(BASELINE, [(15, 1.0), (40, 0.0)]),
                "alert_rule_test": [
                    _alerts(on + 10, []),
                    _alerts(on + 11, [_burn(files, "1h", PAGE)]),
                    _alerts(on + 19, [_burn(files, "1h", PAGE)]),
                    _alerts(on + 20, []),
                    _alerts(on + 50, []),
                ],
                "promql_expr_test": [
                    _ratio("slo:sli_error:ratio_rate1h", **ERROR_SLO, value=0.25, at=minutes(on + 21))
                ],
            },
        ],
    }


def slow_burn_tests(files: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    on = BASELINE
    return {
        "rule_files": [ERROR_SLO_RULES],
        "evaluation_interval": "5m",  # the 3d/6h rule needs no finer steps, and 5m ones keep the test quick
        "tests": [
            {
                # 2% errors = 2x the budget: never the 14.4% or 6% a page needs. The 3d ratio is t/216000
                # (2t errors of 432000 requests), above 1% only after t = 2160 min (36 h); 6h's long before.
                "name": "sustained 2% errors open a ticket after 36 hours and never page",
                "interval": "1m",
                "input_series": _error_ratio_series(BASELINE, [(2200, 0.02)]),
                "alert_rule_test": [
                    _alerts(on + 600, []),
                    _alerts(on + 2150, []),
                    _alerts(on + 2170, [_burn(files, "3d", TICKET)]),
                ],
                "promql_expr_test": [
                    _ratio("slo:sli_error:ratio_rate6h", **ERROR_SLO, value=0.02, at=minutes(on + 600))
                ],
            },
        ],
    }


def latency_tests() -> dict[str, Any]:
    return {"rule_files": ["slo.rules.yml"], "evaluation_interval": "1m", "tests": [_latency_test()]}


def _latency_test() -> dict[str, Any]:
    """Bad = all requests minus those within the threshold's bucket, on the SLO's own routes only."""
    checkout = {**GATEWAY}
    products = {**GATEWAY, "route": "/api/products/{product_id}", "method": "GET"}
    search = {**GATEWAY, "route": "/api/search", "method": "GET"}  # in no SLO: all slow, must not count
    fulfilment = {"service": "warehouse", "job": "marketplace"}
    inputs = [
        # checkout: 40/min, 30 within 0.5 s (20 within 0.3 s, a bucket the checkout SLO ignores) -> 25% bad
        series(HTTP_COUNT, {**checkout, "status_class": "2xx"}, counter((30, 40))),
        series(HTTP_BUCKET, {**checkout, "status_class": "2xx", "le": "0.3"}, counter((30, 20))),
        series(HTTP_BUCKET, {**checkout, "status_class": "2xx", "le": "0.5"}, counter((30, 30))),
        # product pages: 40/min, 20 within 0.3 s -> 50% bad
        series(HTTP_COUNT, {**products, "status_class": "2xx"}, counter((30, 40))),
        series(HTTP_BUCKET, {**products, "status_class": "2xx", "le": "0.3"}, counter((30, 20))),
        series(HTTP_COUNT, {**search, "status_class": "2xx"}, counter((30, 40))),
        series(HTTP_BUCKET, {**search, "status_class": "2xx", "le": "0.3"}, counter((30, 0))),
        series(HTTP_BUCKET, {**search, "status_class": "2xx", "le": "0.5"}, counter((30, 0))),
        # fulfilment: 8/min, 6 within 60 s; the client library spells that bucket le="60.0" -> 25% bad
        series("marketplace_order_fulfilment_delay_seconds_count", fulfilment, counter((30, 8))),
        series(
            "marketplace_order_fulfilment_delay_seconds_bucket",
            {**fulfilment, "le": "60.0"},
            counter((30, 6)),
        ),
    ]

    return {
        "name": "latency SLOs count the requests slower than the threshold bucket",
        "interval": "1m",
        "input_series": inputs,
        "promql_expr_test": [
            _ratio("slo:sli_error:ratio_rate5m", "checkout-latency", "gateway", 0.25, "20m"),
            _ratio("slo:sli_error:ratio_rate5m", "browse-latency", "gateway", 0.5, "20m"),
            _ratio("slo:sli_error:ratio_rate5m", "fulfilment-delay", "warehouse", 0.25, "20m"),
        ],
    }


RABBIT = {"job": "rabbitmq-detailed", "instance": "127.0.0.1:15692", "vhost": "/"}
PAYMENTS = {**RABBIT, "queue": "payments.order-placed"}
WAREHOUSE = {**RABBIT, "queue": "warehouse.order-paid"}
DEPTH, CONSUMERS = "rabbitmq_detailed_queue_messages", "rabbitmq_detailed_queue_consumers"


def backlog_tests(files: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    def growing(value: str) -> dict[str, Any]:
        return expected_alert(files, "QueueBacklogGrowing", PAYMENTS, value, queue=PAYMENTS["queue"])

    return {
        "rule_files": ["backlog.rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                # payments grows by 50/min: projected depth in 5 min = depth + 250, above 500 once the depth
                # passes 250 (t = 6), firing after for: 2m at t = 8 with 400 + 250 = 650 projected.
                # warehouse holds a steady ~300 (noise of +-10): projected ~300, never.
                "name": "predict_linear fires on a growing queue, not on a steady one",
                "interval": "1m",
                "input_series": [
                    series(DEPTH, PAYMENTS, "0+50x30"),
                    series(DEPTH, WAREHOUSE, " ".join(["300 310 290 305 295"] * 6)),
                    series(CONSUMERS, PAYMENTS, "1x30"),
                    series(CONSUMERS, WAREHOUSE, "1x30"),
                ],
                "alert_rule_test": [
                    {"eval_time": "7m", "alertname": "QueueBacklogGrowing", "exp_alerts": []},
                    {"eval_time": "8m", "alertname": "QueueBacklogGrowing", "exp_alerts": [growing("650")]},
                    {"eval_time": "20m", "alertname": "QueueWithoutConsumers", "exp_alerts": []},
                ],
            },
            {
                # 1000 messages draining by 100/min: deep, but projected to be empty: no backlog alert.
                "name": "a deep queue that drains is not a growing backlog",
                "interval": "1m",
                "input_series": [series(DEPTH, PAYMENTS, "1000-100x10"), series(CONSUMERS, PAYMENTS, "1x10")],
                "alert_rule_test": [
                    {"eval_time": "2m", "alertname": "QueueBacklogGrowing", "exp_alerts": []},
                    {"eval_time": "5m", "alertname": "QueueBacklogGrowing", "exp_alerts": []},
                ],
            },
            {
                # warehouse loses its consumer at t = 0; messages arrive from t = 4 -> fires at t = 6.
                # payments also has no consumer but an empty queue: nothing waits, no alert.
                "name": "no consumer while messages wait",
                "interval": "1m",
                "input_series": [
                    series(CONSUMERS, WAREHOUSE, "0x15"),
                    series(DEPTH, WAREHOUSE, "0x3 5+0x11"),
                    series(CONSUMERS, PAYMENTS, "0x15"),
                    series(DEPTH, PAYMENTS, "0x15"),
                ],
                "alert_rule_test": [
                    {"eval_time": "5m", "alertname": "QueueWithoutConsumers", "exp_alerts": []},
                    {
                        "eval_time": "6m",
                        "alertname": "QueueWithoutConsumers",
                        "exp_alerts": [
                            expected_alert(
                                files, "QueueWithoutConsumers", WAREHOUSE, queue=WAREHOUSE["queue"]
                            )
                        ],
                    },
                ],
            },
        ],
    }


def anomaly_tests(files: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    catalog = {
        "signal": "http_p99_latency_seconds",
        "service": "catalog",
        "route": "/products",
        "job": "vigil",
    }
    cart = {"signal": "http_p99_latency_seconds", "service": "cart", "route": "/carts", "job": "vigil"}
    return {
        "rule_files": ["vigil.rules.yml"],
        "evaluation_interval": "15s",
        "tests": [
            {
                # catalog scores 1.5 from 75 s on -> pending at 75 s, firing at 135 s; cart stays at 0.9.
                "name": "an anomaly score above 1 for a minute raises a ticket",
                "interval": "15s",
                "input_series": [
                    series("vigil_anomaly_score", catalog, "0.5x4 1.5x20"),
                    series("vigil_anomaly_score", cart, "0.9x24"),
                ],
                "alert_rule_test": [
                    {"eval_time": "120s", "alertname": "VigilAnomaly", "exp_alerts": []},
                    {
                        "eval_time": "135s",
                        "alertname": "VigilAnomaly",
                        "exp_alerts": [
                            expected_alert(files, "VigilAnomaly", catalog, "1.5", severity="ticket")
                        ],
                    },
                ],
            }
        ],
    }


def rule_tests(files: Mapping[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """File name -> content of the promtool test files (``*.tests.yml``) for ``files`` (by default
    ``rule_files()``) and of the extracts of ``files`` they load."""
    files = rule_files(SYSTEM, mirror_anomalies=True) if files is None else files
    return {
        ERROR_SLO_RULES: _one_group(files, "slo:error-ratio"),
        "slo-fast-burn.tests.yml": fast_burn_tests(files),
        "slo-slow-burn.tests.yml": slow_burn_tests(files),
        "slo-latency.tests.yml": latency_tests(),
        "backlog.tests.yml": backlog_tests(files),
        "vigil.tests.yml": anomaly_tests(files),
    }


def write_rule_tests(directory: Path, files: Mapping[str, dict[str, Any]] | None = None) -> list[Path]:
    """Write the test files next to the rule files they load; returns the ``*.tests.yml`` to hand to
    ``promtool test rules``."""
    tests = []
    for name, content in rule_tests(files).items():
        path = directory / name
        path.write_text(dump(content))
        if name.endswith(".tests.yml"):
            tests.append(path)
    return tests
