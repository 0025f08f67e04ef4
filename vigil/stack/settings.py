"""Where the local stack lives and which loopback ports it uses.

Every value can be overridden with an environment variable ``VIGIL_STACK_<FIELD>``,
e.g. ``VIGIL_STACK_POSTGRES_PORT=15432``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    # As root, services run as a system user that cannot enter /root, so the stack
    # lives under /var/lib; an ordinary user keeps it in their own state directory.
    if os.geteuid() == 0:
        return Path("/var/lib/vigil-stack")
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "vigil" / "stack"


Port = Annotated[int, Field(ge=1, le=65535)]


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_STACK_", frozen=True)

    home: Path = Field(default_factory=_default_home, description="data, configs, logs and pid files")
    host: str = "127.0.0.1"
    service_user: str = Field("vigil", description="system user the services run as when started by root")

    postgres_port: Port = 5432
    postgres_user: str = "vigil"
    postgres_password: str = "vigil"
    postgres_db: str = "vigil"

    redis_port: Port = 6379

    epmd_port: Port = 4369
    rabbitmq_port: Port = 5672
    rabbitmq_dist_port: Port = 25672
    rabbitmq_management_port: Port = 15672
    rabbitmq_prometheus_port: Port = 15692
    rabbitmq_user: str = "vigil"
    rabbitmq_password: str = "vigil"

    elasticsearch_version: str = "8.19.7"
    elasticsearch_port: Port = 9200
    elasticsearch_transport_port: Port = 9300
    elasticsearch_heap: str = "1g"

    prometheus_port: Port = 9090
    alertmanager_port: Port = 9093
    postgres_exporter_port: Port = 9187
    redis_exporter_port: Port = 9121
    elasticsearch_exporter_port: Port = 9114
    scrape_interval: str = "5s"

    @property
    def postgres_dsn(self) -> str:
        return (
            f"postgresql://{self.postgres_user}:{self.postgres_password}"
            f"@{self.host}:{self.postgres_port}/{self.postgres_db}"
        )

    @property
    def redis_url(self) -> str:
        return f"redis://{self.host}:{self.redis_port}/0"

    @property
    def amqp_url(self) -> str:
        return f"amqp://{self.rabbitmq_user}:{self.rabbitmq_password}@{self.host}:{self.rabbitmq_port}/%2F"

    @property
    def rabbitmq_management_url(self) -> str:
        return f"http://{self.host}:{self.rabbitmq_management_port}"

    @property
    def elasticsearch_url(self) -> str:
        return f"http://{self.host}:{self.elasticsearch_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.host}:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{self.host}:{self.alertmanager_port}"

    @property
    def webhook_secret_file(self) -> Path:
        """The Bearer token the stack's Alertmanager sends to vigil's webhook; `vigil run` reads it too."""
        return self.home / "alertmanager" / "vigil-webhook.secret"
