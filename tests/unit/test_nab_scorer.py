"""The NAB scorer: its rules on small synthetic files, and NAB's published anchors on the real corpus."""

from __future__ import annotations

import numpy as np
import pytest

from bench.nab import round_like_nab
from bench.nab_baselines import BASELINES
from bench.nab_scorer import (
    PROBATION,
    Corpus,
    FileLayout,
    Profile,
    build_layout,
    load_corpus,
    nab_root,
    probation_length,
    score_detector,
    score_file,
    sweep,
)

STANDARD = Profile("standard", tp_weight=1.0, fp_weight=0.11, fn_weight=1.0, tn_weight=1.0)
ROWS = 100  # probation: 15 rows
WINDOW = (40, 49)  # rows (= timestamps) of the one window, inclusive


def layout(windows: list[tuple[int, int]] | None = None) -> FileLayout:
    return build_layout("synthetic.csv", list(range(ROWS)), windows if windows is not None else [WINDOW])


def detections_at(*rows: int) -> np.ndarray:
    scores = np.zeros(ROWS)
    scores[list(rows)] = 1.0
    return scores


def score_at(*rows: int, windows: list[tuple[int, int]] | None = None) -> float:
    return score_file(layout(windows), detections_at(*rows), 0.5, STANDARD).score


def test_probation_is_15_percent_capped_at_750_rows() -> None:
    assert probation_length(100) == 15
    assert probation_length(4032) == 604
    assert probation_length(22695) == 750


def test_detection_at_window_start_earns_the_full_tp_weight() -> None:
    assert score_at(WINDOW[0]) == pytest.approx(STANDARD.tp_weight)


def test_early_detection_earns_more_than_late_one() -> None:
    early, middle, late = score_at(41), score_at(45), score_at(49)
    assert STANDARD.tp_weight > early > middle > late > 0
    # The last of the window's 10 rows: scaledSigmoid(-1/10) / scaledSigmoid(-1), about a quarter.
    assert late == pytest.approx((2 / (1 + np.exp(-0.5)) - 1) / (2 / (1 + np.exp(-5)) - 1))


def test_only_the_first_detection_in_a_window_counts() -> None:
    assert score_at(42, 43, 44, 45) == pytest.approx(score_at(42))
    assert score_at(42, 47) == pytest.approx(score_at(42))


def test_missed_window_costs_the_fn_weight() -> None:
    assert score_at() == pytest.approx(-STANDARD.fn_weight)


def test_false_positive_costs_the_fp_weight() -> None:
    # Before any window (and far after one) an FP costs the full weight.
    assert score_at(20) == pytest.approx(-STANDARD.fn_weight - STANDARD.fp_weight)
    assert score_at(40, 20) == pytest.approx(STANDARD.tp_weight - STANDARD.fp_weight)
    assert score_at(40, 95) == pytest.approx(STANDARD.tp_weight - STANDARD.fp_weight)
    # Right after a window it costs less, and each FP is charged.
    just_after = score_at(40, 50) - STANDARD.tp_weight
    assert -STANDARD.fp_weight < just_after < 0
    assert score_at(20, 25, 30) == pytest.approx(-STANDARD.fn_weight - 3 * STANDARD.fp_weight)


def test_probation_rows_are_ignored() -> None:
    assert score_at(0, 5, 14) == pytest.approx(score_at())
    assert score_at(15) == pytest.approx(score_at(20))  # the first row after probation is scored
    # A window wholly inside probation is neither found nor missed.
    early_window = [(5, 10), WINDOW]
    probed = layout(early_window)
    assert probed.window[5:11].tolist() == [PROBATION] * 6
    assert probed.scored_windows == [1]
    assert score_at(40, windows=early_window) == pytest.approx(STANDARD.tp_weight)


def test_sweep_finds_the_best_threshold() -> None:
    scores = np.zeros(ROWS)
    scores[20] = 0.9  # an FP above the window's best score
    scores[42] = 0.8
    scores[60] = 0.3  # a far FP below it
    best_threshold, best_raw = sweep([layout()], [scores], STANDARD).best()
    assert best_threshold == 0.8  # catching the window is worth one FP, not two
    assert best_raw == pytest.approx(score_file(layout(), scores, best_threshold, STANDARD).score)


# --- NAB's published anchors on the real corpus ---------------------------------------------------


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    if not (nab_root() / "labels" / "combined_windows.json").is_file():
        pytest.skip(f"NAB dataset not found at {nab_root()}")
    return load_corpus()


def normalized(corpus: Corpus, name: str, rounding: bool = False) -> dict[str, float]:
    scores = [BASELINES[name](f.values) for f in corpus.files]
    if rounding:
        scores = [round_like_nab(s) for s in scores]
    return {
        profile: r.normalized
        for profile, r in score_detector(corpus.layouts, scores, corpus.profiles).items()
    }


def test_corpus_shape(corpus: Corpus) -> None:
    assert len(corpus.files) == 58
    assert corpus.rows == 365_558
    assert sum(layout.windows for layout in corpus.layouts) == 116


def test_null_detector_scores_exactly_zero(corpus: Corpus) -> None:
    assert normalized(corpus, "null") == {
        "standard": 0.0,
        "reward_low_FP_rate": 0.0,
        "reward_low_FN_rate": 0.0,
    }


def test_random_detector_matches_published_score(corpus: Corpus) -> None:
    assert normalized(corpus, "random")["standard"] == pytest.approx(17.7, abs=0.1)


def test_windowed_gaussian_matches_published_scores(corpus: Corpus) -> None:
    scores = normalized(corpus, "windowedGaussian", rounding=True)
    assert scores["standard"] == pytest.approx(39.6, abs=0.1)
    assert scores["reward_low_FP_rate"] == pytest.approx(20.9, abs=0.1)
    assert scores["reward_low_FN_rate"] == pytest.approx(47.4, abs=0.1)
