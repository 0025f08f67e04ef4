"""Fuzzed Prometheus file_sd files, where the scrape collector finds its targets: targets, or a
``ValueError`` naming the file and what is wrong in it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.collectors.scrape import targets_from_file_sd

junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)
groups = st.fixed_dictionaries(
    {},
    optional={
        "targets": st.lists(st.text(max_size=8), max_size=3) | junk,
        "labels": st.dictionaries(st.sampled_from(["job", "__scheme__", "__metrics_path__"]), junk) | junk,
    },
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(groups | junk, max_size=3) | junk | st.binary(max_size=20), st.sampled_from([".json", ".yaml"])
)
def test_a_file_sd_file_gives_targets_or_an_error_naming_it(tmp_path_factory, doc, suffix: str) -> None:
    path = tmp_path_factory.getbasetemp() / f"targets{suffix}"
    if isinstance(doc, bytes):
        path.write_bytes(doc)
    else:
        path.write_text(json.dumps(doc))
    try:
        targets, problem = targets_from_file_sd(path), ""
    except ValueError as error:
        targets, problem = [], str(error)
    assert all(isinstance(t.url, str) for t in targets)
    assert not problem or problem.startswith(f"{path}: "), problem


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ("[" * 100_000 + "]" * 100_000, "not a file_sd file"),
        ('[{"labels": ["job", "shop"]}]', "group 0 is not"),
        ('[{"targets": ["a:1"]}, {"targets": [9100]}]', "group 1 is not"),
        ('[{"targets": "a:1"}]', "group 0 is not"),
    ],
)
def test_a_malformed_file_sd_file_is_refused_by_name(tmp_path: Path, doc: str, problem: str) -> None:
    path = tmp_path / "targets.json"
    path.write_text(doc)
    with pytest.raises(ValueError, match=re.escape(f"{path}: {problem}")):
        targets_from_file_sd(path)
