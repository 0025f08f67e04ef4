"""The system file: validated with every problem named by its path, and what vigil derives from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.collectors.promql import to_promql
from vigil.config import VigilConfig
from vigil.runtime.build import metric_signal
from vigil.system import SystemFileError, load_system, parse_system
from vigil.system.signals import derive_signals

DEMO = Path(__file__).resolve().parents[2] / "demo_marketplace" / "system.yaml"

# A shop instrumented with OpenTelemetry: no telemetry section, the conventions' names apply.
SHOP = """
name: shop
services:
  - {name: web, team: front, calls: [api], routes: [/, /cart]}
  - {name: api, team: back, uses: [db, cache]}
  - {name: mailer, uses: [broker]}
components:
  - {name: db, kind: postgresql, selector: {job: pg}}
  - {name: cache, kind: redis, selector: {job: redis}}
  - {name: broker, kind: rabbitmq, selector: {job: rabbit}}
resources:
  - {name: orders, component: db, owner: api, used_by: [mailer]}
queues:
  - {name: emails, component: broker, producers: [api], consumers: [mailer]}
slos:
  - {name: web-latency, service: web, kind: latency, objective: 0.99, threshold_seconds: 0.4}
  - {name: web-errors, service: web, kind: error_ratio, objective: 0.995}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(SystemFileError) as raised:
        parse_system(text, "shop.yaml")
    first, *lines = str(raised.value).splitlines()
    assert first == "shop.yaml is not a valid system file:"
    return [line.strip() for line in lines]


def test_every_reference_problem_is_named_by_its_path_at_once() -> None:
    text = SHOP.replace("calls: [api]", "calls: [apj, web]").replace("uses: [db, cache]", "uses: [db, cahce]")
    text = text.replace("consumers: [mailer]", "consumers: [mailr]").replace("owner: api", "owner: ap")
    text = text.replace("service: web, kind: error_ratio", "service: wbe, kind: error_ratio")
    assert problems_of(text) == [
        "services[0].calls[0]: unknown service 'apj' (did you mean 'api'?)",
        "services[0].calls[1]: 'web' cannot call itself",
        "services[1].uses[1]: unknown component 'cahce' (did you mean 'cache'?)",
        "resources[0].owner: unknown service 'ap' (did you mean 'api'?)",
        "queues[0].consumers[0]: unknown service 'mailr' (did you mean 'mailer'?)",
        "slos[1].service: unknown service 'wbe' (did you mean 'web'?)",
    ]


def test_names_are_unique_and_say_what_they_are() -> None:
    text = SHOP.replace("{name: mailer, uses: [broker]}", "{name: mailer}\n  - {name: api}\n  - {name: db}")
    assert problems_of(text) == [
        "services: 'api' is declared more than once",
        "components: 'db' is also a service; names must say which one an alert is about",
    ]


def test_field_problems_carry_their_paths_too() -> None:
    text = SHOP.replace("team: back,", "team: back, replicas: 0,").replace("kind: redis", "kind: memcached")
    found = problems_of(text)
    assert found[0] == "services[1].replicas: Input should be greater than or equal to 1"
    assert found[1].startswith("components[1].kind: Input should be 'postgresql', 'redis',")
    assert problems_of("name: x\nservices: []") == [
        "services: List should have at least 1 item after validation, not 0"
    ]
    assert problems_of("name: x\nservices: [{name: a, color: red}]") == [
        "services[0].color: Extra inputs are not permitted"
    ]


def test_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SystemFileError, match=r"nowhere\.yaml: no such file"):
        load_system(tmp_path / "nowhere.yaml")
    with pytest.raises(SystemFileError, match="not valid YAML"):
        parse_system("services: [unclosed")
    with pytest.raises(SystemFileError, match="expected a mapping"):
        parse_system("- just\n- a list")


def test_dependencies_follow_calls_shared_resources_and_components() -> None:
    shop = parse_system(SHOP)
    deps = shop.dependencies()
    assert deps["web"] == {"api"}
    assert deps["api"] == {"db", "cache"}
    assert deps["mailer"] == {"api", "broker"}  # uses the api's orders table, and the broker
    assert shop.upstream_of("mailer") == ["api"]  # the api publishes what the mailer consumes
    assert shop.upstream_of("api") == []  # a stalled consumer leaves its producer alone
    assert shop.users_of("db") == ["api", "mailer"]
    assert shop.users_of("broker") == ["api", "mailer"]  # the producer and the consumer of its queue
    assert shop.queue_owner("emails") == "mailer"
    assert shop.callers("api") == ["web"]


def test_the_demo_describes_itself_with_this_file() -> None:
    demo = load_system(DEMO)
    # payments is upstream of the warehouse: it publishes the paid orders the warehouse fulfils
    assert demo.dependencies()["warehouse"] == {"catalog", "orders", "payments", "postgresql", "rabbitmq"}
    assert {s.name for s in demo.slos} == {
        "checkout-latency",
        "browse-latency",
        "error-ratio",
        "fulfilment-delay",
    }


def promql(system_text: str) -> dict[str, str]:
    config = VigilConfig.model_validate(
        {"sources": {"prometheus": {"url": "http://p"}}, "signals": derive_signals(parse_system(system_text))}
    )
    return {s.name: to_promql(metric_signal(s)) for s in config.signals if s.metric is not None}


def test_an_opentelemetry_system_gets_its_red_signals_without_promql() -> None:
    queries = promql(SHOP)
    assert (
        queries["http_request_rate"] == "sum by (job) (rate(http_server_request_duration_seconds_count[1m]))"
    )
    assert 'http_response_status_code=~"5.."' in queries["http_error_ratio"]
    assert "sum by (job, http_route, le)" in queries["http_p99_latency_seconds"]
    assert "db_client_operation_duration_seconds_bucket" in queries["db_p99_seconds"]
    assert "process_memory_usage_bytes" in queries["process_memory_bytes"]
    assert "cache_hit_ratio" not in queries  # no cache telemetry declared: no such signal
    # its own services' scrape targets only, not the exporters' (which share the ``job`` label)
    assert queries["service_up"] == 'avg by (job) (up{job=~"web|api|mailer"})'
    assert queries["db_up"] == 'label_replace(min (pg_up{job="pg"}), "component", "db", "", "")'
    assert 'queue=~"emails"' in queries["queue_depth_messages"]
    assert "messaging_process_duration_seconds_bucket" in queries["message_process_p99_seconds"]
    assert 'job="web"' in queries["slo_web_latency"]
    assert "histogram_quantile(0.99," in queries["slo_web_latency"]
    assert 'http_response_status_code=~"5.."' in queries["slo_web_errors"]
    assert all("marketplace" not in q and "status_class" not in q for q in queries.values())


def test_every_derived_signal_of_both_systems_is_a_valid_config() -> None:
    for text in (SHOP, DEMO.read_text()):
        entries = derive_signals(parse_system(text))
        config = VigilConfig.model_validate({"sources": {"scrape": {}}, "signals": entries})
        assert len(config.signals) == len(entries)
        assert len({s.name for s in config.signals}) == len(entries)


def test_vigil_system_check_summarises_a_valid_file_and_names_problems(tmp_path: Path) -> None:
    good = CliRunner().invoke(app, ["system", "check", str(DEMO), "--signals"])
    assert good.exit_code == 0, good.output
    assert "valid: 8 services, 4 components, 3 shared resources, 2 queues, 4 SLOs" in good.output
    assert "slo_fulfilment_delay" in good.output
    broken = tmp_path / "shop.yaml"
    broken.write_text(SHOP.replace("calls: [api]", "calls: [paymnts]"))
    bad = CliRunner().invoke(app, ["system", "check", str(broken)])
    assert bad.exit_code == 1
    assert "services[0].calls[0]: unknown service 'paymnts'" in bad.output
