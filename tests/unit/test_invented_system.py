"""Nothing in vigil is marketplace-shaped: an invented system (tests/systems/observatory.yaml) whose
services, queue and SLOs share no name with the bundled marketplace gets dashboards, Prometheus rules,
an Alertmanager config and signals of its own, valid for the real tools (promtool, amtool)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from vigil.alerts.alertmanager_config import (
    WEBHOOK_PATH,
    ReceiverSettings,
    ServiceChannels,
    build_config,
    render,
)
from vigil.alerts.prometheus_rules import rule_files, write_rules
from vigil.collectors.promql import to_promql
from vigil.config import VigilConfig
from vigil.dashboards import build
from vigil.dashboards.lint import lint
from vigil.runtime.build import metric_signal
from vigil.system import load_system

OBSERVATORY_FILE = Path(__file__).resolve().parents[1] / "systems" / "observatory.yaml"
OBSERVATORY = load_system(OBSERVATORY_FILE)
MARKETPLACE_FILE = Path(__file__).resolve().parents[2] / "demo_marketplace" / "system.yaml"
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool comes with prometheus")
needs_amtool = pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool comes with alertmanager")


def marketplace_names() -> set[str]:
    market = load_system(MARKETPLACE_FILE)
    names = {s.name for s in market.services} | {q.name for q in market.queues} | {market.name}
    return names | {slo.name for slo in market.slos} | {r.name for r in market.resources}


def test_it_shares_nothing_with_the_marketplace_and_has_the_shapes_the_marketplace_lacks() -> None:
    market = load_system(MARKETPLACE_FILE)
    ours = {s.name for s in OBSERVATORY.services} | {q.name for q in OBSERVATORY.queues}
    ours |= {slo.name for slo in OBSERVATORY.slos} | {OBSERVATORY.name}
    assert not ours & marketplace_names()
    assert len(OBSERVATORY.services) != len(market.services)
    assert any(len(q.consumers) == 2 for q in OBSERVATORY.queues)
    databases = {c.name for c in OBSERVATORY.components if c.kind == "postgresql"}
    assert any(not databases & set(s.uses) for s in OBSERVATORY.services)


def test_its_dashboards_lint_clean_and_name_only_its_own_services() -> None:
    boards = {board["uid"]: board for board in build.dashboards(OBSERVATORY)}
    services = [f"vigil-{s.name}" for s in OBSERVATORY.services]
    assert sorted(boards) == sorted(["vigil-overview", "vigil-infrastructure", *services])
    assert [finding for board in boards.values() for finding in lint(board)] == []
    everything = "\n".join(build.render(OBSERVATORY).values())
    assert "raw-frames" in everything
    assert "portal-latency" in everything
    for name in marketplace_names():
        assert f'"{name}"' not in everything, name
        assert f"={name}" not in everything, name


@needs_promtool
def test_its_rules_pass_promtool_and_alert_in_its_own_names(tmp_path: Path) -> None:
    files = rule_files(OBSERVATORY)
    for path in write_rules(tmp_path, files):
        result = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    text = "\n".join(yaml.safe_dump(content) for content in files.values())
    assert 'slo="portal-latency"' in text or "slo: portal-latency" in text
    assert "raw-frames" in text  # the backlog rule watches its one RabbitMQ queue
    assert not any(name in text for name in marketplace_names() if len(name) > 4)


@needs_promtool
def test_every_derived_signal_is_promql_that_promtool_accepts(tmp_path: Path) -> None:
    # Recording rules are the one place promtool parses arbitrary PromQL offline.
    config = VigilConfig.model_validate(
        {
            "system": str(OBSERVATORY_FILE),
            "step": "15s",
            "sources": {"prometheus": {"url": "http://127.0.0.1:9"}},
        }
    )
    signals = [s for s in config.signals if s.metric]
    assert len(signals) > 15
    rules = [{"record": f"check:{s.name}", "expr": to_promql(metric_signal(s))} for s in signals]
    path = tmp_path / "signals.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "signals", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


@needs_amtool
def test_its_alertmanager_config_passes_amtool_and_routes_to_its_teams(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("observatory-secret-0123456789")
    settings = ReceiverSettings(
        vigil_url="http://127.0.0.1:9400" + WEBHOOK_PATH,
        vigil_secret_file=secret,
        slack_api_url_file=secret,
        teams={"night-ops": ServiceChannels(slack_channel="#night-ops")},
    )
    path = tmp_path / "alertmanager.yml"
    path.write_text(render(build_config(settings, system=OBSERVATORY)))
    check = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    def routes(*labels: str) -> str:
        result = subprocess.run(
            ["amtool", "config", "routes", "test", f"--config.file={path}", *labels],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout.strip()

    config = build_config(settings, system=OBSERVATORY)
    channels = {
        r["name"]: [c.get("channel") for c in r.get("slack_configs", [])] for r in config["receivers"]
    }
    assert channels[routes("severity=page", "service=scheduler")] == ["#night-ops"]
    assert "#night-ops" not in channels[routes("severity=page", "service=archive")]
    config_text = json.dumps(config)
    assert not any(f'"{name}"' in config_text for name in marketplace_names())


def test_alerts_belong_to_the_service_its_telemetry_names_by_job() -> None:
    from vigil.runtime.observe import owner_in

    owner = owner_in(OBSERVATORY)  # OpenTelemetry's conventions: a series' service is its job
    assert owner({"job": "archive", "signal": "http_error_ratio"}) == "archive"
    assert owner({"job": "ledger-exporter"}) is None  # an exporter's job is not a service
    assert owner({"queue": "raw-frames"}) == "calibrator"  # the first consumer answers for a backlog
    assert owner({"service": "portal", "job": "archive"}) == "portal"


def test_cli_generates_its_alertmanager_config_and_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from vigil.cli import app

    for name in [n for n in os.environ if n.startswith("VIGIL_ALERTS_")]:
        monkeypatch.delenv(name)
    runner, secret = CliRunner(), tmp_path / "secret"
    secret.write_text("observatory-secret-0123456789")
    system = str(OBSERVATORY_FILE)
    monkeypatch.setenv("VIGIL_ALERTS_SERVICES__ARCHIVE__SLACK_CHANNEL", "#archive")  # its own route
    result = runner.invoke(app, ["alerts", "config", "--system", system, "--secret-file", str(secret)])
    assert result.exit_code == 0, result.output
    routes = json.dumps(yaml.safe_load(result.output)["route"])
    assert 'service=\\"archive\\"' in routes
    monkeypatch.delenv("VIGIL_ALERTS_SERVICES__ARCHIVE__SLACK_CHANNEL")
    result = runner.invoke(app, ["alerts", "config", "--system", system])
    assert result.exit_code == 1
    assert "vigil_secret_file" in result.output
    result = runner.invoke(
        app, ["alerts", "rules", "--system", system, "--out", str(tmp_path / "rules"), "--mirror-anomalies"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "rules").iterdir()) == [
        "backlog.rules.yml",
        "slo.rules.yml",
        "vigil.rules.yml",
    ]
