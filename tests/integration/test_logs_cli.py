"""``vigil logs templates`` against the real Elasticsearch: the templates of the last --since, counted."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from typer.testing import CliRunner

from tests.integration.test_log_collector import es, index_docs, prefix
from vigil.cli import app
from vigil.collectors.log_templates import LogTemplates
from vigil.stack import Stack

pytestmark = pytest.mark.integration
__all__ = ["es", "prefix"]  # fixtures

runner = CliRunner(env={"COLUMNS": "300"})  # error boxes unwrapped, to be read whole


def doc(service: str, ago: float, message: str) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(time.time() - ago, UTC).isoformat(timespec="milliseconds")
    return {"@timestamp": stamp.replace("+00:00", "Z"), "log.level": "info", "message": message,
            "service": {"name": service}}  # fmt: skip


def templates_of(stack: Stack, *args: str) -> dict[str, Any]:
    url = stack.settings.elasticsearch_url
    result = runner.invoke(app, ["logs", "templates", "--es-url", url, "--json", *args])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_the_top_templates_of_the_last_stretch_with_counts_and_an_example(
    stack: Stack, es: Elasticsearch, prefix: str
) -> None:
    docs = [doc("orders", 60 + i, f"order {1000 + i} placed for customer {i % 7}") for i in range(30)]
    docs += [doc("payments", 90 + i, f"charge {i} declined: card expired") for i in range(5)]
    docs += [doc("orders", 3 * 3600, "order 1 placed for customer 1")]  # older than --since
    index_docs(es, prefix, docs)
    found = templates_of(stack, "--index", f"{prefix}-*", "--since", "1h", "--top", "1")
    assert (found["lines"], found["templates"]) == (35, 2)
    (top,) = found["top"]
    assert top["template"] == "order <NUM> placed for customer <NUM>"
    assert (top["lines"], top["services"]) == (30, {"orders": 30})
    assert top["example"] in {d["message"] for d in docs[:30]}  # a line it covered, as written
    payments = templates_of(stack, "--index", f"{prefix}-*", "--since", "1h", "--service", "payments")
    assert [t["template"] for t in payments["top"]] == ["charge <NUM> declined: card expired"]


def test_ids_are_the_ones_a_vigil_run_replica_gave_and_its_state_is_left_untouched(
    stack: Stack, es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    state = tmp_path / "log-templates-0-of-1.json"
    learned = LogTemplates(state)
    learned.add("cache warmed in 3 s")
    paid_id = learned.add("order 5 paid")[0]
    before = state.read_bytes()
    index_docs(es, prefix, [doc("payments", 30, "order 77 paid"), doc("catalog", 40, "index rebuilt")])
    found = templates_of(stack, "--index", f"{prefix}-*", "--since", "10m", "--state", str(state))
    ids = {t["template"]: t["id"] for t in found["top"]}
    assert ids["order <NUM> paid"] == paid_id
    assert state.read_bytes() == before  # a new template ("index rebuilt") went to a copy


def test_bad_input_is_named(stack: Stack, tmp_path: Path) -> None:
    url = stack.settings.elasticsearch_url
    since = runner.invoke(app, ["logs", "templates", "--es-url", url, "--since", "soon"])
    assert since.exit_code == 2
    assert "--since" in since.output
    nope = str(tmp_path / "nope.json")
    missing = runner.invoke(app, ["logs", "templates", "--es-url", url, "--state", nope])
    assert missing.exit_code == 2
    assert "no such file" in missing.output
