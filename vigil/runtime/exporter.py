"""vigil's own /metrics: anomaly scores per signal (vmanomaly's names) and its health."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vigil.runtime.engine import Engine


class EngineCollector(Collector):
    """Exposes every series' latest score and band, keeping the series' own labels plus ``signal``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        families = {
            "score": Metric("vigil_anomaly_score", "Anomaly score: 0-1 normal, above 1 anomalous", "gauge"),
            "observed": Metric("vigil_observed", "Last observed value of the signal", "gauge"),
            "expected": Metric("vigil_expected", "Value the detector expects", "gauge"),
            "lower": Metric("vigil_expected_lower", "Lower edge of the normal band", "gauge"),
            "upper": Metric("vigil_expected_upper", "Upper edge of the normal band", "gauge"),
        }
        for state in self.engine.series():
            labels = {**state.key.label_dict(), "signal": state.key.signal}
            if state.score is not None:
                families["score"].add_sample("vigil_anomaly_score", labels, state.score)
            if state.observed is not None:
                families["observed"].add_sample("vigil_observed", labels, state.observed)
            if state.band is not None:
                families["expected"].add_sample("vigil_expected", labels, state.band.expected)
                families["lower"].add_sample("vigil_expected_lower", labels, state.band.lower)
                families["upper"].add_sample("vigil_expected_upper", labels, state.band.upper)
        yield from families.values()

        up = GaugeMetricFamily(
            "vigil_source_up", "1 if the source answered in the last round", labels=["source"]
        )
        gaps = CounterMetricFamily("vigil_source_gaps", "Outages of the source that ended", labels=["source"])
        for name, health in self.engine.sources.items():
            up.add_metric([name], 1.0 if health.up else 0.0)
            gaps.add_metric([name], len(health.gaps))
        yield up
        yield gaps
        c = self.engine.counters
        yield CounterMetricFamily("vigil_samples_ingested", "Points scored and learned", value=c.samples)
        rejected = CounterMetricFamily("vigil_samples_rejected", "Points dropped", labels=["reason"])
        rejected.add_metric(["non_finite"], c.non_finite)
        rejected.add_metric(["out_of_order"], c.out_of_order)
        yield rejected
        yield CounterMetricFamily(
            "vigil_series_evicted", "Series dropped at the max_series bound", value=c.evicted
        )
        yield GaugeMetricFamily("vigil_series", "Series held in memory", value=len(self.engine.series()))
        yield GaugeMetricFamily(
            "vigil_tick_duration_seconds", "Duration of the last round", value=c.last_tick_seconds
        )
