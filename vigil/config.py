"""``vigil.yaml``: what to watch, where to read it, how to judge it. Validated with pydantic.

A wrong field is reported with its path, e.g. ``signals.2.step: not a duration: 'fast'``.
"""

from __future__ import annotations

import math
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from vigil.durations import parse_duration


def _number(value: Any) -> float | None:
    """A YAML number as a float (infinite for an integer beyond a float's range); None if not a number."""
    if not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _duration(value: Any) -> float:
    seconds = parse_duration(value) if isinstance(value, str) else _number(value)
    if seconds is None or not math.isfinite(seconds):  # an infinite interval or step breaks the rounds
        raise ValueError(f"not a duration: {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(_duration), Field(gt=0)]
Wait = Annotated[float, BeforeValidator(_duration), Field(ge=0)]  # a duration that may be 0


def _unix_time(value: Any) -> float:
    """Unix seconds from a number, an ISO 8601 string or a YAML timestamp; naive times are UTC."""
    if (seconds := _number(value)) is not None:
        return seconds
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


def default_state_dir() -> Path:
    """Where vigil keeps what must survive a restart: ``$VIGIL_STATE_DIR``, else /var/lib/vigil as root,
    else the user's state directory."""
    if os.environ.get("VIGIL_STATE_DIR"):
        return Path(os.environ["VIGIL_STATE_DIR"])
    if os.geteuid() == 0:
        return Path("/var/lib/vigil")
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "vigil"


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
        except (ArithmeticError, MemoryError) as error:  # a parameter out of its range: 0, 10**400
            raise ValueError(f"detector {self.kind!r} cannot be built with {self.params}: {error}") from error
        return self


class MetricSpec(Strict):
    """A signal computed from one metric, the same with either source: the embedded scraper computes it
    from raw samples, a Prometheus source evaluates the equivalent PromQL (``vigil.collectors.promql``)."""

    name: str = Field(description="metric name; a histogram's base name for quantiles")
    kind: Literal["rate", "gauge", "quantile", "ratio"]
    by: list[str] = Field(default_factory=list)
    match: dict[str, str] = Field(default_factory=dict, description="label matchers; '~' starts a regex")
    quantile: float | None = Field(None, gt=0, lt=1)
    numerator_match: dict[str, str] = Field(default_factory=dict)
    aggregation: Literal["sum", "max", "min", "avg"] = "sum"
    min_rate: float | None = Field(None, ge=0, description="quantile/ratio: skip groups with fewer events/s")
    labels: dict[str, str] = Field(default_factory=dict, description="constant labels added to each series")
    rename: dict[str, str] = Field(
        default_factory=dict,
        description="grouping labels given another name in the series it makes, e.g. a client call's "
        "peer as the service the series is about",
    )
    scale: float = Field(1.0, description="multiplier, e.g. the step to turn a rate into events per step")


class SignalConfig(Strict):
    name: str
    description: str = ""
    query: str | None = Field(None, description="PromQL, evaluated by the Prometheus source")
    metric: MetricSpec | None = Field(None, description="one metric, through whichever source is configured")
    inputs: list[str] | None = Field(
        None, description="other signals joined into one detector input (see vigil.runtime.joins)"
    )
    by: list[str] = Field(default_factory=list, description="labels the inputs are joined on")
    step: Duration = Field(15.0, description="default: the config's `step`")
    keep_labels: list[str] | None = None
    detect: bool = Field(True, description="false: collected only as an input of other signals")
    severity: Literal["page", "ticket"] = Field("ticket", description="how its alerts reach people")
    limit: float | None = Field(
        None,
        description="the value above which users are hurt (an SLO's threshold): a point past it alerts at "
        "once, whatever its score and without waiting `for`, as a static rule at the SLO would",
    )
    detector: DetectorConfig = Field(default_factory=DetectorConfig)

    @model_validator(mode="before")
    @classmethod
    def _scrape_is_metric(cls, data: Any) -> Any:
        """``scrape: {metric: m, ...}``, the earlier spelling, is ``metric: {name: m, ...}``."""
        if isinstance(data, dict) and isinstance(data.get("scrape"), dict) and "metric" not in data:
            spec = dict(data["scrape"])
            data = {k: v for k, v in data.items() if k != "scrape"}
            data["metric"] = {"name": spec.pop("metric", None), **spec}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> SignalConfig:
        if not SNAKE_CASE.match(self.name):
            raise ValueError(f"signal name {self.name!r} must be snake_case")
        if sum(x is not None for x in (self.query, self.metric, self.inputs)) != 1:
            raise ValueError(
                f"signal {self.name!r} needs exactly one of `query` (PromQL), `metric` or `inputs`"
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
        """prometheus (PromQL), metric (whichever source computes metrics) or inputs (a join)."""
        return "prometheus" if self.query is not None else "metric" if self.metric is not None else "inputs"


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


# Settings of vigil's old notification timer: Alertmanager owns them now (routes and silences).
MOVED_TO_ALERTMANAGER = {
    "group_wait": "Alertmanager's route group_wait (`vigil alerts config` writes it)",
    "group_interval": "Alertmanager's route group_interval (`vigil alerts config` writes it)",
    "repeat_interval": "Alertmanager's route repeat_interval (`vigil alerts config` writes it)",
    "maintenance": "an Alertmanager silence planned ahead: `vigil alerts silence --start ... --end ...`",
}


class AlertingConfig(Strict):
    """From scores to incidents to Alertmanager (``vigil.alerts``). Silences live in Alertmanager."""

    enabled: bool = True
    alertmanager_urls: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:9093"], description="all members of an HA cluster"
    )
    outbox: Path | None = Field(None, description="SQLite file; default <state_dir>/outbox.sqlite")
    resend_interval: Duration = 60.0
    threshold: float = Field(1.0, gt=0, description="score above which a series is anomalous")
    for_: Wait = Field(30.0, alias="for", description="above threshold this long to fire")
    keep_firing_for: Wait = Field(60.0, description="below resolve_below this long to resolve")
    resolve_below: float = Field(0.8, gt=0, description="hysteresis: resolve under this score, not under 1")
    grouping_window: Duration = Field(300.0, description="related services' alerts this close: one incident")
    detection_spread: Duration = Field(
        120.0,
        description="alerts one onset causes land this close; a dependency alerting later than this after a "
        "service is not ranked as its cause",
    )
    source_down_for: Duration | None = Field(
        120.0,
        description="a source vigil reads (Prometheus, Elasticsearch, scrape targets) unreachable this long "
        "raises VigilSourceDown, a ticket: vigil is blind to its signals; null turns it off",
    )
    base_url: str | None = Field(None, description="vigil's URL in alerts; default from server host/port")
    dashboard_url: str = Field("", description="template with {service} and {signal}")
    runbook_url: str = Field("", description="template with {service} and {signal}")
    webhook_secret_file: Path | None = Field(
        None, description="serve Alertmanager's webhook receiver, checking this shared secret"
    )
    context_signals: list[str] = Field(
        default_factory=lambda: ["log_lines"],
        description="scored, exported and shown, but never alerted on by themselves: what moves with the "
        "traffic rather than with trouble (the log volume grows 5x in a 5x sale)",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        moved = [key for key in MOVED_TO_ALERTMANAGER if isinstance(data, dict) and key in data]
        if moved:
            where = "; ".join(f"{key}: now {MOVED_TO_ALERTMANAGER[key]}" for key in moved)
            raise ValueError(
                f"vigil hands every alert to Alertmanager, which owns notification timing and muting. {where}"
            )
        return data

    @model_validator(mode="after")
    def _hysteresis(self) -> AlertingConfig:
        if self.resolve_below > self.threshold:
            raise ValueError(f"resolve_below {self.resolve_below} must not exceed threshold {self.threshold}")
        return self


ExportedFamily = Literal["score", "observed", "expected", "lower", "upper"]


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(9400, ge=1, le=65535)


class VigilConfig(Strict):
    system: Path | None = Field(None, description="the watched system's file (vigil.system)")
    derive_signals: bool = Field(
        True, description="add the signals derived from the system file; `signals` override them by name"
    )
    sources: Sources = Field(default_factory=Sources)
    step: Duration = Field(15.0, description="the step of signals that set none")
    signals: list[SignalConfig] = Field(default_factory=list)
    interval: Duration = Field(15.0, description="how often to collect and detect")
    checkpoint_interval: Wait = Field(
        300.0, description="how often what the detectors learned is written to state_dir; 0: never"
    )
    training_window: Wait = Field(
        7 * 86_400.0,
        description="Prometheus history fitted at start by series with nothing learned yet; 0: none",
    )
    window_points: int = Field(
        480, ge=10, description="recent points kept per series for plots and incident summaries (2 h at 15 s)"
    )
    max_series: int = Field(100_000, ge=1)
    exported: list[ExportedFamily] = Field(
        default_factory=lambda: list(get_args(ExportedFamily)),
        min_length=1,
        description="per-series families on /metrics (vmanomaly's provide_series): every one is a sample per "
        "series per scrape; the score is what Prometheus rules read, the value and band what plots draw",
    )
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
    state_dir: Path = Field(default_factory=default_state_dir, description="what survives a restart")

    @model_validator(mode="before")
    @classmethod
    def _derived_signals(cls, data: Any) -> Any:
        """The system file's signals first, then this file's (one with the same name replaces its twin);
        each without a step of its own takes the config's."""
        if not isinstance(data, dict) or not isinstance(data.get("signals") or [], list):
            return data  # the fields' own validation says what is wrong with them
        try:
            step = _duration(data.get("step", 15.0))
        except ValueError:
            return data
        signals = list(data.get("signals") or [])
        system = data.get("system")
        if system and isinstance(system, str | Path) and data.get("derive_signals", True) is not False:
            from vigil.system import load_system
            from vigil.system.signals import derive_signals

            names = {s.get("name") for s in signals if isinstance(s, dict) and isinstance(s.get("name"), str)}
            derived = derive_signals(load_system(Path(system)), step=step)
            signals = [s for s in derived if s["name"] not in names] + signals
        signals = [{"step": step, **s} if isinstance(s, dict) else s for s in signals]
        return {**data, "signals": signals}

    @property
    def metric_source(self) -> str | None:
        """Who computes ``metric`` signals: Prometheus when configured (PromQL), else the scraper."""
        return "prometheus" if self.sources.prometheus else "scrape" if self.sources.scrape else None

    @model_validator(mode="after")
    def _sources_for_signals(self) -> VigilConfig:
        names = [s.name for s in self.signals]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"signal names must be unique; repeated: {', '.join(duplicated)}")
        if any(s.query for s in self.signals) and self.sources.prometheus is None:
            raise ValueError("signals with `query` need sources.prometheus")
        if any(s.metric for s in self.signals) and self.metric_source is None:
            raise ValueError("signals with `metric` need sources.prometheus or sources.scrape")
        resolved = {"metric": self.metric_source or "scrape"}
        source_of = {s.name: resolved.get(s.source, s.source) for s in self.signals}
        source_of |= dict.fromkeys(LOG_SIGNALS, "elasticsearch")
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
        path = ".".join(str(part) or "''" for part in item["loc"]) or "(top level)"  # '': an empty key
        lines.append(f"{path}: {item['msg']}")
    return "\n".join(lines)


def read_config(path: Path) -> dict[str, Any]:
    """The YAML of ``path`` as a dict, not yet validated; a relative ``system:`` made relative to the
    config file's folder (so the dict can be changed and validated, or written, anywhere)."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text: {error}") from error
    # ValueError: an integer of more than 4300 digits; RecursionError: too deeply nested.
    except (yaml.YAMLError, ValueError, RecursionError) as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    if isinstance(raw.get("system"), str):
        try:
            raw["system"] = str((path.parent / Path(raw["system"]).expanduser()).resolve())
        except (RuntimeError, ValueError) as error:  # ~user of no such user; a NUL byte
            raise ConfigError(f"{path}: system: not a usable path: {raw['system']!r}: {error}") from error
    return raw


def load_config(path: Path, *, system: Path | None = None) -> VigilConfig:
    """``path`` read (``read_config``) and validated; ``system`` replaces its ``system:`` file."""
    from vigil.system import SystemFileError

    raw = read_config(path)
    if system is not None:
        raw["system"] = str(system.expanduser().resolve())
    try:
        return VigilConfig.model_validate(raw)
    except SystemFileError as error:
        raise ConfigError(f"{path}: system: {error}") from error
    except ValidationError as error:
        raise ConfigError(f"{path} is not a valid vigil config:\n{format_errors(error)}") from error
