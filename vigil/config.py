"""``vigil.yaml``: what to watch, where to read it, how to judge it. Validated with pydantic.

A wrong field is reported with its path, e.g. ``signals.2.step: not a duration: 'fast'``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from vigil.durations import parse_duration


def _duration(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f"not a duration: {value!r}")


Duration = Annotated[float, BeforeValidator(_duration), Field(gt=0)]
SNAKE_CASE = re.compile(r"^[a-z_][a-z0-9_]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrometheusSource(Strict):
    url: str
    headers: dict[str, str] = Field(default_factory=dict, description="e.g. Authorization: Bearer ...")
    timeout: Duration = 10.0
    initial_lookback: Duration = 600.0
    max_lookback: Duration = 3 * 3600.0


class ScrapeTargetConfig(Strict):
    url: str
    labels: dict[str, str] = Field(default_factory=dict)


class ScrapeSource(Strict):
    targets: list[ScrapeTargetConfig] = Field(default_factory=list)
    file_sd: list[Path] = Field(default_factory=list, description="Prometheus file_sd JSON files")
    timeout: Duration = 5.0


class ElasticsearchSource(Strict):
    url: str
    index: str = "logs-marketplace-*"
    window: Duration = 60.0
    initial_lookback: Duration = 600.0


class Sources(Strict):
    prometheus: PrometheusSource | None = None
    scrape: ScrapeSource | None = None
    elasticsearch: ElasticsearchSource | None = None


class DetectorConfig(Strict):
    kind: Literal["rolling_mad"] = "rolling_mad"
    window: int = Field(120, ge=5)
    warmup: int = Field(10, ge=1)
    threshold: float = Field(4.0, gt=0)
    min_deviation: float = Field(0.0, ge=0, description="deviations smaller than this never score above 1")


class ScrapeSpec(Strict):
    metric: str
    kind: Literal["rate", "gauge", "quantile", "ratio"]
    by: list[str] = Field(default_factory=list)
    match: dict[str, str] = Field(default_factory=dict)
    quantile: float | None = Field(None, gt=0, lt=1)
    numerator_match: dict[str, str] = Field(default_factory=dict)
    aggregation: Literal["sum", "max", "avg"] = "sum"


class SignalConfig(Strict):
    name: str
    description: str = ""
    query: str | None = Field(None, description="PromQL, evaluated by the Prometheus source")
    scrape: ScrapeSpec | None = Field(None, description="computed by the embedded /metrics scraper")
    step: Duration = 15.0
    keep_labels: list[str] | None = None
    detector: DetectorConfig = Field(default_factory=DetectorConfig)

    @model_validator(mode="after")
    def _one_source(self) -> SignalConfig:
        if not SNAKE_CASE.match(self.name):
            raise ValueError(f"signal name {self.name!r} must be snake_case")
        if (self.query is None) == (self.scrape is None):
            raise ValueError(f"signal {self.name!r} needs exactly one of `query` (PromQL) or `scrape`")
        return self


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(9400, ge=1, le=65535)


class VigilConfig(Strict):
    sources: Sources = Field(default_factory=Sources)
    signals: list[SignalConfig] = Field(default_factory=list)
    interval: Duration = Field(15.0, description="how often to collect and detect")
    window_points: int = Field(2880, ge=10, description="recent points kept in memory per series")
    max_series: int = Field(100_000, ge=1)
    log_detector: DetectorConfig = Field(default_factory=lambda: DetectorConfig(min_deviation=5))
    server: ServerConfig = Field(default_factory=ServerConfig)
    register_targets: Path | None = Field(
        None, description="file_sd JSON to write so Prometheus scrapes vigil"
    )

    @model_validator(mode="after")
    def _sources_for_signals(self) -> VigilConfig:
        names = [s.name for s in self.signals]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"signal names must be unique; repeated: {', '.join(duplicated)}")
        if any(s.query for s in self.signals) and self.sources.prometheus is None:
            raise ValueError("signals with `query` need sources.prometheus")
        if any(s.scrape for s in self.signals) and self.sources.scrape is None:
            raise ValueError("signals with `scrape` need sources.scrape")
        return self


class ConfigError(ValueError):
    pass


def format_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"{path}: {item['msg']}")
    return "\n".join(lines)


def load_config(path: Path) -> VigilConfig:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    try:
        return VigilConfig.model_validate(raw or {})
    except ValidationError as error:
        raise ConfigError(f"{path} is not a valid vigil config:\n{format_errors(error)}") from error
