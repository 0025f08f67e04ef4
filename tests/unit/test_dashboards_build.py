"""The dashboard-as-code build: deterministic, committed, complete for a system file, and checkable; and
built for any system, in the names its telemetry uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from vigil.cli import app
from vigil.dashboards import build as b
from vigil.dashboards.datasources import ELASTICSEARCH, PROMETHEUS
from vigil.dashboards.lint import lint
from vigil.system import System, load_system, parse_system

runner = CliRunner()
DEMO_FILE = Path(__file__).resolve().parents[2] / "demo_marketplace" / "system.yaml"
DEMO = load_system(DEMO_FILE)


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def exprs(board: dict[str, Any]) -> str:
    return "\n".join(t.get("expr", t.get("query", "")) for p in panels(board) for t in p["targets"])


def rows(board: dict[str, Any]) -> list[str]:
    return [p["title"] for p in board["panels"] if p["type"] == "row"]


def test_the_build_is_deterministic_and_the_committed_output_is_current() -> None:
    first, second = b.render(DEMO), b.render(DEMO)
    assert first == second
    problems = b.check(b.COMMITTED, first)
    stale = (
        "dashboards/generated is stale; run `vigil dashboards build --system demo_marketplace/system.yaml`:\n"
    )
    assert not problems, stale + "\n".join(problems)
    for name, text in first.items():
        if name.endswith(".json"):
            assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_every_service_has_a_dashboard_and_every_link_resolves() -> None:
    built = b.dashboards(DEMO)
    assert [board["uid"] for board in built] == [
        "vigil-overview",
        *(f"vigil-{s.name}" for s in DEMO.services),  # in the system file's order
        "vigil-infrastructure",
    ]
    boards = {board["uid"]: board for board in built}
    for board in boards.values():
        assert board["editable"] is False
        assert board["schemaVersion"] >= 39
        for link in board["links"]:
            assert link["url"].removeprefix("/d/") in boards, link
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
    gateway = boards["vigil-gateway"]
    assert {link["title"] for link in gateway["links"]} >= {"Overview", "calls catalog", "calls cart"}
    assert "called by gateway" in {link["title"] for link in boards["vigil-catalog"]["links"]}
    assert "Infrastructure" in {link["title"] for link in boards["vigil-catalog"]["links"]}
    assert "Infrastructure" not in {link["title"] for link in gateway["links"]}  # it uses no component


def test_what_a_service_has_decides_its_panels() -> None:
    boards = {board["uid"]: board for board in b.dashboards(DEMO)}
    slo_owners = {slo.service for slo in DEMO.slos}
    for service in DEMO.services:
        board = boards[f"vigil-{service.name}"]
        queries = exprs(board)
        kinds = {c.kind for c in DEMO.components if c.name in service.uses}
        assert ("db_client_connections" in queries) == ("postgresql" in kinds), service.name
        assert ("cache_requests_total" in queries) == bool(service.caches), service.name
        assert ("http_server_request_duration_seconds" in queries) == bool(service.routes), service.name
        assert ("http_server_active_requests" in queries) == bool(service.routes), service.name
        for queue in DEMO.consumes(service.name):
            assert f'queue="{queue.name}"' in queries
        assert ("messaging_published_total" in queries) == bool(DEMO.publishes(service.name))
        assert ("slo:sli_error" in queries) == (service.name in slo_owners), service.name
        assert ("Components it uses" in rows(board)) == bool(service.uses), service.name
        assert f'service.name:"{service.name}"' in queries  # its logs
        assert "vigil_anomaly_score" in queries
        assert "vigil_observed" in queries
        assert 'job="marketplace"' in queries  # the system's selector on its own series
        assert any(a.get("expr", "").startswith("vigil_incident_open") for a in board["annotations"]["list"])


def test_the_overview_is_the_systems_and_its_pipeline_is_generic() -> None:
    overview = b.dashboards(DEMO)[0]
    assert overview["title"] == "marketplace overview"
    queries = exprs(overview)
    assert "marketplace_orders_total" not in queries
    titles = {p["title"] for p in panels(overview)}
    latency = [slo for slo in DEMO.slos if slo.kind == "latency"]
    for slo in latency:  # each latency SLO's indicator, against its threshold
        panel = next(p for p in panels(overview) if p["title"].startswith(f"{slo.name}: p99"))
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert steps[-1]["value"] == slo.threshold_seconds
    assert "Queue depth (rabbitmq)" in titles
    checkout = 'http_server_request_duration_seconds_bucket{job="marketplace", service="gateway", '
    assert checkout + 'route="/api/checkout", method="POST"}' in queries
    assert "marketplace_order_fulfilment_delay_seconds_bucket" in queries


def test_the_infrastructure_dashboard_shows_each_components_exporter_health() -> None:
    board = b.dashboards(DEMO)[-1]
    queries = exprs(board)
    for component in DEMO.components:
        assert any(row.startswith(f"{component.name} ({component.kind})") for row in rows(board))
    for metric in ("pg_up", "pg_locks_count", "redis_up", "elasticsearch_cluster_health_up"):
        assert metric in queries
    assert 'pg_stat_activity_count{job="postgres", state="active"}' in queries
    assert 'up{job=~"rabbitmq.*"}' in queries
    assert 'vigil_anomaly_score{component!=""}' in queries
    assert "rabbitmq_detailed_queue_messages" in queries


def test_panels_reference_datasources_through_variables_whose_defaults_are_the_provisioned_uids() -> None:
    provisioned = yaml.safe_load(b.render(DEMO)["provisioning/datasources/vigil.yaml"])["datasources"]
    assert {(d["type"], d["uid"]) for d in provisioned} == {
        (PROMETHEUS.type, PROMETHEUS.uid),
        (ELASTICSEARCH.type, ELASTICSEARCH.uid),
    }
    logs = next(d for d in provisioned if d["type"] == ELASTICSEARCH.type)
    assert logs["jsonData"]["index"] == DEMO.telemetry.logs.index
    for board in b.dashboards(DEMO):
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["current"]["value"] == PROMETHEUS.uid
        assert variables["logs"]["current"]["value"] == ELASTICSEARCH.uid
        for panel in panels(board):
            assert panel["datasource"]["uid"] in ("${datasource}", "${logs}"), panel["title"]
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"], panel["title"]
                if "expr" in target:
                    assert "[$__rate_interval]" in target["expr"] or "rate(" not in target["expr"]


def test_check_names_drifted_missing_and_stale_files_and_write_repairs_them(tmp_path: Path) -> None:
    files = b.render(DEMO)
    b.write(tmp_path, files)
    assert b.check(tmp_path, files) == []

    board = tmp_path / "dashboards" / "vigil-catalog.json"
    board.write_text(board.read_text().replace('"editable": false', '"editable": true'))
    (tmp_path / "dashboards" / "vigil-gone.json").write_text("{}")
    (tmp_path / "provisioning" / "dashboards" / "vigil.yaml").unlink()
    (tmp_path / "README.txt").write_text("not ours")
    problems = b.check(tmp_path, files)
    assert len(problems) == 3
    text = "\n".join(problems)
    assert '-  "editable": true' in text
    assert '+  "editable": false' in text
    assert "vigil-gone.json: not generated any more" in text
    assert "provisioning/dashboards/vigil.yaml (missing)" in text

    b.write(tmp_path, files)
    assert b.check(tmp_path, files) == []
    assert (tmp_path / "README.txt").exists()  # only the build's own kinds of files are touched


def test_cli_build_check_and_api_payloads(tmp_path: Path) -> None:
    system = ["--system", str(DEMO_FILE)]
    result = runner.invoke(app, ["dashboards", "build", *system, "--out", str(tmp_path), "--api-payloads"])
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "api" / "vigil-catalog.json").read_text())
    assert payload["overwrite"] is True
    assert payload["folderUid"] == "vigil"
    assert payload["dashboard"]["uid"] == "vigil-catalog"
    assert payload["dashboard"]["id"] is None

    check = ["dashboards", "build", *system, "--out", str(tmp_path), "--api-payloads", "--check"]
    assert runner.invoke(app, check).exit_code == 0
    (tmp_path / "dashboards" / "vigil-orders.json").write_text("{}\n")
    result = runner.invoke(app, check)
    assert result.exit_code == 1
    assert "vigil-orders.json" in result.output
    assert "differ from the build" in result.output
    # --check changed nothing
    assert (tmp_path / "dashboards" / "vigil-orders.json").read_text() == "{}\n"


def test_cli_finds_the_system_through_config_or_environment_and_never_guesses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIGIL_SYSTEM", raising=False)
    monkeypatch.chdir(tmp_path)  # no vigil.yaml or system file to fall back on here
    out = ["--out", str(tmp_path / "build")]
    result = runner.invoke(app, ["dashboards", "build", *out])
    assert result.exit_code == 2
    assert "no system file: pass --system" in result.output

    config = tmp_path / "vigil.yaml"
    config.write_text(f"system: {DEMO_FILE}\n")
    assert runner.invoke(app, ["dashboards", "build", "--config", str(config), *out]).exit_code == 0
    assert (tmp_path / "build" / "dashboards" / "vigil-infrastructure.json").exists()

    check = ["dashboards", "build", *out, "--check"]
    assert runner.invoke(app, check, env={"VIGIL_SYSTEM": str(DEMO_FILE)}).exit_code == 0
    missing = runner.invoke(app, ["dashboards", "build", "--system", "nope.yaml", *out])
    assert missing.exit_code == 2
    assert "nope.yaml: no such file" in missing.output


def test_provisioning_points_grafana_at_the_dashboards() -> None:
    options = b.BuildOptions(grafana_dashboards_path="/srv/grafana/vigil")
    provider = yaml.safe_load(b.render(DEMO, options)["provisioning/dashboards/vigil.yaml"])["providers"][0]
    assert provider["options"]["path"] == "/srv/grafana/vigil"
    assert provider["type"] == "file"
    assert provider["allowUiUpdates"] is False


def test_every_generated_dashboard_passes_the_lint_rules() -> None:
    findings = [f for board in b.dashboards(DEMO) for f in lint(board)]
    assert findings == []


def test_cli_lint_fails_on_a_broken_dashboard_file(tmp_path: Path) -> None:
    board = b.dashboards(DEMO)[1]
    board["panels"][1]["fieldConfig"]["defaults"]["unit"] = "req/s"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(board))
    result = runner.invoke(app, ["dashboards", "lint", str(path)])
    assert result.exit_code == 1
    assert "panel-units" in result.output
    assert "req/s" in result.output
    assert runner.invoke(app, ["dashboards", "lint", "--system", str(DEMO_FILE)]).exit_code == 0


# A system instrumented with OpenTelemetry's defaults: no telemetry section at all.
OTEL_SYSTEM = """
name: shop
services:
  - name: web
    description: the storefront
    calls: [api]
    routes: [/, /cart]
  - name: api
    description: the shop's API
    uses: [db]
    routes: ["/items/{item_id}"]
components:
  - {name: db, kind: postgresql, selector: {job: db-exporter}}
slos:
  - {name: web-latency, service: web, kind: latency, objective: 0.99, threshold_seconds: 0.5}
"""


@pytest.fixture
def otel() -> System:
    return parse_system(OTEL_SYSTEM)


def test_another_systems_dashboards_use_its_opentelemetry_names_and_lint_clean(otel: System) -> None:
    boards = {board["uid"]: board for board in b.dashboards(otel)}
    assert list(boards) == ["vigil-overview", "vigil-web", "vigil-api", "vigil-infrastructure"]
    assert [f for board in boards.values() for f in lint(board)] == []
    assert boards["vigil-overview"]["title"] == "shop overview"

    web, api = exprs(boards["vigil-web"]), exprs(boards["vigil-api"])
    assert 'http_server_request_duration_seconds_bucket{job="web", http_route=~"$route"}' in web
    assert 'http_response_status_code=~"5.."' in web
    assert "sum by (http_route) (" in web
    assert 'http_client_request_duration_seconds_count{job="web"}' in web
    assert "sum by (server_address, http_response_status_code) (" in web
    assert 'process_memory_usage_bytes{job="api"}' in api
    assert 'db_client_connection_count{job="api", db_client_connection_state="used"}' in api
    assert 'db_client_operation_duration_seconds_bucket{job="api"}' in api
    assert 'vigil_anomaly_score{component="db"}' in api
    variables = {v["name"]: v["query"] for v in boards["vigil-web"]["templating"]["list"]}
    assert (
        variables["route"]
        == 'label_values(http_server_request_duration_seconds_count{job="web"}, http_route)'
    )
    assert variables["signal"] == 'label_values(vigil_expected{job="web"}, signal)'

    overview = exprs(boards["vigil-overview"])
    slo = 'histogram_quantile(0.99, sum by (le) (rate(http_server_request_duration_seconds_bucket{job="web"}'
    assert slo in overview
    assert 'label_replace(vigil_incident_open, "job", "$1", "service", "(.+)")' in overview
    assert 'pg_up{job="db-exporter"}' in exprs(boards["vigil-infrastructure"])

    everything = "\n".join(b.render(otel).values())
    for demo_name in ("status_class", 'job=\\"marketplace\\"', "route=~", "logs-marketplace"):
        assert demo_name not in everything.replace("http_route=~", ""), demo_name
    for absent in ("http_server_active_requests", "cache_requests_total", "messaging_", "rabbitmq"):
        assert absent not in everything, absent  # not exported (OTel) or not in this system
    assert "logs-*" in b.render(otel)["provisioning/datasources/vigil.yaml"]


def test_a_system_without_watched_components_has_no_infrastructure_dashboard() -> None:
    # A component without a selector has no exporter series to draw.
    bare = parse_system(
        "name: x\nservices: [{name: web, routes: [/]}]\ncomponents: [{name: db, kind: redis}]\n"
    )
    boards = b.dashboards(bare)
    assert [board["uid"] for board in boards] == ["vigil-overview", "vigil-web"]
    assert "Infrastructure" not in {link["title"] for board in boards for link in board["links"]}
    assert [f for board in boards for f in lint(board)] == []


def test_a_service_named_like_a_system_dashboard_is_refused() -> None:
    clash = parse_system("name: x\nservices: [{name: overview}]\n")
    with pytest.raises(ValueError, match="vigil-overview"):
        b.dashboards(clash)
