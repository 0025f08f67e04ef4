"""How a system's metrics and logs are named: OpenTelemetry's semantic conventions unless it says otherwise.

A system instrumented with OpenTelemetry and exported to Prometheus (the collector's Prometheus exporter,
or Prometheus' OTLP receiver) needs none of this in its file: ``http.server.request.duration`` arrives as
``http_server_request_duration_seconds`` with ``http_route``, ``http_request_method`` and
``http_response_status_code``, ``db.client.operation.duration`` as ``db_client_operation_duration_seconds``
and so on, and vigil finds its RED signals from those names alone. A system with its own names declares
only where it differs (the bundled marketplace labels by ``service`` and ``status_class``, for example).

Label matchers are written as a mapping: ``{job: marketplace, route: "~/api/products.*"}``; a value that
starts with ``~`` is a fully anchored regular expression, as PromQL's ``=~``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

Matchers = dict[str, str]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpTelemetry(_Strict):
    server_duration: str = Field("http_server_request_duration_seconds", description="histogram, base name")
    client_duration: str = Field("http_client_request_duration_seconds", description="histogram, base name")
    route_label: str = "http_route"
    method_label: str = "http_request_method"
    status_label: str = "http_response_status_code"
    server_error: str = Field("~5..", description="status_label values that are server errors (matcher)")
    client_error: str = Field("~4..", description="status_label values that are client errors (matcher)")
    peer_label: str = Field("server_address", description="client calls: the service called")
    active_requests: str | None = Field(None, description="gauge of requests in flight, if exported")


class DatabaseTelemetry(_Strict):
    operation_duration: str = "db_client_operation_duration_seconds"
    operation_label: str = "db_operation_name"
    connections: str | None = Field("db_client_connection_count", description="pool connections by state")
    connections_max: str | None = Field("db_client_connection_max", description="the pool's limit")
    state_label: str = "db_client_connection_state"
    used_state: str = "used"


class MessagingTelemetry(_Strict):
    process_duration: str = "messaging_process_duration_seconds"
    consumed: str = "messaging_client_consumed_messages_total"
    published: str = "messaging_client_sent_messages_total"
    destination_label: str = Field("messaging_destination_name", description="the queue's name")
    published_destination_label: str | None = Field(
        None, description="label naming where a message was published to; default: destination_label"
    )
    outcome_label: str | None = Field(None, description="label telling handled from failed messages")
    failed: str = Field("~dead_letter|error", description="outcome_label values of failed messages")


class CacheTelemetry(_Strict):
    """Cache lookups (no OpenTelemetry convention exists): a counter labelled by result."""

    requests: str = "cache_requests_total"
    result_label: str = "result"
    hit: str = "hit"
    name_label: str = "cache"


class ProcessTelemetry(_Strict):
    memory: str = Field("process_memory_usage_bytes", description="resident memory per process")
    cpu: str = Field("process_cpu_time_seconds_total", description="CPU seconds per process (a counter)")
    instance_label: str = Field("instance", description="the label telling replicas apart")


class LogTelemetry(_Strict):
    """Where the system's logs are in Elasticsearch, in ECS field names."""

    index: str = "logs-*"
    service_field: str = "service.name"
    level_field: str = "log.level"


class Telemetry(_Strict):
    selector: Matchers = Field(
        default_factory=dict, description="matchers every series of the system's own services carries"
    )
    service_label: str = Field("job", description="the label naming the service a series comes from")
    http: HttpTelemetry = Field(default_factory=HttpTelemetry)
    database: DatabaseTelemetry = Field(default_factory=DatabaseTelemetry)
    messaging: MessagingTelemetry = Field(default_factory=MessagingTelemetry)
    cache: CacheTelemetry | None = Field(None, description="set when services report cache lookups")
    process: ProcessTelemetry = Field(default_factory=ProcessTelemetry)
    logs: LogTelemetry = Field(default_factory=LogTelemetry)
    histograms: dict[str, list[float]] = Field(
        default_factory=dict,
        description="bucket bounds per histogram; a latency SLO's threshold must be one of its bounds",
    )
