"""Typed settings of a marketplace service, read from ``MARKETPLACE_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil.demo_marketplace.catalog import SERVICES


def _default_urls() -> dict[str, str]:
    return {s.name: f"http://127.0.0.1:{s.port}" for s in SERVICES}


class ServiceSettings(BaseSettings):
    """One replica's configuration. In Kubernetes every field comes from the pod's environment."""

    model_config = SettingsConfigDict(env_prefix="MARKETPLACE_", frozen=True)

    service: str = Field(description="which catalog service this process runs")
    replica: str = Field("0", description="replica id, shown in logs and the `instance` label")
    postgres_dsn: str = "postgresql://vigil:vigil@127.0.0.1:5432/marketplace"
    redis_url: str = "redis://127.0.0.1:6379/0"
    amqp_url: str = "amqp://vigil:vigil@127.0.0.1:5672/%2F"
    # Base URLs of the other services (JSON in the environment: MARKETPLACE_SERVICE_URLS='{"catalog": ...}').
    service_urls: dict[str, str] = Field(default_factory=_default_urls)
    log_dir: Path | None = Field(None, description="ECS JSON log file directory; stdout when unset")
    faults_file: Path | None = Field(None, description="active faults, written by `vigil marketplace fault`")
    db_pool_size: int = 10
    cache_ttl_seconds: int = 300
    cache_enabled: bool = True
    downstream_timeout_seconds: float = 2.0
    recommendations_timeout_seconds: float = 0.25  # the storefront never waits long for nice-to-haves
    payment_gateway_latency_ms: float = 120.0  # median latency of the simulated provider

    def url_of(self, service: str) -> str:
        return self.service_urls[service]
