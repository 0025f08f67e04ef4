"""vigil's open incidents as a Prometheus metric, so Grafana can draw them as annotations and count them.

``vigil_incident_open{incident, service, severity, likely_cause, headline}`` is 1 for each service of
each open incident and disappears when the incident resolves: Grafana's Prometheus annotations turn
the stretch where the series exists into a region on every panel's time axis.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vigil.runtime.alerting import AlertPath

LABELS = ["incident", "service", "severity", "likely_cause", "headline"]


class IncidentCollector(Collector):
    def __init__(self, alerts: AlertPath) -> None:
        self.alerts = alerts

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "vigil_incident_open", "1 while the incident involving the service is open", labels=LABELS
        )
        open_incidents, _ = self.alerts.snapshot()
        for incident in open_incidents:
            for service in incident.services:
                family.add_metric(
                    [incident.id, service, incident.severity, incident.likely_cause, incident.headline], 1.0
                )
        yield family
