"""Prometheus recording and alerting rules generated from the marketplace's SLOs, queues and vigil's scores.

For users who want their alerts evaluated by Prometheus itself (as Sloth does for SLOs):

* ``slo.rules.yml``: per SLO, the bad-event ratio over 5m ... 3d (``slo:sli_error:ratio_rate5m`` and so on,
  labelled ``slo`` and ``service``) and the Google SRE workbook's multi-window, multi-burn-rate alerts,
  with the same burn rules as vigil's own ``burn_rate`` detector.
* ``backlog.rules.yml``: per RabbitMQ queue of the catalog, depth projected past a threshold with
  ``predict_linear`` and a queue that holds messages without any consumer.
* ``vigil.rules.yml``: ``vigil_anomaly_score > 1``, mirroring vigil's own alerting.

Latency SLOs count bad events from histogram buckets (all requests minus those in the threshold's bucket),
which is exact only when the threshold is a bucket boundary, so generation refuses any other threshold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from prometheus_client.utils import floatToGoString
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vigil.alerts.model import PAGE, SERVICE, SEVERITY, TICKET
from vigil.demo_marketplace.catalog import QUEUES, Queue
from vigil.demo_marketplace.common.telemetry import FULFILMENT_BUCKETS, LATENCY_BUCKETS
from vigil.detectors.burn_rate import DEFAULT_RULES, BurnRule

HTTP_DURATION = "http_server_request_duration_seconds"
# The buckets the marketplace's histograms are exported with: a latency threshold must be one of them.
HISTOGRAM_BUCKETS: Mapping[str, Sequence[float]] = {
    HTTP_DURATION: LATENCY_BUCKETS,
    "marketplace_order_fulfilment_delay_seconds": FULFILMENT_BUCKETS,
}
SLI_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
KIND = "kind"


class RuleGenerationError(ValueError):
    """The SLO definitions cannot be turned into correct rules; the message says which and why."""


class SLO(BaseModel):
    """One entry of ``demo_marketplace/slo.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    service: str
    description: str = ""
    kind: Literal["latency", "error_ratio"]
    objective: float = Field(gt=0, lt=1)
    selector: str = ""  # PromQL label matchers, without braces
    threshold_seconds: float | None = Field(default=None, gt=0)
    metric: str = HTTP_DURATION  # histogram base name (latency) or request histogram (error ratio)

    @model_validator(mode="after")
    def _latency_needs_threshold(self) -> SLO:
        if self.kind == "latency" and self.threshold_seconds is None:
            raise ValueError(f"latency SLO {self.name!r} needs threshold_seconds")
        return self

    @property
    def error_budget(self) -> float:
        return round(1 - self.objective, 10)  # 0.01, not 0.010000000000000009


@dataclass(frozen=True)
class Links:
    """Where alerts send people; ``{alert}`` is the alertname, ``{service}`` and ``{subject}`` (SLO, queue or
    signal) come from the rule."""

    runbook: str = "http://127.0.0.1:3000/d/vigil-runbooks?var-alert={alert}&var-subject={subject}"
    # The service's dashboard from `vigil dashboards build` (uid vigil-<service>).
    dashboard: str = "http://127.0.0.1:3000/d/vigil-{service}"

    def annotations(self, alert: str, service: str, subject: str) -> dict[str, str]:
        fields = {"alert": alert, "service": service, "subject": subject}
        return {
            "runbook_url": self.runbook.format(**fields),
            "dashboard_url": self.dashboard.format(**fields),
        }


@dataclass(frozen=True)
class BacklogPolicy:
    """Defaults follow vigil.yaml's backlog detector: 500 messages within 300 s."""

    threshold: int = 500
    horizon_seconds: int = 300
    lookback: str = "10m"  # the trend predict_linear fits
    severity: str = PAGE


def load_slos(path: Path | None = None) -> list[SLO]:
    """The SLOs of ``path``, by default the marketplace's bundled ``slo.yaml``."""
    if path is None:
        text = resources.files("vigil.demo_marketplace").joinpath("slo.yaml").read_text()
    else:
        text = path.read_text()
    slos = [SLO.model_validate(entry) for entry in yaml.safe_load(text)["slos"]]
    names = [s.name for s in slos]
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise RuleGenerationError(f"SLO names must be unique; repeated: {', '.join(duplicates)}")
    return slos


def duration(seconds: float) -> str:
    """Prometheus' spelling of a whole number of seconds: 300 -> "5m", 259200 -> "3d"."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    raise RuleGenerationError(f"{seconds} s is not a whole number of seconds")


def _matchers(*parts: str) -> str:
    inner = ", ".join(p for p in parts if p)
    return "{" + inner + "}" if inner else ""


def _bucket_label(slo: SLO) -> str:
    """The ``le`` value of the threshold's bucket, spelt as the client library exports it ("60.0")."""
    buckets = HISTOGRAM_BUCKETS.get(slo.metric)
    if buckets is None:
        raise RuleGenerationError(
            f"SLO {slo.name!r}: unknown histogram {slo.metric!r}; known: {', '.join(HISTOGRAM_BUCKETS)}"
        )
    assert slo.threshold_seconds is not None  # guaranteed by the model for latency SLOs
    if slo.threshold_seconds not in buckets:
        raise RuleGenerationError(
            f"SLO {slo.name!r}: threshold {slo.threshold_seconds} s is not a bucket boundary of {slo.metric} "
            f"(boundaries: {', '.join(map(str, buckets))}); slow requests can only be counted exactly at a "
            "boundary, so pick one of them or add it to the histogram's buckets"
        )
    return floatToGoString(slo.threshold_seconds)


def sli_error_ratio(slo: SLO, window: str) -> str:
    """PromQL for the share of bad events over ``window``."""
    if slo.kind == "latency":
        count = f"{slo.metric}_count{_matchers(slo.selector)}"
        fast = f"{slo.metric}_bucket{_matchers(slo.selector, 'le=' + repr_label(_bucket_label(slo)))}"
        total = f"sum(rate({count}[{window}]))"
        return f"({total} - sum(rate({fast}[{window}]))) / {total}"
    count = f"{slo.metric}_count"
    # `or vector(0)`: while nothing failed there is no 5xx series at all, and the ratio is 0, not absent.
    bad = f"sum(rate({count}{_matchers(slo.selector, 'status_class=' + repr_label('5xx'))}[{window}]))"
    return f"({bad} or vector(0)) / sum(rate({count}{_matchers(slo.selector)}[{window}]))"


def repr_label(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _slo_labels(slo: SLO) -> dict[str, str]:
    return {"slo": slo.name, SERVICE: slo.service}


def burn_alert(slo: SLO, rule: BurnRule, links: Links) -> dict[str, Any]:
    """Fires while both the long and the short window burn the budget faster than ``rule.factor``."""
    long, short = duration(rule.long_window), duration(rule.short_window)
    series = _matchers(*(f"{k}={repr_label(v)}" for k, v in _slo_labels(slo).items()))
    threshold = f"({rule.factor:g} * {slo.error_budget:g})"
    expr = (
        f"slo:sli_error:ratio_rate{long}{series} > {threshold}\n"
        f"and\nslo:sli_error:ratio_rate{short}{series} > {threshold}"
    )
    spent = rule.factor * rule.long_window / (30 * 86400)  # share of a 30-day budget the long window spends
    alert = "SLOErrorBudgetBurn"
    return {
        "alert": alert,
        "expr": expr,
        "for": "2m",  # the short window already demands a sustained burn; this rides over one odd evaluation
        "labels": {
            SEVERITY: rule.severity,
            **_slo_labels(slo),
            KIND: "slo",
            "long_window": long,
            "short_window": short,
        },
        "annotations": {
            "summary": f"{slo.service}: SLO {slo.name} burns its error budget over {rule.factor:g}x too fast",
            "description": (
                f"{slo.description or slo.name} (objective {slo.objective:.2%}). Over both the last {long} "
                f"and {short} more than {rule.factor * slo.error_budget:.2%} of events were bad: at this "
                f"pace {long} spends {spent:.0%} of a 30-day error budget."
            ),
            **links.annotations(alert, slo.service, slo.name),
        },
    }


def slo_group(slo: SLO, links: Links, rules: Sequence[BurnRule] = DEFAULT_RULES) -> dict[str, Any]:
    """Recordings first: a group evaluates in order, so its alerts read this round's ratios."""
    needed = {duration(w) for r in rules for w in (r.long_window, r.short_window)}
    if missing := needed - set(SLI_WINDOWS):
        raise RuleGenerationError(f"burn rules use windows without a recording: {sorted(missing)}")
    recordings: list[dict[str, Any]] = [
        {
            "record": f"slo:sli_error:ratio_rate{w}",
            "expr": sli_error_ratio(slo, w),
            "labels": _slo_labels(slo),
        }
        for w in SLI_WINDOWS
    ]
    recordings += [
        {"record": "slo:objective:ratio", "expr": f"vector({slo.objective:g})", "labels": _slo_labels(slo)},
        {
            "record": "slo:error_budget:ratio",
            "expr": f"vector({slo.error_budget:g})",
            "labels": _slo_labels(slo),
        },
    ]
    # 1m: burn rates move slowly, and a 3d rate every few seconds would be needless work.
    return {
        "name": f"slo:{slo.name}",
        "interval": "1m",
        "rules": recordings + [burn_alert(slo, r, links) for r in rules],
    }


def backlog_group(queues: Iterable[Queue], links: Links, policy: BacklogPolicy) -> dict[str, Any]:
    rules = []
    for queue in queues:
        depth = f"rabbitmq_detailed_queue_messages{{queue={repr_label(queue.name)}}}"
        consumers = f"rabbitmq_detailed_queue_consumers{{queue={repr_label(queue.name)}}}"
        labels = {SEVERITY: policy.severity, SERVICE: queue.consumer, "queue": queue.name, KIND: "backlog"}
        horizon, horizon_s = duration(policy.horizon_seconds), policy.horizon_seconds
        rules.append(
            {
                "alert": "QueueBacklogGrowing",
                "expr": f"predict_linear({depth}[{policy.lookback}], {horizon_s}) > {policy.threshold}",
                "for": "2m",
                "labels": labels,
                "annotations": {
                    "summary": f"{queue.consumer}: queue {queue.name} will pass {policy.threshold} messages "
                    f"within {horizon}",
                    "description": (
                        f'The trend of the last {policy.lookback} projects {{{{ $value | printf "%.0f" }}}} '
                        f"messages in {queue.name} {horizon} from now: {queue.consumer} consumes slower "
                        "than orders arrive."
                    ),
                    **links.annotations("QueueBacklogGrowing", queue.consumer, queue.name),
                },
            }
        )
        rules.append(
            {
                "alert": "QueueWithoutConsumers",
                "expr": f"{consumers} == 0\nand on (vhost, queue)\n{depth} > 0",
                "for": "2m",
                "labels": labels,
                "annotations": {
                    "summary": f"{queue.consumer}: no consumer on queue {queue.name} while messages wait",
                    "description": (
                        f"{queue.name} holds messages but has had no consumer for 2 minutes: "
                        f"{queue.consumer} is down or disconnected from RabbitMQ, and orders stall."
                    ),
                    **links.annotations("QueueWithoutConsumers", queue.consumer, queue.name),
                },
            }
        )
    return {"name": "queue-backlog", "rules": rules}


def anomaly_group(links: Links, page_signals: Sequence[str] = ()) -> dict[str, Any]:
    """``vigil_anomaly_score > 1`` for 1m: a ticket, or a page for the signals in ``page_signals``.

    The alert keeps the score series' own labels (``service``, ``signal``, ``route`` ...).
    """
    selections = [(TICKET, f"signal!~{repr_label('|'.join(page_signals))}" if page_signals else "")]
    if page_signals:
        selections.append((PAGE, f"signal=~{repr_label('|'.join(page_signals))}"))
    alert = "VigilAnomaly"
    link = links.annotations(alert, "{{ $labels.service }}", "{{ $labels.signal }}")
    return {
        "name": "vigil-anomaly",
        "rules": [
            {
                "alert": alert,
                "expr": f"vigil_anomaly_score{_matchers(matcher)} > 1",
                "for": "1m",
                "labels": {SEVERITY: severity, KIND: "anomaly"},
                "annotations": {
                    "summary": "{{ $labels.service }}: {{ $labels.signal }} is anomalous",
                    "description": (
                        'vigil scores {{ $labels.signal }} {{ $value | printf "%.2f" }} '
                        "(above 1 is anomalous) for at least a minute."
                    ),
                    **link,
                },
            }
            for severity, matcher in selections
        ],
    }


def rule_files(
    slos: Sequence[SLO] | None = None,
    *,
    queues: Iterable[Queue] = QUEUES,
    links: Links | None = None,
    backlog: BacklogPolicy | None = None,
    page_signals: Sequence[str] = (),
    burn_rules: Sequence[BurnRule] = DEFAULT_RULES,
) -> dict[str, dict[str, Any]]:
    """File name -> rule file content (see ``dump``); by default for the marketplace's SLOs and queues."""
    links = links or Links()
    slos = load_slos() if slos is None else slos
    return {
        "slo.rules.yml": {"groups": [slo_group(s, links, burn_rules) for s in slos]},
        "backlog.rules.yml": {"groups": [backlog_group(queues, links, backlog or BacklogPolicy())]},
        "vigil.rules.yml": {"groups": [anomaly_group(links, page_signals)]},
    }


class _RulesDumper(yaml.SafeDumper):
    """Multi-line PromQL as ``|`` blocks, so the files read like hand-written rules."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_RulesDumper.add_representer(str, _str)
_RulesDumper.ignore_aliases = lambda *_: True  # type: ignore[method-assign]  # no &id001 anchors for shared dicts


def dump(content: dict[str, Any]) -> str:
    return yaml.dump(content, Dumper=_RulesDumper, sort_keys=False, width=1000)


def write_rules(directory: Path, files: Mapping[str, dict[str, Any]] | None = None) -> list[Path]:
    """Write the rule files into ``directory`` (Prometheus' rules dir), each atomically.

    Prometheus may reload at any moment, so a file is either the old or the new one, never half of it;
    the temporary name does not end in ``.yml`` so the ``*.yml`` glob never picks it up.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in (rule_files() if files is None else files).items():
        path = directory / name
        tmp = directory / f".{name}.tmp"
        tmp.write_text(dump(content))
        tmp.replace(path)
        written.append(path)
    return written
