"""``vigil.yaml``: what to watch, where to read it, how to judge it. Validated with pydantic.

A wrong field is reported with its path, e.g. ``signals.2.step: not a duration: 'fast'``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
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
Wait = Annotated[float, BeforeValidator(_duration), Field(ge=0)]  # a duration that may be 0


def _unix_time(value: Any) -> float:
    """Unix seconds from a number, an ISO 8601 string or a YAML timestamp; naive times are UTC."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not a time: {value!r} (unix seconds or ISO 8601)") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    raise ValueError(f"not a time: {value!r}")


UnixTime = Annotated[float, BeforeValidator(_unix_time)]
SNAKE_CASE = re.compile(r"^[a-z_][a-z0-9_]*$")
# Series the Elasticsearch log source produces (vigil.collectors.logs); usable as `inputs`.
LOG_SIGNALS = ("log_lines", "log_errors", "log_template_lines")


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


class Calibration(Strict):
    """Rescale a detector by the quantile of its own past scores (``vigil.detectors.calibration``)."""

    quantile: float = Field(0.999, gt=0, lt=1)
    window: int = Field(5000, ge=10)
    warmup: int = Field(500, ge=1)
    margin: float = Field(1.0, gt=0)


class DetectorConfig(BaseModel):
    """``kind`` names a detector in ``vigil.detectors.registry``; every other key is its parameter."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: str = "rolling_mad"
    calibrate: Calibration | None = None

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def input_kind(self) -> str:
        from vigil.detectors.registry import input_kind

        return input_kind(self.kind)

    @model_validator(mode="after")
    def _buildable(self) -> DetectorConfig:
        from vigil.detectors.registry import make

        try:
            make(self.kind, **self.params)
        except TypeError as error:  # an unknown or misspelt parameter
            raise ValueError(f"detector {self.kind!r}: {error}") from error
        return self


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
    inputs: list[str] | None = Field(
        None, description="other signals joined into one detector input (see vigil.runtime.joins)"
    )
    by: list[str] = Field(default_factory=list, description="labels the inputs are joined on")
    step: Duration = 15.0
    keep_labels: list[str] | None = None
    detect: bool = Field(True, description="false: collected only as an input of other signals")
    severity: Literal["page", "ticket"] = Field("ticket", description="how its alerts reach people")
    detector: DetectorConfig = Field(default_factory=DetectorConfig)

    @model_validator(mode="after")
    def _one_source(self) -> SignalConfig:
        if not SNAKE_CASE.match(self.name):
            raise ValueError(f"signal name {self.name!r} must be snake_case")
        if sum(x is not None for x in (self.query, self.scrape, self.inputs)) != 1:
            raise ValueError(
                f"signal {self.name!r} needs exactly one of `query` (PromQL), `scrape` or `inputs`"
            )
        scalar = self.detector.input_kind == "scalar"
        if self.inputs is None and not scalar:
            raise ValueError(
                f"signal {self.name!r}: detector {self.detector.kind!r} takes {self.detector.input_kind!r} "
                "input, so the signal must join other signals with `inputs`"
            )
        if self.inputs is not None and scalar:
            raise ValueError(
                f"signal {self.name!r}: detector {self.detector.kind!r} takes one series; "
                "joined `inputs` need a detector of input kind events, vector or counts"
            )
        return self

    @property
    def source(self) -> str:
        return "prometheus" if self.query is not None else "scrape" if self.scrape is not None else "inputs"


class ExclusionWindow(Strict):
    """History detectors must not learn from (an incident, a deploy, a load test): scored, never learned."""

    start: UnixTime
    end: UnixTime
    signals: list[str] = Field(default_factory=list, description="empty: every signal")
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> ExclusionWindow:
        if not self.start < self.end:
            raise ValueError(f"exclusion window must start before it ends ({self.start} >= {self.end})")
        return self


class ShardConfig(Strict):
    """Replica ``index`` of ``count`` scores only its share of the series (a stable hash of each)."""

    index: int = Field(0, ge=0)
    count: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _in_range(self) -> ShardConfig:
        if self.index >= self.count:
            raise ValueError(f"shard index {self.index} must be below the count {self.count}")
        return self

    @classmethod
    def parse(cls, text: str) -> ShardConfig:
        """``"1/3"``: the second of three replicas; ``"vigil-2/3"``: the third, named by its pod.

        A StatefulSet's pods are ``<name>-<ordinal>``, so a pod can pass ``--shard $(POD_NAME)/3``.
        """
        # The optional prefix is a pod name up to its last "-"; it must start with a letter or digit,
        # so "-1/3" stays an error rather than reading as shard 1.
        match = re.fullmatch(r"(?:[a-z0-9][-a-z0-9.]*-)?(\d+)/(\d+)", text.strip())
        expected = "INDEX/COUNT such as 0/3, or POD-NAME/COUNT such as vigil-2/3"
        problem = f"not a shard: {text!r} (expected {expected})"
        if match is None:
            raise ValueError(problem)
        try:
            return cls(index=int(match[1]), count=int(match[2]))
        except ValueError as error:  # pydantic's: the index is not below the count, or the count is 0
            raise ValueError(problem) from error


class MaintenanceConfig(Strict):
    """Planned work: alerts matching ``matchers`` (label equalities; none = all) are muted in vigil."""

    start: UnixTime
    end: UnixTime
    matchers: dict[str, str] = Field(default_factory=dict)
    reason: str = ""


class AlertingConfig(Strict):
    """From scores to incidents to Alertmanager (``vigil.alerts``). Silences live in Alertmanager."""

    enabled: bool = True
    alertmanager_urls: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:9093"], description="all members of an HA cluster"
    )
    outbox: Path | None = Field(None, description="SQLite file; default <stack home>/vigil/outbox.sqlite")
    resend_interval: Duration = 60.0
    threshold: float = Field(1.0, gt=0, description="score above which a series is anomalous")
    for_: Wait = Field(30.0, alias="for", description="above threshold this long to fire")
    keep_firing_for: Wait = Field(60.0, description="below resolve_below this long to resolve")
    resolve_below: float = Field(0.8, gt=0, description="hysteresis: resolve under this score, not under 1")
    grouping_window: Duration = Field(300.0, description="related services' alerts this close: one incident")
    group_wait: Duration = 30.0
    group_interval: Duration = 60.0
    repeat_interval: Duration = 3600.0
    base_url: str | None = Field(None, description="vigil's URL in alerts; default from server host/port")
    dashboard_url: str = Field("", description="template with {service} and {signal}")
    runbook_url: str = Field("", description="template with {service} and {signal}")
    webhook_secret_file: Path | None = Field(
        None, description="serve Alertmanager's webhook receiver, checking this shared secret"
    )
    maintenance: list[MaintenanceConfig] = Field(default_factory=list)
    context_signals: list[str] = Field(
        default_factory=lambda: ["log_lines"],
        description="scored, exported and shown, but never alerted on by themselves: what moves with the "
        "traffic rather than with trouble (the log volume grows 5x in a 5x sale)",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _hysteresis(self) -> AlertingConfig:
        if self.resolve_below > self.threshold:
            raise ValueError(f"resolve_below {self.resolve_below} must not exceed threshold {self.threshold}")
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
    log_detector: DetectorConfig = Field(
        default_factory=lambda: DetectorConfig(min_deviation=5), description="for log_lines and log_errors"
    )
    log_novelty: DetectorConfig | None = Field(
        default_factory=lambda: DetectorConfig(kind="log_novelty"),
        description="new or surging log templates per service; null to switch off",
    )
    server: ServerConfig = Field(default_factory=ServerConfig)
    shard: ShardConfig = Field(default_factory=ShardConfig)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    exclude: list[ExclusionWindow] = Field(
        default_factory=list, description="incident and deploy windows kept out of training"
    )
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
        source_of = {s.name: s.source for s in self.signals} | dict.fromkeys(LOG_SIGNALS, "elasticsearch")
        for signal in self.signals:
            if signal.inputs is None:
                continue
            unknown = [name for name in signal.inputs if name not in source_of]
            if unknown:
                raise ValueError(f"signal {signal.name!r}: unknown inputs {', '.join(unknown)}")
            sources = {source_of[name] for name in signal.inputs}
            if "inputs" in sources:
                raise ValueError(f"signal {signal.name!r}: inputs must be collected signals, not joins")
            if len(sources) > 1:  # joins are made within one collection round of one source
                raise ValueError(f"signal {signal.name!r}: inputs must come from one source, got {sources}")
        for window in self.exclude:
            unknown = [name for name in window.signals if name not in source_of]
            if unknown:
                raise ValueError(f"exclude: unknown signals {', '.join(unknown)}")
        if self.log_novelty is not None and self.log_novelty.input_kind != "counts":
            raise ValueError(f"log_novelty needs a counts detector, not {self.log_novelty.kind!r}")
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
