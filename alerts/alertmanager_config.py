"""Alertmanager's configuration, generated from the system file (its services, teams and SLOs).

The routing tree splits by severity first, because that decides *how* people are told: a ``page``
wakes someone (PagerDuty, chat) and should leave soon after the first alert, a ``ticket`` is work for
office hours (chat, email) and must not nag. Below a severity, a service whose team (or which itself)
has its own channels gets its own route, so a team hears its services' alerts without touching anyone
else's; the others share the severity's receivers.

Grouping is by ``incident``: vigil puts the alerts of one problem (latency, errors, queue depth, on the
broken service and on those that call it, on the database under them) into one incident and labels
each alert with it, so the on-call gets one notification per problem, not one per service and signal.
Alerts vigil did not raise (the SLO burn-rate rules Prometheus evaluates) carry no incident and are
grouped by ``service`` as before. Alerts of no known severity fall through to the root, which groups
by ``alertname`` and ``service`` so unrelated alerts are not lumped together.

Inhibitions: while a service's SLO pages, vigil's anomaly alerts of that service are its symptoms
(or its causes) and repeat what the page says; a paging SLO also covers the slower-burning ticket of
the same SLO.

Secrets are never written into the YAML: every credential is a file path Alertmanager reads itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil.alerts.model import INCIDENT, PAGE, SERVICE, SEVERITY, TICKET
from vigil.system import System

WEBHOOK_PATH = "/api/v1/alertmanager/webhook"  # where vigil's own receiver listens (vigil.alerts.webhook)
KIND = "kind"  # label: "slo" on SLO alerts, "anomaly" on detector alerts, "vigil" on VigilSourceDown
SLO = "slo"  # label: the SLO's name on generated SLO alerts
DEFAULT = "default"  # the receiver of alerts that match no severity route

_DURATION = re.compile(r"(\d+(ms|s|m|h|d|w|y))+")


class Timing(BaseModel):
    """How long Alertmanager waits before, between and after notifications (Alertmanager durations)."""

    model_config = ConfigDict(frozen=True)
    page_group_wait: str = "10s"  # a page should leave quickly, yet gather the alerts of one burst
    ticket_group_wait: str = "1m"
    group_interval: str = "5m"  # how soon a group's changes (new alerts, resolutions) are sent
    page_repeat_interval: str = "4h"
    ticket_repeat_interval: str = "24h"  # a ticket is tracked elsewhere; reminding daily is plenty
    resolve_timeout: str = "5m"  # for alerts sent without endsAt

    @field_validator("*")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not _DURATION.fullmatch(value):
            raise ValueError(f"not an Alertmanager duration: {value!r} (examples: 500ms, 30s, 5m, 4h)")
        return value


class ServiceChannels(BaseModel):
    """Where a team (or one service) wants alerts instead of the shared channels (unset: the shared one)."""

    model_config = ConfigDict(frozen=True)
    slack_channel: str | None = None
    email_to: str | None = None
    pagerduty_routing_key_file: Path | None = None


class Receivers(BaseModel):
    """Who is told. vigil's own webhook is always a receiver; the others only once configured."""

    model_config = ConfigDict(frozen=True)

    vigil_url: str = Field(description="vigil's webhook, e.g. http://127.0.0.1:9400" + WEBHOOK_PATH)
    vigil_secret_file: Path = Field(description="the shared secret vigil's webhook expects as Bearer token")
    slack_api_url_file: Path | None = Field(None, description="a Slack-compatible incoming-webhook URL")
    slack_channel: str | None = None
    pagerduty_routing_key_file: Path | None = Field(None, description="a PagerDuty Events v2 routing key")
    email_to: str | None = None
    email_from: str = "vigil@localhost"
    email_smarthost: str | None = Field(None, description="host:port of the SMTP relay")
    email_auth_username: str | None = None
    email_auth_password_file: Path | None = None
    email_require_tls: bool = True
    teams: dict[str, ServiceChannels] = Field(
        default_factory=dict, description="per team of the system file: its services' channels"
    )
    services: dict[str, ServiceChannels] = Field(
        default_factory=dict, description="per service, over its team's channels"
    )

    @field_validator("vigil_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.match(r"https?://[^/]+", value):
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Receivers:
        files = [self.vigil_secret_file, self.slack_api_url_file, self.pagerduty_routing_key_file]
        files += [self.email_auth_password_file]
        files += [c.pagerduty_routing_key_file for c in self.services.values()]
        relative = [str(f) for f in files if f is not None and not f.is_absolute()]
        if relative:  # Alertmanager would resolve them against its config's directory, not ours
            raise ValueError(f"secret files must be absolute paths: {', '.join(relative)}")
        if (self.email_to is None) != (self.email_smarthost is None):
            raise ValueError("email needs both email_to and email_smarthost")
        if self.email_auth_password_file is not None and self.email_auth_username is None:
            raise ValueError("email_auth_password_file needs email_auth_username")
        return self


class ReceiverSettings(BaseSettings, Receivers):
    """``Receivers`` completed from the environment: ``VIGIL_ALERTS_<FIELD>``, nested fields joined by ``__``.

    E.g. ``VIGIL_ALERTS_PAGERDUTY_ROUTING_KEY_FILE=/etc/vigil/pd`` or
    ``VIGIL_ALERTS_TEAMS__CHECKOUT__SLACK_CHANNEL=#checkout``. Use plain ``Receivers`` where the output
    must not depend on who runs the generator (committed deployment files).
    """

    model_config = SettingsConfigDict(env_prefix="VIGIL_ALERTS_", env_nested_delimiter="__", frozen=True)


def _vigil(settings: Receivers) -> dict[str, Any]:
    return {
        "url": settings.vigil_url,
        "send_resolved": True,
        "http_config": {"authorization": {"credentials_file": str(settings.vigil_secret_file)}},
    }


def _slack(settings: Receivers, channel: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {"api_url_file": str(settings.slack_api_url_file), "send_resolved": True}
    if channel:  # without one, the webhook's own default channel
        config["channel"] = channel
    return config


def _email(settings: Receivers, to: str) -> dict[str, Any]:
    config: dict[str, Any] = {
        "to": to,
        "from": settings.email_from,
        "smarthost": settings.email_smarthost,
        "require_tls": settings.email_require_tls,
        "send_resolved": True,
    }
    if settings.email_auth_username:
        config["auth_username"] = settings.email_auth_username
    if settings.email_auth_password_file:
        config["auth_password_file"] = str(settings.email_auth_password_file)
    return config


def receiver(
    name: str, severity: str | None, settings: Receivers, team: ServiceChannels | None = None
) -> dict[str, Any]:
    """vigil, plus PagerDuty for pages, chat for everything, email for tickets: as far as configured."""
    team = team or ServiceChannels()
    config: dict[str, Any] = {"name": name, "webhook_configs": [_vigil(settings)]}
    routing_key = team.pagerduty_routing_key_file or settings.pagerduty_routing_key_file
    if severity == PAGE and routing_key is not None:
        config["pagerduty_configs"] = [{"routing_key_file": str(routing_key), "send_resolved": True}]
    if settings.slack_api_url_file is not None:
        config["slack_configs"] = [_slack(settings, team.slack_channel or settings.slack_channel)]
    email_to = team.email_to or settings.email_to
    if severity == TICKET and email_to is not None and settings.email_smarthost is not None:
        config["email_configs"] = [_email(settings, email_to)]
    return config


def channels_of(system: System, settings: Receivers) -> dict[str, ServiceChannels]:
    """Each service's own channels: its override, else its team's; services with neither are left out."""
    found = {}
    for service in system.services:
        team = settings.teams.get(service.team) if service.team else None
        own = settings.services.get(service.name)
        if own is not None or team is not None:
            merged = (team or ServiceChannels()).model_dump(exclude_none=True)
            merged |= (own or ServiceChannels()).model_dump(exclude_none=True)
            found[service.name] = ServiceChannels.model_validate(merged)
    return found


def _severity_route(
    severity: str,
    group_wait: str,
    repeat_interval: str,
    system: System,
    settings: Receivers,
    receivers: list[dict[str, Any]],
) -> dict[str, Any]:
    receivers.append(receiver(severity, severity, settings))
    channels = channels_of(system, settings)
    children = []
    for service in system.services:
        if service.name in channels:
            name = f"{severity}-{service.name}"
            receivers.append(receiver(name, severity, settings, channels[service.name]))
            children.append({"receiver": name, "matchers": [f'{SERVICE}="{service.name}"']})
    # Alerts outside vigil's incidents (an empty label matches a missing one): one group per service.
    children.append({"receiver": severity, "matchers": [f'{INCIDENT}=""'], "group_by": [SERVICE]})
    return {
        "receiver": severity,
        "matchers": [f'{SEVERITY}="{severity}"'],
        "group_by": [INCIDENT],
        "group_wait": group_wait,
        "repeat_interval": repeat_interval,
        "routes": children,
    }


def inhibit_rules() -> list[dict[str, Any]]:
    def slo_page() -> list[str]:  # a fresh list each time: shared ones would become YAML anchors
        return [f'{KIND}="slo"', f'{SEVERITY}="{PAGE}"']

    return [
        # The SLO page is the incident; the anomalies of that service are its details.
        {"source_matchers": slo_page(), "target_matchers": [f'{KIND}="anomaly"'], "equal": [SERVICE]},
        # A fast burn that pages makes the slow-burn ticket of the same SLO redundant.
        {
            "source_matchers": slo_page(),
            "target_matchers": [f'{KIND}="slo"', f'{SEVERITY}="{TICKET}"'],
            "equal": [SERVICE, SLO],
        },
        # An incident that pages is told once, by its page: the tickets of the same incident (its early
        # signs, the other services it reached) are its details, not a second notification. The source
        # must have an incident: ``equal`` also holds between two alerts that both lack the label.
        {
            "source_matchers": [f'{SEVERITY}="{PAGE}"', f'{INCIDENT}=~".+"'],
            "target_matchers": [f'{SEVERITY}="{TICKET}"'],
            "equal": [INCIDENT],
        },
    ]


def build_config(settings: Receivers, timing: Timing | None = None, *, system: System) -> dict[str, Any]:
    """The whole Alertmanager configuration for ``system`` as a dict (``render`` makes it YAML)."""
    timing = timing or Timing()
    # An override naming no service or team of the system would never be used: refuse it.
    services, teams = set(system.service_names), {s.team for s in system.services if s.team}
    strays = [f"service {n!r}" for n in sorted(set(settings.services) - services)]
    strays += [f"team {n!r}" for n in sorted(set(settings.teams) - teams)]
    if strays:
        raise ValueError(
            f"channels for {', '.join(strays)}, which the system {system.name!r} does not have; "
            f"services: {', '.join(sorted(services))}; teams: {', '.join(sorted(teams)) or 'none'}"
        )
    receivers = [receiver(DEFAULT, None, settings)]
    routes = [
        _severity_route(
            PAGE, timing.page_group_wait, timing.page_repeat_interval, system, settings, receivers
        ),
        _severity_route(
            TICKET, timing.ticket_group_wait, timing.ticket_repeat_interval, system, settings, receivers
        ),
    ]
    return {
        "global": {"resolve_timeout": timing.resolve_timeout},
        "route": {
            "receiver": DEFAULT,
            "group_by": ["alertname", SERVICE],
            "group_wait": timing.ticket_group_wait,
            "group_interval": timing.group_interval,
            "repeat_interval": timing.ticket_repeat_interval,
            "routes": routes,
        },
        "inhibit_rules": inhibit_rules(),
        "receivers": receivers,
    }


def render(config: dict[str, Any]) -> str:
    header = "# Generated by vigil.alerts.alertmanager_config from the system file.\n"
    return header + yaml.safe_dump(config, sort_keys=False)
