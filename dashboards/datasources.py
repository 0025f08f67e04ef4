"""The two datasources every vigil dashboard uses, with fixed uids, and their Grafana provisioning.

Panels never name a datasource: they reference a dashboard variable (``${datasource}``, ``${logs}``) whose
default is the provisioned uid. The same JSON then works in any Grafana that provisions these uids, and
someone with several Prometheus servers picks theirs from the dropdown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Datasource:
    type: str  # Grafana's plugin id
    uid: str  # fixed: dashboards and alert links refer to it
    name: str
    variable: str  # the dashboard variable panels reference

    def ref(self) -> dict[str, str]:
        """How a panel or target points at this datasource: through the dashboard variable."""
        return {"type": self.type, "uid": f"${{{self.variable}}}"}


PROMETHEUS = Datasource("prometheus", "vigil-prometheus", "Prometheus", "datasource")
ELASTICSEARCH = Datasource("elasticsearch", "vigil-elasticsearch", "Elasticsearch logs", "logs")

# Only for callers that pass no index; a build passes its system's (``telemetry.logs.index``).
LOG_INDEX = "logs-*"  # the default of a system file's telemetry.logs.index
TIME_FIELD = "@timestamp"


def provisioning(
    *,
    prometheus_url: str,
    elasticsearch_url: str,
    log_index: str = LOG_INDEX,
    level_field: str = "log.level",
    scrape_interval: str = "5s",
) -> dict[str, Any]:
    """Grafana's datasource provisioning file (``provisioning/datasources/*.yaml``)."""
    return {
        "apiVersion": 1,
        # Provisioning keeps these uids stable; deleting first would break links during a restart.
        "datasources": [
            {
                "name": PROMETHEUS.name,
                "type": PROMETHEUS.type,
                "uid": PROMETHEUS.uid,
                "access": "proxy",
                "url": prometheus_url,
                "isDefault": True,
                "editable": False,
                # $__rate_interval is max(4 x scrape, step + scrape): Grafana needs the real scrape interval.
                "jsonData": {"timeInterval": scrape_interval, "httpMethod": "POST"},
            },
            {
                "name": ELASTICSEARCH.name,
                "type": ELASTICSEARCH.type,
                "uid": ELASTICSEARCH.uid,
                "access": "proxy",
                "url": elasticsearch_url,
                "editable": False,
                "jsonData": {
                    "index": log_index,
                    "timeField": TIME_FIELD,
                    "logMessageField": "message",
                    "logLevelField": level_field,
                    "maxConcurrentShardRequests": 5,
                },
            },
        ],
    }
