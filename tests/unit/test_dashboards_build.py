"""The dashboard-as-code build: deterministic, committed, complete for the catalog, and checkable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from vigil.cli import app
from vigil.dashboards import build as b
from vigil.dashboards.datasources import ELASTICSEARCH, PROMETHEUS
from vigil.demo_marketplace.catalog import SERVICES

runner = CliRunner()


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def exprs(board: dict[str, Any]) -> str:
    return "\n".join(t.get("expr", t.get("query", "")) for p in panels(board) for t in p["targets"])


def test_the_build_is_deterministic_and_the_committed_output_is_current() -> None:
    first, second = b.render(), b.render()
    assert first == second
    problems = b.check(b.COMMITTED, first)
    stale = "dashboards/generated is stale; run `vigil dashboards build`:\n"
    assert not problems, stale + "\n".join(problems)
    for name, text in first.items():
        if name.endswith(".json"):
            assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_every_service_has_a_dashboard_and_every_link_resolves() -> None:
    boards = {board["uid"]: board for board in b.dashboards()}
    assert set(boards) == {"vigil-overview"} | {f"vigil-{s.name}" for s in SERVICES}
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


def test_what_a_service_has_decides_its_panels() -> None:
    boards = {board["uid"]: board for board in b.dashboards()}
    for service in SERVICES:
        board = boards[f"vigil-{service.name}"]
        queries = exprs(board)
        assert ("db_client_connections" in queries) == ("postgresql" in service.uses), service.name
        assert ("cache_requests_total" in queries) == bool(service.caches), service.name
        assert ("http_server_request_duration_seconds" in queries) == bool(service.routes), service.name
        for queue in service.consumes:
            assert f'queue="{queue}"' in queries
        assert ("slo:sli_error" in queries) == (service.name in {"gateway", "warehouse"}), service.name
        assert f'service.name:"{service.name}"' in queries  # its logs
        assert "vigil_anomaly_score" in queries
        assert "vigil_observed" in queries
        assert any(a.get("expr", "").startswith("vigil_incident_open") for a in board["annotations"]["list"])


def test_panels_reference_datasources_through_variables_whose_defaults_are_the_provisioned_uids() -> None:
    provisioned = yaml.safe_load(b.render()["provisioning/datasources/vigil.yaml"])["datasources"]
    assert {(d["type"], d["uid"]) for d in provisioned} == {
        (PROMETHEUS.type, PROMETHEUS.uid),
        (ELASTICSEARCH.type, ELASTICSEARCH.uid),
    }
    for board in b.dashboards():
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
    files = b.render()
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
    result = runner.invoke(app, ["dashboards", "build", "--out", str(tmp_path), "--api-payloads"])
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "api" / "vigil-catalog.json").read_text())
    assert payload["overwrite"] is True
    assert payload["folderUid"] == "vigil"
    assert payload["dashboard"]["uid"] == "vigil-catalog"
    assert payload["dashboard"]["id"] is None

    check = ["dashboards", "build", "--out", str(tmp_path), "--api-payloads", "--check"]
    assert runner.invoke(app, check).exit_code == 0
    (tmp_path / "dashboards" / "vigil-orders.json").write_text("{}\n")
    result = runner.invoke(app, check)
    assert result.exit_code == 1
    assert "vigil-orders.json" in result.output
    assert "differ from the build" in result.output
    # --check changed nothing
    assert (tmp_path / "dashboards" / "vigil-orders.json").read_text() == "{}\n"


def test_provisioning_points_grafana_at_the_dashboards() -> None:
    options = b.BuildOptions(grafana_dashboards_path="/srv/grafana/vigil")
    provider = yaml.safe_load(b.render(options)["provisioning/dashboards/vigil.yaml"])["providers"][0]
    assert provider["options"]["path"] == "/srv/grafana/vigil"
    assert provider["type"] == "file"
    assert provider["allowUiUpdates"] is False


def test_every_generated_dashboard_passes_the_lint_rules() -> None:
    from vigil.dashboards.lint import lint

    findings = [f for board in b.dashboards() for f in lint(board)]
    assert findings == []


def test_cli_lint_fails_on_a_broken_dashboard_file(tmp_path: Path) -> None:
    board = b.dashboards()[1]
    board["panels"][1]["fieldConfig"]["defaults"]["unit"] = "req/s"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(board))
    result = runner.invoke(app, ["dashboards", "lint", str(path)])
    assert result.exit_code == 1
    assert "panel-units" in result.output
    assert "req/s" in result.output
    assert runner.invoke(app, ["dashboards", "lint"]).exit_code == 0
