"""The generated Alertmanager configuration: valid for Alertmanager, routed and inhibited as designed."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from vigil.alerts.alertmanager_config import (
    WEBHOOK_PATH,
    Receivers,
    ReceiverSettings,
    ServiceChannels,
    Timing,
    build_config,
    render,
)
from vigil.demo_marketplace.catalog import SYSTEM
from vigil.stack.components.monitoring import Alertmanager
from vigil.stack.prometheus_config import alertmanager_config
from vigil.stack.settings import StackSettings
from vigil.system import parse_system

AMTOOL = shutil.which("amtool")
needs_amtool = pytest.mark.skipif(AMTOOL is None, reason="amtool comes with prometheus-alertmanager")
SECRET = "not-in-the-yaml-0123456789"


@pytest.fixture(autouse=True)
def _no_receivers_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # ReceiverSettings reads VIGIL_ALERTS_*: the developer's own channels must not leak into these tests.
    for name in [n for n in os.environ if n.upper().startswith("VIGIL_ALERTS_")]:
        monkeypatch.delenv(name)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _minimal(tmp_path: Path) -> ReceiverSettings:
    return ReceiverSettings(
        vigil_url="http://127.0.0.1:9400" + WEBHOOK_PATH,
        vigil_secret_file=_write(tmp_path / "vigil.secret", SECRET + "\n"),
    )


def _full(tmp_path: Path) -> ReceiverSettings:
    return ReceiverSettings(
        vigil_url="http://127.0.0.1:9400" + WEBHOOK_PATH,
        vigil_secret_file=_write(tmp_path / "vigil.secret", SECRET),
        slack_api_url_file=_write(tmp_path / "slack", "https://chat.example.com/hooks/" + SECRET),
        slack_channel="#ops",
        pagerduty_routing_key_file=_write(tmp_path / "pd", SECRET),
        email_to="ops@example.com",
        email_smarthost="mail.example.com:587",
        email_auth_username="vigil",
        email_auth_password_file=_write(tmp_path / "smtp", SECRET),
        services={"catalog": ServiceChannels(slack_channel="#catalog", email_to="catalog@example.com")},
    )


def _config_file(tmp_path: Path, config: dict[str, Any]) -> Path:
    return _write(tmp_path / "alertmanager.yml", render(config))


def _routes(path: Path, *labels: str) -> str:
    """The receivers ``amtool`` says an alert with ``labels`` goes to."""
    assert AMTOOL is not None
    result = subprocess.run(
        [AMTOOL, "config", "routes", "test", f"--config.file={path}", *labels], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def _receiver(config: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [r for r in config["receivers"] if r["name"] == name]
    return found


@needs_amtool
@pytest.mark.parametrize("settings", [_minimal, _full])
def test_amtool_accepts_the_generated_config(tmp_path: Path, settings: Any) -> None:
    path = _config_file(tmp_path, build_config(settings(tmp_path), system=SYSTEM))
    assert AMTOOL is not None
    result = subprocess.run([AMTOOL, "check-config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 inhibit rules" in result.stdout


@needs_amtool
def test_routes_by_severity_then_service(tmp_path: Path) -> None:
    path = _config_file(tmp_path, build_config(_full(tmp_path), system=SYSTEM))
    assert _routes(path, "service=catalog", "severity=page") == "page-catalog"  # the team's own channels
    assert _routes(path, "service=catalog", "severity=ticket") == "ticket-catalog"
    assert _routes(path, "service=cart", "severity=page") == "page"
    assert _routes(path, "service=catalog", "severity=page", "incident=ab12") == "page-catalog"
    assert _routes(path, "service=warehouse", "severity=ticket", "kind=slo") == "ticket"
    assert _routes(path, "service=postgres", "severity=page") == "page"  # not in the system: still paged
    assert _routes(path, "service=catalog") == "default"  # no severity: vigil and chat only
    assert _routes(path, "service=catalog", "severity=info") == "default"


@needs_amtool
def test_one_incident_is_one_group_whatever_services_it_spans(tmp_path: Path) -> None:
    config = build_config(_minimal(tmp_path), system=SYSTEM)
    for severity_route in config["route"]["routes"]:
        assert severity_route["group_by"] == ["incident"]
        # No team has channels of its own: only the route of alerts outside incidents remains.
        assert severity_route["routes"] == [
            {"receiver": severity_route["receiver"], "matchers": ['incident=""'], "group_by": ["service"]}
        ]
    path = _config_file(tmp_path, config)
    for spec in SYSTEM.services:
        assert _routes(path, f"service={spec.name}", "severity=page", "incident=ab12") == "page"
        assert _routes(path, f"service={spec.name}", "severity=page", "kind=slo") == "page"


def test_pages_leave_sooner_and_tickets_repeat_less_often(tmp_path: Path) -> None:
    config = build_config(_minimal(tmp_path), system=SYSTEM)
    page, ticket = config["route"]["routes"]
    assert page["matchers"] == ['severity="page"']
    assert ticket["matchers"] == ['severity="ticket"']
    assert (page["group_wait"], ticket["group_wait"]) == ("10s", "1m")
    assert (page["repeat_interval"], ticket["repeat_interval"]) == ("4h", "24h")
    # One notification per incident and severity, whatever services and alert names its problem spans.
    assert page["group_by"] == ticket["group_by"] == ["incident"]
    assert config["route"]["group_by"] == ["alertname", "service"]


def test_timing_is_a_parameter(tmp_path: Path) -> None:
    timing = Timing(page_group_wait="1s", ticket_group_wait="2s", group_interval="3s", resolve_timeout="30s")
    config = build_config(_minimal(tmp_path), timing, system=SYSTEM)
    page, ticket = config["route"]["routes"]
    assert (page["group_wait"], ticket["group_wait"], config["route"]["group_interval"]) == ("1s", "2s", "3s")
    assert config["global"]["resolve_timeout"] == "30s"
    with pytest.raises(ValidationError, match="not an Alertmanager duration"):
        Timing(group_interval="5 minutes")


def test_pages_inhibit_anomalies_slow_burn_tickets_and_tickets_of_their_incident(tmp_path: Path) -> None:
    rules = build_config(_minimal(tmp_path), system=SYSTEM)["inhibit_rules"]
    assert rules == [
        {
            "source_matchers": ['kind="slo"', 'severity="page"'],
            "target_matchers": ['kind="anomaly"'],
            "equal": ["service"],
        },
        {
            "source_matchers": ['kind="slo"', 'severity="page"'],
            "target_matchers": ['kind="slo"', 'severity="ticket"'],
            "equal": ["service", "slo"],
        },
        {
            "source_matchers": ['severity="page"', 'incident=~".+"'],
            "target_matchers": ['severity="ticket"'],
            "equal": ["incident"],
        },
    ]


def test_only_vigil_receives_until_other_channels_are_configured(tmp_path: Path) -> None:
    config = build_config(_minimal(tmp_path), system=SYSTEM)
    assert [r["name"] for r in config["receivers"]] == ["default", "page", "ticket"]
    for r in config["receivers"]:
        assert set(r) == {"name", "webhook_configs"}
        (hook,) = r["webhook_configs"]
        assert hook["url"] == "http://127.0.0.1:9400" + WEBHOOK_PATH
        assert hook["http_config"] == {"authorization": {"credentials_file": str(tmp_path / "vigil.secret")}}


def test_pagerduty_pages_email_tickets_chat_everything(tmp_path: Path) -> None:
    config = build_config(_full(tmp_path), system=SYSTEM)
    page, ticket, default = (_receiver(config, n) for n in ("page", "ticket", "default"))
    assert page["pagerduty_configs"] == [{"routing_key_file": str(tmp_path / "pd"), "send_resolved": True}]
    assert "email_configs" not in page
    assert "pagerduty_configs" not in ticket
    assert ticket["email_configs"][0]["to"] == "ops@example.com"
    assert ticket["email_configs"][0]["auth_password_file"] == str(tmp_path / "smtp")
    assert set(default) == {"name", "webhook_configs", "slack_configs"}
    for r in (page, ticket, default):
        assert r["slack_configs"] == [
            {"api_url_file": str(tmp_path / "slack"), "send_resolved": True, "channel": "#ops"}
        ]
    team = _receiver(config, "ticket-catalog")
    assert team["slack_configs"][0]["channel"] == "#catalog"
    assert team["email_configs"][0]["to"] == "catalog@example.com"
    assert _receiver(config, "page-catalog")["pagerduty_configs"] == page["pagerduty_configs"]


def test_secrets_stay_in_their_files(tmp_path: Path) -> None:
    text = render(build_config(_full(tmp_path), system=SYSTEM))
    assert SECRET not in text
    assert text.startswith("# Generated by vigil.alerts.alertmanager_config")
    assert "&id" not in text  # no YAML anchors: the file is for people to read too


def test_settings_reject_what_alertmanager_would_misread(tmp_path: Path) -> None:
    base = {"vigil_url": "http://127.0.0.1:9400" + WEBHOOK_PATH, "vigil_secret_file": tmp_path / "s"}
    with pytest.raises(ValidationError, match="absolute"):
        ReceiverSettings(**{**base, "pagerduty_routing_key_file": Path("pd.key")})
    with pytest.raises(ValidationError, match="email_smarthost"):
        ReceiverSettings(**base, email_to="ops@example.com")
    with pytest.raises(ValidationError, match="email_auth_username"):
        ReceiverSettings(**base, email_to="a@b.c", email_smarthost="m:25", email_auth_password_file=tmp_path)
    with pytest.raises(ValidationError, match="http"):
        ReceiverSettings(**{**base, "vigil_url": "127.0.0.1:9400"})


def test_receivers_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_ALERTS_PAGERDUTY_ROUTING_KEY_FILE", str(tmp_path / "pd"))
    monkeypatch.setenv("VIGIL_ALERTS_SERVICES__CART__SLACK_CHANNEL", "#cart")
    settings = _minimal(tmp_path)
    assert settings.pagerduty_routing_key_file == tmp_path / "pd"
    assert settings.services == {"cart": ServiceChannels(slack_channel="#cart")}
    # Plain Receivers ignore the environment: committed files must not depend on who generates them.
    plain = Receivers(vigil_url=settings.vigil_url, vigil_secret_file=settings.vigil_secret_file)
    assert plain.pagerduty_routing_key_file is None
    assert plain.services == {}


def test_team_channels_reach_every_service_of_the_team_and_a_service_override_wins(tmp_path: Path) -> None:
    teams = {"checkout": ServiceChannels(slack_channel="#checkout", email_to="checkout@example.com")}
    services = {"payments": ServiceChannels(slack_channel="#payments")}
    settings = _full(tmp_path).model_copy(update={"teams": teams, "services": services})
    config = build_config(settings, system=SYSTEM)
    checkout_team = [s.name for s in SYSTEM.services if s.team == "checkout"]
    assert {"orders", "payments", "payment-gateway"} <= set(checkout_team)
    assert _receiver(config, "ticket-orders")["slack_configs"][0]["channel"] == "#checkout"
    payments = _receiver(config, "ticket-payments")
    assert payments["slack_configs"][0]["channel"] == "#payments"  # its own, over the team's
    assert payments["email_configs"][0]["to"] == "checkout@example.com"  # the team's, where it has none
    assert [r for r in config["receivers"] if r["name"] == "ticket-gateway"] == []  # storefront: shared


def test_overrides_must_name_services_and_teams_of_the_system(tmp_path: Path) -> None:
    settings = _minimal(tmp_path).model_copy(update={"services": {"search": ServiceChannels()}})
    with pytest.raises(ValueError, match="service 'search', which the system 'marketplace' does not have"):
        build_config(settings, system=SYSTEM)
    settings = _minimal(tmp_path).model_copy(update={"teams": {"billing": ServiceChannels()}})
    with pytest.raises(ValueError, match="team 'billing'"):
        build_config(settings, system=SYSTEM)


def test_any_system_gets_its_own_routes(tmp_path: Path) -> None:
    shop = parse_system("name: shop\nservices: [{name: web, team: front}, {name: api}]")
    config = build_config(_minimal(tmp_path), system=shop)
    for severity_route in config["route"]["routes"]:
        assert [c["matchers"] for c in severity_route["routes"]] == [['incident=""']]
    teams = {"front": ServiceChannels(slack_channel="#front")}
    config = build_config(_minimal(tmp_path).model_copy(update={"teams": teams}), system=shop)
    for severity_route in config["route"]["routes"]:
        assert [c["matchers"] for c in severity_route["routes"]] == [['service="web"'], ['incident=""']]


@needs_amtool
def test_the_local_stack_runs_the_generated_config_with_its_own_secret(tmp_path: Path) -> None:
    settings = StackSettings(home=tmp_path)
    alertmanager = Alertmanager(settings)
    alertmanager.prepare()
    secret_file = alertmanager.webhook_secret_file
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text().strip()
    assert len(secret) >= 32
    text = (alertmanager.directory / "alertmanager.yml").read_text()
    assert secret not in text
    config = yaml.safe_load(text)
    assert config == alertmanager_config(settings)
    (hook,) = _receiver(config, "page")["webhook_configs"]
    assert hook["url"] == f"http://127.0.0.1:9400{WEBHOOK_PATH}"
    assert hook["http_config"]["authorization"]["credentials_file"] == str(secret_file)
    assert _routes(alertmanager.directory / "alertmanager.yml", "service=catalog", "severity=page") == "page"
    alertmanager.prepare()  # idempotent, and a vigil that read the secret keeps working
    assert secret_file.read_text().strip() == secret
