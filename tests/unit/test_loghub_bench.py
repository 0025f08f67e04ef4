"""The Loghub bench: its measures on hand-made labels, the leave-one-system-out choice, and vigil's
templates against drain3's defaults on the real samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.loghub import (
    Labelled,
    choose,
    datasets_dir,
    discover,
    grouping_accuracy,
    load,
    normalise,
    parsing_accuracy,
    score,
)
from bench.loghub_parsers import BASELINES, drain3_defaults, vigil_parser


def test_perfect_grouping_under_other_names() -> None:
    # Cluster ids are arbitrary: only which lines share a cluster matters.
    assert grouping_accuracy(["7", "7", "9", "3"], ["A", "A", "B", "C"]) == 1.0


def test_an_over_merged_cluster_makes_all_of_its_lines_wrong() -> None:
    # Cluster 1 holds all of A and the only line of B: none of its three lines is right, though two
    # of them are A's and all of A is there. Cluster 2 is exactly C.
    assert grouping_accuracy([1, 1, 1, 2, 2], ["A", "A", "B", "C", "C"]) == pytest.approx(2 / 5)


def test_a_split_true_group_makes_all_of_its_lines_wrong() -> None:
    # A is split over clusters 1 and 2 (each holds only A's lines, but not all of them); B is exact.
    assert grouping_accuracy([1, 1, 2, 3], ["A", "A", "A", "B"]) == pytest.approx(1 / 4)


def test_everything_in_one_cluster() -> None:
    assert grouping_accuracy([0, 0, 0], ["A", "B", "B"]) == 0.0
    assert grouping_accuracy([0, 0, 0], ["A", "A", "A"]) == 1.0


def test_lengths_must_agree() -> None:
    with pytest.raises(ValueError, match="one label per line"):
        grouping_accuracy([1, 2], ["A"])


def test_templates_compare_by_their_words_not_by_how_variables_are_written() -> None:
    assert normalise("Received block <*> of size <NUM> from /<IP>") == normalise(
        "Received  block blk_<*> of size <*> from /<*>:<*>"
    )
    assert normalise("Deleting <*> <*> <*> now") == "Deleting <*> now"  # a list is one variable
    assert (
        parsing_accuracy(["order <*> paid", "order <*> placed"], ["order <*> paid", "order <*> paid"]) == 0.5
    )


def test_each_fold_chooses_on_the_other_systems_only() -> None:
    # Candidate 1 is best on the held-out system A alone; on B and C candidate 0 is better.
    scores = [
        {"A": {"ga": 0.5}, "B": {"ga": 0.9}, "C": {"ga": 0.9}},
        {"A": {"ga": 1.0}, "B": {"ga": 0.8}, "C": {"ga": 0.8}},
    ]
    assert choose(scores, ["B", "C"]) == 0
    assert choose(scores, ["A", "B", "C"]) == 1
    assert choose([scores[0], scores[0]], ["B"]) == 0  # among equals, the earlier (the defaults)


def test_systems_are_discovered_from_any_folder_of_the_same_layout(tmp_path: Path) -> None:
    shop = tmp_path / "Shop"
    shop.mkdir()
    (shop / "Shop_2k.log_structured.csv").write_text(
        "LineId,Content,EventId,EventTemplate\n"
        "1,order 1 paid,E1,order <*> paid\n"
        "2,order 22 paid,E1,order <*> paid\n"
        "3,cart emptied,E2,cart emptied\n"
    )
    (tmp_path / "notes").mkdir()  # no labelled sample: not a system
    assert discover(tmp_path) == ["Shop"]
    data = load("Shop", tmp_path)
    assert data.events == ["E1", "E1", "E2"]
    assert score(vigil_parser(), data) == {"ga": 1.0, "pa": 1.0}
    (shop / "Shop_2k.log_structured.csv").write_text("LineId,Content\n1,x\n")
    with pytest.raises(ValueError, match="no column EventId, EventTemplate"):
        load("Shop", tmp_path)


def test_vigils_defaults_group_better_than_drain3s_on_loghub() -> None:
    if not datasets_dir().is_dir():
        pytest.skip(f"Loghub-2k datasets not found at {datasets_dir()}")
    data: dict[str, Labelled] = {s: load(s, datasets_dir()) for s in discover(datasets_dir())}
    assert len(data) == 8
    ours = {s: score(vigil_parser(), d)["ga"] for s, d in data.items()}
    drain3 = {s: score(drain3_defaults, d)["ga"] for s, d in data.items()}
    assert sum(ours.values()) > sum(drain3.values()), (ours, drain3)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_parses_the_same_bare_lines(name: str) -> None:
    lines = ["order 1 paid", "order 22 paid", "cart 7 emptied by user 9", "cart 8 emptied by user 10"] * 3
    parsed = BASELINES[name](lines)
    assert len(parsed) == len(lines)
    assert grouping_accuracy([g for g, _ in parsed], ["paid", "paid", "emptied", "emptied"] * 3) == 1.0
