"""The generated rules load into the stack's real Prometheus and evaluate without errors."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from vigil.alerts.prometheus_rules import rule_files, write_rules
from vigil.demo_marketplace.catalog import SYSTEM
from vigil.stack import Stack
from vigil.stack.components.monitoring import Prometheus

pytestmark = pytest.mark.integration


def test_every_generated_group_is_loaded_healthy(stack: Stack) -> None:
    prometheus = next(c for c in stack.components if isinstance(c, Prometheus))
    # The same files `vigil stack up` writes; rewritten here so a stack prepared before them has them too.
    write_rules(prometheus.directory / "rules", rule_files(SYSTEM))
    reload = requests.post(f"{prometheus.url}/-/reload", timeout=30)
    assert reload.status_code == 200, reload.text

    expected = {
        (name, group["name"]): len(group["rules"])
        for name, content in rule_files(SYSTEM).items()
        for group in content["groups"]
    }

    @retry(stop=stop_after_delay(150), wait=wait_fixed(2), retry=retry_if_exception_type(AssertionError))
    def evaluated_groups() -> dict[tuple[str, str], Any]:
        """Every group loaded and every rule evaluated at least once (a 1m group needs up to a minute)."""
        answer = requests.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()
        groups = {(g["file"].rsplit("/", 1)[-1], g["name"]): g for g in answer["data"]["groups"]}
        ours: dict[tuple[str, str], Any] = {key: groups.get(key) for key in expected}
        assert all(g is not None for g in ours.values()), sorted(k for k, g in ours.items() if g is None)
        # A rule not yet evaluated reports Go's zero time, 0001-01-01T00:00:00Z.
        assert all(not r["lastEvaluation"].startswith("0001") for g in ours.values() for r in g["rules"])
        return ours

    for key, group in evaluated_groups().items():
        assert len(group["rules"]) == expected[key], key
        for rule in group["rules"]:
            name = rule.get("name")
            assert rule["health"] == "ok", (key, name, rule.get("lastError"))
            assert not rule.get("lastError"), (key, name, rule["lastError"])
