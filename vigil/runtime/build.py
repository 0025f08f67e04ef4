"""Turn a validated ``VigilConfig`` into collectors, detectors and a running service."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from vigil.collectors.model import Collector, SeriesKey
from vigil.config import DetectorConfig, ScrapeSpec, SignalConfig, VigilConfig
from vigil.detectors.base import Detector
from vigil.detectors.rolling_mad import RollingMAD

if TYPE_CHECKING:  # collectors are imported only for the sources a config uses
    from vigil.collectors.scrape import ScrapeSignal

LOG_SIGNALS = ("log_lines", "log_errors", "log_template_lines")


def make_detector(config: DetectorConfig) -> Detector:
    return RollingMAD(
        window=config.window,
        warmup=config.warmup,
        threshold=config.threshold,
        min_deviation=config.min_deviation,
    )


def detector_factory(config: VigilConfig) -> Callable[[SeriesKey], Detector]:
    by_signal = {s.name: s.detector for s in config.signals}

    def detector_for(key: SeriesKey) -> Detector:
        return make_detector(by_signal.get(key.signal, config.log_detector))

    return detector_for


def build_collectors(config: VigilConfig) -> list[Collector]:
    collectors: list[Collector] = []
    sources = config.sources
    prom_signals = [s for s in config.signals if s.query is not None]
    if sources.prometheus is not None and prom_signals:
        from vigil.collectors.prometheus_api import PrometheusCollector, PromSignal
        from vigil.collectors.prometheus_client import PrometheusClient

        p = sources.prometheus
        client = PrometheusClient(p.url, headers=p.headers, timeout=p.timeout)
        collectors.append(
            PrometheusCollector(
                "prometheus",
                client,
                [
                    PromSignal(
                        s.name,
                        s.query or "",
                        s.step,
                        tuple(s.keep_labels) if s.keep_labels is not None else None,
                    )
                    for s in prom_signals
                ],
                initial_lookback=p.initial_lookback,
                max_lookback=p.max_lookback,
            )
        )
    scrape_signals = [s for s in config.signals if s.scrape is not None]
    if sources.scrape is not None and scrape_signals:
        from vigil.collectors.scrape import ScrapeCollector, ScrapeTarget, targets_from_file_sd

        targets = [ScrapeTarget(t.url, t.labels) for t in sources.scrape.targets]
        for path in sources.scrape.file_sd:
            targets += targets_from_file_sd(path)
        collectors.append(
            ScrapeCollector(
                "scrape", targets, [_scrape_signal(s) for s in scrape_signals], timeout=sources.scrape.timeout
            )
        )
    if sources.elasticsearch is not None:
        from elasticsearch import Elasticsearch

        from vigil.collectors.logs import LogCollector

        e = sources.elasticsearch
        es = Elasticsearch(e.url, request_timeout=10, max_retries=1)
        collectors.append(
            LogCollector(
                "elasticsearch", es, index=e.index, window=e.window, initial_lookback=e.initial_lookback
            )
        )
    return collectors


def _scrape_signal(signal: SignalConfig) -> ScrapeSignal:
    from vigil.collectors.scrape import ScrapeSignal

    spec: ScrapeSpec | None = signal.scrape
    assert spec is not None
    return ScrapeSignal(
        name=signal.name,
        metric=spec.metric,
        kind=spec.kind,
        by=tuple(spec.by),
        match=dict(spec.match),
        quantile=spec.quantile,
        numerator_match=dict(spec.numerator_match),
        aggregation=spec.aggregation,
    )
