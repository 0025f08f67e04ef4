"""Fuzzed ``vigil.yaml`` and system files: each loads, or raises the project's own error (``ConfigError``,
``SystemFileError``) naming the file and the field; no other exception ever leaves the loaders."""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from vigil.config import ConfigError, VigilConfig, load_config
from vigil.detectors.registry import DETECTORS
from vigil.system import System, SystemFileError, load_system

SYSTEM = "name: shop\nservices: [{name: web, calls: [api]}, {name: api}]\n"
CONFIG = {
    "sources": {"prometheus": {"url": "http://127.0.0.1:9090"}},
    "signals": [{"name": "checkout_p99", "query": "sum(rate(x[5m]))"}],
    "alerting": {"enabled": False},
}
SERVICE = {"name": "web", "calls": [], "replicas": 2, "port": 8080}
SLO = {"name": "web-errors", "service": "web", "kind": "error_ratio", "objective": 0.99}


def keys_of(schema: Any) -> set[str]:
    """Every field name and alias in a JSON schema, its nested models' too."""
    if isinstance(schema, list):
        return set().union(*map(keys_of, schema))
    if isinstance(schema, dict):
        return set(schema.get("properties", {})).union(*map(keys_of, schema.values()))
    return set()


def documents(model: type[BaseModel], extra: list[Any]) -> st.SearchStrategy[Any]:
    """Mappings of the model's own keys (and unknown ones) to values of any type, nested."""
    keys = st.sampled_from(sorted(keys_of(model.model_json_schema()))) | st.text(max_size=4)
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.sampled_from([10**400, -(10**400), math.nan, math.inf, "", "15s", "fast", "~(", *extra])
        | st.floats()
        | st.text(max_size=6)
        | st.dates()
        | st.datetimes()
    )
    tree = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=20,
    )
    return st.dictionaries(keys, tree, max_size=8) | tree


def loaded(load: Any, path: Path, error: type[Exception]) -> str:
    """What ``load`` says of ``path``: "" when it loads, else its error (any other exception fails)."""
    try:
        load(path)
        problem = ""
    except error as raised:
        problem = str(raised)
    assert not problem or problem.startswith(str(path)), problem
    return problem


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz-config")
    (path / "system.yaml").write_text(SYSTEM)
    return path


@settings(max_examples=150, deadline=None)
@given(documents(VigilConfig, ["system.yaml", "missing.yaml", "rolling_mad", "rate", "score", "1/3"]))
def test_any_config_document_loads_or_says_which_file(folder: Path, doc: Any) -> None:
    path = folder / "vigil.yaml"
    path.write_text(yaml.safe_dump(doc))
    loaded(load_config, path, ConfigError)


@settings(max_examples=150, deadline=None)
@given(documents(System, ["web", "api", "postgresql", "latency", "error_ratio", "~5.."]))
def test_any_system_document_loads_or_says_which_file(folder: Path, doc: Any) -> None:
    path = folder / "system-fuzz.yaml"
    path.write_text(yaml.safe_dump(doc))
    loaded(load_system, path, SystemFileError)


def put(doc: dict[str, Any], where: str, value: Any) -> dict[str, Any]:
    """``doc`` with ``value`` at the dotted path ``where`` (numbers index lists)."""
    node: Any = doc
    *parents, last = [int(part) if part.isdigit() else part for part in where.split(".")]
    for part in parents:
        node = node[part] if isinstance(part, int) else node.setdefault(part, {})
    node[last] = value
    return doc


DURATIONS = ["step", "interval", "checkpoint_interval", "alerting.for"]
DURATIONS += ["signals.0.step", "sources.prometheus.timeout"]
FIELDS = [
    "max_series",
    "server.port",
    "server.host",
    "shard.index",
    "alerting.threshold",
    "exported",
    "exclude",
]
FIELDS += ["alerting.alertmanager_urls", "signals.0.name", "signals.0.query", "signals.0.detector.kind"]
WRONG = [{"k": {"x": None}}, [[None]], math.nan]  # wrong for every field above
NOT_DURATIONS = ["fast", "", "1h-", math.inf, -math.inf, 10**400, -(10**400)]  # and for each duration


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(DURATIONS).flatmap(
        lambda f: st.tuples(st.just(f), st.sampled_from(WRONG + NOT_DURATIONS))
    )
    | st.tuples(st.sampled_from(FIELDS), st.sampled_from(WRONG))
)
def test_a_wrong_value_is_reported_at_its_field(folder: Path, wrong: tuple[str, Any]) -> None:
    field, value = wrong
    path = folder / "vigil.yaml"
    path.write_text(yaml.safe_dump(put(yaml.safe_load(yaml.safe_dump(CONFIG)), field, value)))
    problem = loaded(load_config, path, ConfigError)
    assert f"\n{field}" in problem or f"{field}." in problem, problem


SYSTEM_FIELDS = ["name", "services", "services.0.name", "services.0.replicas", "services.0.port"]
SYSTEM_FIELDS += ["services.0.calls", "slos.0.objective", "telemetry.histograms", "telemetry.selector"]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(SYSTEM_FIELDS), st.sampled_from(WRONG))
def test_a_wrong_value_in_a_system_file_is_reported_at_its_place(
    folder: Path, field: str, value: Any
) -> None:
    path = folder / "system-field.yaml"
    path.write_text(
        yaml.safe_dump(put({"name": "shop", "services": [dict(SERVICE)], "slos": [SLO]}, field, value))
    )
    place = "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in field.split(".")).lstrip(".")
    assert place in loaded(load_system, path, SystemFileError)


params = st.none() | st.booleans() | st.integers(-3, 3) | st.floats() | st.text(max_size=3)
params |= st.sampled_from([10**400, [], {}, [1], {"kind": "rolling_mad"}, "up", "down", "both"])


@st.composite
def detectors(draw: st.DrawFn) -> dict[str, Any]:
    """A detector of a registered kind with some of its real parameters (and maybe a misspelt one)."""
    kind = draw(st.sampled_from(sorted(DETECTORS)))
    names = [*inspect.signature(DETECTORS[kind]).parameters, "bogus"]
    return {
        "kind": kind,
        **{name: draw(params) for name in draw(st.lists(st.sampled_from(names), max_size=3))},
    }


@settings(max_examples=120, deadline=None)
@given(detectors())
def test_detector_parameters_build_or_are_reported_at_the_detector(
    folder: Path, detector: dict[str, Any]
) -> None:
    path = folder / "vigil.yaml"
    path.write_text(
        yaml.safe_dump(put(yaml.safe_load(yaml.safe_dump(CONFIG)), "signals.0.detector", detector))
    )
    problem = loaded(load_config, path, ConfigError)
    assert not problem or "signals.0" in problem, problem


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"- a list\n", "expected a mapping"),
        (b"just text\n", "expected a mapping"),
        (b"a: [b\n", "not valid YAML"),
        (b"\tname: x\n", "not valid YAML"),
        (b"name: x\x00\n", "not valid YAML"),
        (b"[" * 5000 + b"]" * 5000, "not valid YAML"),  # deeper than Python's recursion limit
        (b"max_series: " + b"9" * 5000 + b"\n", "not valid YAML"),  # more digits than int() reads
        (b"name: \xff\xfe caf\xe9\n", "not UTF-8 text"),
    ],
)
@pytest.mark.parametrize("load", [load_config, load_system])
def test_a_file_that_is_not_a_yaml_mapping_is_refused_by_name(
    tmp_path: Path, load, text: bytes, problem
) -> None:
    path = tmp_path / "file.yaml"
    path.write_bytes(text)
    assert problem in loaded(load, path, ConfigError if load is load_config else SystemFileError)


@pytest.mark.parametrize(
    "system", [5, [1], {"a": 1}, "~no-such-user-of-vigil/x.yaml", "a\0b", "missing.yaml"]
)
def test_a_config_whose_system_is_no_file_is_refused_at_system(folder: Path, system: Any) -> None:
    path = folder / "vigil.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, "system": system}))
    problem = loaded(load_config, path, ConfigError)
    assert "system: " in problem, problem


BURN_RATE = {"kind": "burn_rate", "bins": 0}  # window / bins


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"signals": 3.5}, "\nsignals: "),
        ({"signals": "abc"}, "\nsignals: "),
        (
            {"system": "system.yaml", "signals": [{"name": ["x"], "query": "up"}]},
            ".name: Input should be a valid string",
        ),
        ({"": 1}, "\n'': Extra inputs are not permitted"),  # an empty key, not "(top level)"
        ({"signals": [{**CONFIG["signals"][0], "detector": BURN_RATE}]}, "signals.0.detector: "),
        (
            {"signals": [{**CONFIG["signals"][0], "detector": {"kind": "log_novelty", "half_life": 0}}]},
            "by zero",
        ),
        ({"signals": [{**CONFIG["signals"][0], "detector": {"window": 10**400}}]}, "signals.0.detector: "),
    ],
)
def test_an_odd_config_is_refused_at_its_field(folder: Path, change: dict[str, Any], problem: str) -> None:
    path = folder / "vigil.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, **change}))
    assert problem in loaded(load_config, path, ConfigError)


def test_a_system_path_with_a_nul_is_refused_by_name() -> None:
    with pytest.raises(SystemFileError, match="cannot read it: embedded null byte"):
        load_system(Path("system\0.yaml"))


def test_an_empty_config_is_all_defaults_and_an_empty_system_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path).signals == []
    assert "expected a mapping" in loaded(load_system, path, SystemFileError)
