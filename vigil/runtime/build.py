"""Turn a validated ``VigilConfig`` into collectors, detectors and a running service."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vigil.collectors.model import Collector, SeriesKey
from vigil.config import DetectorConfig, ElasticsearchSource, SignalConfig, VigilConfig
from vigil.detectors.base import AnyDetector
from vigil.detectors.calibration import Calibrated
from vigil.detectors.exclusion import Excluding
from vigil.detectors.registry import make
from vigil.runtime.joins import Composite

if TYPE_CHECKING:  # collectors are imported only for the sources a config uses
    from elasticsearch import Elasticsearch

    from vigil.collectors.logs import LogCollector
    from vigil.collectors.prometheus_api import PromSignal
    from vigil.collectors.scrape import ScrapeSignal

LOG_NOVELTY_SIGNAL = "log_template_novelty"


def make_detector(config: DetectorConfig, exclude: Sequence[tuple[float, float]] = ()) -> AnyDetector:
    """The configured detector, calibrated if asked, and blind to the excluded windows when learning."""
    detector = make(config.kind, **config.params)
    if config.calibrate is not None:
        detector = Calibrated(detector, **config.calibrate.model_dump())
    if exclude:  # outermost: an excluded point teaches neither the detector nor its calibration
        detector = Excluding(detector, exclude)
    return detector


def detector_factory(config: VigilConfig) -> Callable[[SeriesKey], AnyDetector | None]:
    """Each series' fresh detector, or None for series collected only as inputs of composites."""
    by_signal: dict[str, DetectorConfig | None] = {
        s.name: s.detector if s.detect else None for s in config.signals
    }
    by_signal |= {"log_lines": config.log_detector, "log_errors": config.log_detector}
    by_signal["log_template_lines"] = None  # too many series to score one by one: see log_novelty
    if config.log_novelty is not None:
        by_signal[LOG_NOVELTY_SIGNAL] = config.log_novelty

    def detector_for(key: SeriesKey) -> AnyDetector | None:
        detector = by_signal.get(key.signal)
        if detector is None:
            return None
        exclude = [(w.start, w.end) for w in config.exclude if not w.signals or key.signal in w.signals]
        return make_detector(detector, exclude)

    return detector_for


def detector_specs(config: VigilConfig) -> dict[str, object]:
    """Per signal, everything its series' learned state depends on: a checkpoint taken under other
    settings does not fit (see ``vigil.runtime.checkpoint``)."""
    specs: dict[str, object] = {
        s.name: s.model_dump(mode="json", exclude={"description", "severity"}) for s in config.signals
    }
    specs |= {"log_lines": config.log_detector.model_dump(mode="json")}
    specs |= {"log_errors": specs["log_lines"]}
    if config.log_novelty is not None:
        specs[LOG_NOVELTY_SIGNAL] = config.log_novelty.model_dump(mode="json")
    excluded = [w.model_dump(mode="json") for w in config.exclude]
    return {name: {"signal": spec, "exclude": excluded} for name, spec in specs.items()}


def build_composites(config: VigilConfig) -> list[Composite]:
    composites = [
        Composite(s.name, s.detector.input_kind, tuple(s.inputs), tuple(s.by))
        for s in config.signals
        if s.inputs is not None and s.detect
    ]
    if config.sources.elasticsearch is not None and config.log_novelty is not None:
        composites.append(Composite(LOG_NOVELTY_SIGNAL, "counts", ("log_template_lines",), ("service",)))
    return composites


def build_collectors(config: VigilConfig, templates_state: Path | None = None) -> list[Collector]:
    """The config's collectors; with ``templates_state`` the log templates are kept in that file (and
    loaded from it), so a template keeps its id, and its series, across restarts."""
    collectors: list[Collector] = []
    sources = config.sources
    via_prometheus = config.metric_source == "prometheus"
    prom_signals = [s for s in config.signals if s.query is not None or (via_prometheus and s.metric)]
    if sources.prometheus is not None and prom_signals:
        from vigil.collectors.prometheus_api import PrometheusCollector
        from vigil.collectors.prometheus_client import PrometheusClient

        p = sources.prometheus
        client = PrometheusClient(p.url, headers=p.headers, timeout=p.timeout)
        collectors.append(
            PrometheusCollector(
                "prometheus",
                client,
                [prom_signal(s) for s in prom_signals],
                initial_lookback=p.initial_lookback,
                max_lookback=p.max_lookback,
            )
        )
    scrape_signals = [s for s in config.signals if s.metric is not None and not via_prometheus]
    if sources.scrape is not None and scrape_signals:
        from vigil.collectors.scrape import ScrapeCollector, ScrapeTarget, targets_from_file_sd

        targets = [ScrapeTarget(t.url, t.labels) for t in sources.scrape.targets]
        for path in sources.scrape.file_sd:
            targets += targets_from_file_sd(path)
        collectors.append(
            ScrapeCollector(
                "scrape", targets, [metric_signal(s) for s in scrape_signals], timeout=sources.scrape.timeout
            )
        )
    if sources.elasticsearch is not None:
        from elasticsearch import Elasticsearch

        from vigil.collectors.log_templates import LogTemplates

        e = sources.elasticsearch
        es = Elasticsearch(e.url, request_timeout=10, max_retries=1)
        collectors.append(log_collector(e, es, templates=LogTemplates(templates_state)))
    return collectors


def log_collector(source: ElasticsearchSource, es: Elasticsearch | None, **extra: Any) -> LogCollector:
    """The collector ``vigil run`` reads ``source``'s logs with; ``extra``: its templates, or a
    recording's reader and clock in place of ``es`` (``vigil.backtest``)."""
    from vigil.collectors.logs import LogCollector

    return LogCollector(
        "elasticsearch",
        es,
        index=source.index,
        window=source.window,
        initial_lookback=source.initial_lookback,
        **extra,
    )


def metric_signal(signal: SignalConfig) -> ScrapeSignal:
    """A ``metric`` signal's definition, which the scraper computes and ``to_promql`` renders."""
    from vigil.collectors.scrape import ScrapeSignal

    spec = signal.metric
    assert spec is not None, f"signal {signal.name} has no metric spec"
    return ScrapeSignal(
        name=signal.name,
        metric=spec.name,
        kind=spec.kind,
        by=tuple(spec.by),
        match=dict(spec.match),
        quantile=spec.quantile,
        numerator_match=dict(spec.numerator_match),
        aggregation=spec.aggregation,
        min_rate=spec.min_rate,
        labels=dict(spec.labels),
        rename=dict(spec.rename),
        scale=spec.scale,
    )


def promql_of(signal: SignalConfig) -> str | None:
    """What Prometheus evaluates for ``signal``: its query, or its metric spec as PromQL; None for joins."""
    if signal.query is not None:
        return signal.query
    if signal.metric is not None:
        from vigil.collectors.promql import to_promql

        return to_promql(metric_signal(signal))
    return None


def prom_signal(signal: SignalConfig) -> PromSignal:
    from vigil.collectors.prometheus_api import PromSignal

    query = promql_of(signal)
    assert query is not None, f"signal {signal.name} is a join, not a query"
    keep = tuple(signal.keep_labels) if signal.keep_labels is not None else None
    return PromSignal(signal.name, query, signal.step, keep)
