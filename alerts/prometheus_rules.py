"""Prometheus recording and alerting rules generated from a system file's SLOs, queues and vigil's scores.

For users who want their alerts evaluated by Prometheus itself (as Sloth does for SLOs):

* ``slo.rules.yml``: per SLO, the bad-event ratio over 5m ... 3d (``slo:sli_error:ratio_rate5m`` and so on,
  labelled ``slo`` and ``service``) and the Google SRE workbook's multi-window, multi-burn-rate alerts,
  with the same burn rules as vigil's own ``burn_rate`` detector.
* ``backlog.rules.yml``: per RabbitMQ queue of the system, depth projected past a threshold with
  ``predict_linear`` and a queue that holds messages without any consumer.
* ``vigil.rules.yml`` (only with ``mirror_anomalies``): ``vigil_anomaly_score > 1``, for setups where
  vigil exports scores but does not send alerts itself. Where it does (``vigil run`` with an
  Alertmanager), this rule would raise every anomaly a second time, without its incident.

Latency SLOs count bad events from histogram buckets (all requests minus those in the threshold's bucket),
which is exact only when the threshold is a bucket boundary: the system file's ``telemetry.histograms``
declares the bounds, and validation refuses a threshold that is not one of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.utils import floatToGoString

from vigil.alerts.model import PAGE, SERVICE, SEVERITY, TICKET
from vigil.collectors.promql import matchers, quote
from vigil.detectors.burn_rate import DEFAULT_RULES, BurnRule
from vigil.system import SLO, Queue, System

SLI_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
KIND = "kind"


class RuleGenerationError(ValueError):
    """The SLO definitions cannot be turned into correct rules; the message says which and why."""


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


def duration(seconds: float) -> str:
    """Prometheus' spelling of a whole number of seconds: 300 -> "5m", 259200 -> "3d"."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    raise RuleGenerationError(f"{seconds} s is not a whole number of seconds")


def slo_events(system: System, slo: SLO) -> dict[str, str]:
    """The matchers of an SLO's events: the system's own series, of the SLO's service, as it selects."""
    t = system.telemetry
    return {**t.selector, t.service_label: slo.service, **slo.selector}


def sli_error_ratio(system: System, slo: SLO, window: str) -> str:
    """PromQL for the share of bad events over ``window``."""
    metric, events = system.slo_metric(slo), slo_events(system, slo)
    total = f"sum(rate({metric}_count{matchers(events)}[{window}]))"
    if slo.kind == "latency":
        assert slo.threshold_seconds is not None  # guaranteed by the model for latency SLOs
        # Written as the client libraries write bucket bounds ("0.5", "60.0"); the system's declared
        # bounds are checked to contain the threshold when the file is validated.
        fast = f"{metric}_bucket{matchers(events, {'le': floatToGoString(slo.threshold_seconds)})}"
        return f"({total} - sum(rate({fast}[{window}]))) / {total}"
    http = system.telemetry.http
    # `or vector(0)`: while nothing failed there is no error series at all, and the ratio is 0, not absent.
    bad = f"sum(rate({metric}_count{matchers(events, {http.status_label: http.server_error})}[{window}]))"
    return f"({bad} or vector(0)) / {total}"


def repr_label(value: str) -> str:
    return quote(value)


def _slo_labels(slo: SLO) -> dict[str, str]:
    return {"slo": slo.name, SERVICE: slo.service}


def burn_alert(slo: SLO, rule: BurnRule, links: Links) -> dict[str, Any]:
    """Fires while both the long and the short window burn the budget faster than ``rule.factor``."""
    long, short = duration(rule.long_window), duration(rule.short_window)
    series = matchers(_slo_labels(slo))
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


def slo_group(
    system: System, slo: SLO, links: Links, rules: Sequence[BurnRule] = DEFAULT_RULES
) -> dict[str, Any]:
    """Recordings first: a group evaluates in order, so its alerts read this round's ratios."""
    needed = {duration(w) for r in rules for w in (r.long_window, r.short_window)}
    if missing := needed - set(SLI_WINDOWS):
        raise RuleGenerationError(f"burn rules use windows without a recording: {sorted(missing)}")
    recordings: list[dict[str, Any]] = [
        {
            "record": f"slo:sli_error:ratio_rate{w}",
            "expr": sli_error_ratio(system, slo, w),
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


def rabbitmq_queues(system: System) -> list[Queue]:
    """Queues held by a RabbitMQ component: its per-queue series name them."""
    brokers = {c.name for c in system.components if c.kind == "rabbitmq"}
    return [q for q in system.queues if q.component in brokers and q.consumers]


def backlog_group(system: System, links: Links, policy: BacklogPolicy) -> dict[str, Any]:
    rules = []
    for queue in rabbitmq_queues(system):
        depth = f"rabbitmq_detailed_queue_messages{{queue={repr_label(queue.name)}}}"
        attached = f"rabbitmq_detailed_queue_consumers{{queue={repr_label(queue.name)}}}"
        consumer = queue.consumers[0]  # the first consumer answers for the backlog (routing)
        who, plural = " and ".join(queue.consumers), len(queue.consumers) > 1
        labels = {SEVERITY: policy.severity, SERVICE: consumer, "queue": queue.name, KIND: "backlog"}
        horizon, horizon_s = duration(policy.horizon_seconds), policy.horizon_seconds
        rules.append(
            {
                "alert": "QueueBacklogGrowing",
                "expr": f"predict_linear({depth}[{policy.lookback}], {horizon_s}) > {policy.threshold}",
                "for": "2m",
                "labels": labels,
                "annotations": {
                    "summary": f"{consumer}: queue {queue.name} will pass {policy.threshold} messages "
                    f"within {horizon}",
                    "description": (
                        f'The trend of the last {policy.lookback} projects {{{{ $value | printf "%.0f" }}}} '
                        f"messages in {queue.name} {horizon} from now: {who} "
                        f"{'consume' if plural else 'consumes'} slower than messages arrive."
                    ),
                    **links.annotations("QueueBacklogGrowing", consumer, queue.name),
                },
            }
        )
        rules.append(
            {
                "alert": "QueueWithoutConsumers",
                "expr": f"{attached} == 0\nand on (vhost, queue)\n{depth} > 0",
                "for": "2m",
                "labels": labels,
                "annotations": {
                    "summary": f"{consumer}: no consumer on queue {queue.name} while messages wait",
                    "description": (
                        f"{queue.name} holds messages but has had no consumer for 2 minutes: "
                        f"{who} {'are' if plural else 'is'} down or disconnected from RabbitMQ, "
                        f"and nothing downstream of {queue.name} moves."
                    ),
                    **links.annotations("QueueWithoutConsumers", consumer, queue.name),
                },
            }
        )
    return {"name": "queue-backlog", "rules": rules}


def anomaly_group(links: Links, page_signals: Sequence[str] = ()) -> dict[str, Any]:
    """``vigil_anomaly_score > 1`` for 1m: a ticket, or a page for the signals in ``page_signals``.

    The alert keeps the score series' own labels (``service``, ``signal``, ``route`` ...).
    """
    pages = "|".join(page_signals)
    selections = [(TICKET, f"{{signal!~{repr_label(pages)}}}" if page_signals else "")]
    if page_signals:
        selections.append((PAGE, f"{{signal=~{repr_label(pages)}}}"))
    alert = "VigilAnomaly"
    link = links.annotations(alert, "{{ $labels.service }}", "{{ $labels.signal }}")
    return {
        "name": "vigil-anomaly",
        "rules": [
            {
                "alert": alert,
                "expr": f"vigil_anomaly_score{matcher} > 1",
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
    system: System,
    *,
    links: Links | None = None,
    backlog: BacklogPolicy | None = None,
    page_signals: Sequence[str] = (),
    burn_rules: Sequence[BurnRule] = DEFAULT_RULES,
    mirror_anomalies: bool = False,
) -> dict[str, dict[str, Any]]:
    """File name -> rule file content (see ``dump``) for ``system``'s SLOs and queues (and vigil's
    scores with ``mirror_anomalies``)."""
    links = links or Links()
    files = {
        "slo.rules.yml": {"groups": [slo_group(system, s, links, burn_rules) for s in system.slos]},
        "backlog.rules.yml": {"groups": [backlog_group(system, links, backlog or BacklogPolicy())]},
    }
    if mirror_anomalies:
        files["vigil.rules.yml"] = {"groups": [anomaly_group(links, page_signals)]}
    return files


class _RulesDumper(yaml.SafeDumper):
    """Multi-line PromQL as ``|`` blocks, so the files read like hand-written rules."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_RulesDumper.add_representer(str, _str)
_RulesDumper.ignore_aliases = lambda *_: True  # type: ignore[method-assign]  # no &id001 anchors for shared dicts


def dump(content: dict[str, Any]) -> str:
    return yaml.dump(content, Dumper=_RulesDumper, sort_keys=False, width=1000)


def write_rules(directory: Path, files: Mapping[str, dict[str, Any]], *, prune: bool = False) -> list[Path]:
    """Write the rule files into ``directory`` (Prometheus' rules dir), each atomically.

    Prometheus may reload at any moment, so a file is either the old or the new one, never half of it;
    the temporary name does not end in ``.yml`` so the ``*.yml`` glob never picks it up. With ``prune``
    (a directory only vigil writes), rule files it no longer generates are removed: an upgrade must not
    leave Prometheus evaluating rules that were dropped.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in files.items():
        path = directory / name
        tmp = directory / f".{name}.tmp"
        tmp.write_text(dump(content))
        tmp.replace(path)
        written.append(path)
    if prune:
        for stale in sorted(set(directory.glob("*.yml")) - set(written)):
            stale.unlink()
    return written
