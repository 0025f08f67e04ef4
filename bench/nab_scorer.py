"""A faithful re-implementation of the Numenta Anomaly Benchmark (NAB) scorer.

It follows NAB's own scorer (``nab/sweeper.py``, ``nab/optimizer.py``, ``nab/scorer.py`` and
``Runner.normalize`` at numenta/NAB ea702d7) rule by rule, so numbers computed here can be put next
to NAB's published scoreboard:

- Probation: the first ``min(floor(0.15 * rows), 0.15 * 5000)`` rows of a file are ignored, detections
  and windows alike (a window lying wholly in probation is neither found nor missed).
- Windows (``labels/combined_windows.json``) are inclusive at both ends and are entered and left by
  exact timestamp match while walking the file in its own row order, as NAB does.
- A detection at row ``i`` inside a window spanning rows ``[left, right]`` is worth
  ``tpWeight * scaledSigmoid(-(right - i + 1) / width) / scaledSigmoid(-1)``: exactly ``tpWeight``
  at the window's first row, falling towards 0 at its end. Only the best (= earliest) detection of a
  window counts; a window without one costs ``fnWeight``.
- A detection outside every window costs ``fpWeight * scaledSigmoid(|i - prevRight| / (prevWidth - 1))``
  (a value in [-1, 0)), so an FP just after a window costs less than one far away; with no window
  before it the full ``fpWeight`` is charged.
- One global threshold per detector and profile: a row is a detection when ``score >= threshold``.
  NAB's current optimiser sweeps every distinct score of the corpus; this one does the same, exactly,
  with a sort and cumulative sums instead of NAB's per-row Python loop, so it takes well under a
  second for the 365k rows. Among thresholds with the best raw score the highest one wins (NAB keeps
  the first of a stable sort that starts from the highest threshold).
- Normalised score: ``100 * (raw - null_raw) / (perfect_raw - null_raw)`` where ``null_raw`` is the
  optimised raw score of the constant-0.5 null detector and ``perfect_raw = windows * tpWeight``.

TN weights exist in ``profiles.json`` but NAB never uses them; neither does this module.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

PROBATION_PERCENT = 0.15
OUTSIDE = -1  # row outside every window
PROBATION = -2  # row in the probation period: not scored at all
NO_DETECTION = 1.1  # NAB's first sweep threshold, above every score in [0, 1]
# Raw scores closer than this are the same score: NAB sums in another order, so bit-exact ties may
# differ in the last bits between the two implementations; the tie rule (highest threshold) decides.
TIE_TOLERANCE = 1e-9

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def scaled_sigmoid(relative_position: float) -> float:
    """NAB's ``scaledSigmoid``: ~0.987 at -1 (window start), 0 at the window end, -> -1 after it."""
    if relative_position > 3.0:
        return -1.0  # an FP far behind the window: full cost (also avoids exp overflow)
    return 2.0 * sigmoid(-5.0 * relative_position) - 1.0


MAX_TP = scaled_sigmoid(-1.0)


def probation_length(rows: int, percent: float = PROBATION_PERCENT) -> int:
    # NAB: min(floor(p * rows), p * 5000); with p = 0.15 the cap is 750 rows.
    return int(min(math.floor(percent * rows), percent * 5000))


@dataclass(frozen=True)
class Profile:
    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float
    tn_weight: float


def load_profiles(path: Path) -> dict[str, Profile]:
    """``profiles.json`` -> profiles by name, in the file's order."""
    raw: dict[str, Any] = json.loads(path.read_text())
    profiles: dict[str, Profile] = {}
    for name, body in raw.items():
        cost = body["CostMatrix"]
        profiles[name] = Profile(
            name,
            float(cost["tpWeight"]),
            float(cost["fpWeight"]),
            float(cost["fnWeight"]),
            float(cost["tnWeight"]),
        )
    return profiles


@dataclass(frozen=True)
class FileLayout:
    """Where each row of one file falls with respect to its windows, independent of any detector.

    ``window[i]`` is the row's window number within the file, ``OUTSIDE`` or ``PROBATION``;
    ``tp_unit[i]`` is the unweighted reward of a detection in a window (1.0 at its first row);
    ``fp_unit[i]`` the unweighted cost of a detection outside (in [-1, 0)).
    """

    name: str
    rows: int
    probation: int
    windows: int
    window: IntArray
    tp_unit: FloatArray
    fp_unit: FloatArray

    @property
    def scored_windows(self) -> list[int]:
        """Windows with at least one row after probation: only these can be found or missed."""
        return sorted({int(w) for w in np.unique(self.window) if w >= 0})


def build_layout(
    name: str,
    timestamps: Sequence[Any],
    windows: Sequence[tuple[Any, Any]],
    probation_percent: float = PROBATION_PERCENT,
) -> FileLayout:
    """Port of NAB's ``Sweeper.calcSweepScore`` walk (without the detector's scores).

    Walks rows in file order, entering a window when a row's timestamp equals the next window's
    start and leaving it after the row equal to its end; window edges are located with the first
    matching row, exactly as NAB's ``list.index`` does (a few NAB files have duplicate timestamps).
    """
    ts = list(timestamps)
    rows = len(ts)
    probation = probation_length(rows, probation_percent)
    pending = list(windows)
    for start, end in pending:
        if start not in ts or end not in ts:
            raise ValueError(f"{name}: window ({start}, {end}) does not match a row's timestamp exactly")

    window = np.full(rows, OUTSIDE, dtype=np.int64)
    tp_unit = np.zeros(rows, dtype=np.float64)
    fp_unit = np.zeros(rows, dtype=np.float64)
    next_window = 0
    current: int | None = None
    current_end: Any = None
    right = width = 0
    prev_right: int | None = None
    prev_width = 0
    for i, t in enumerate(ts):
        if pending and t == pending[0][0]:
            start, current_end = pending.pop(0)
            current = next_window
            next_window += 1
            right = ts.index(current_end)
            width = right - ts.index(start) + 1
        if current is not None:
            window[i] = current
            tp_unit[i] = scaled_sigmoid(-(right - i + 1) / width) / MAX_TP
        elif prev_right is None:
            fp_unit[i] = -1.0  # no window before: as if infinitely far from one
        else:
            fp_unit[i] = scaled_sigmoid(abs(prev_right - i) / (prev_width - 1))
        if i < probation:
            window[i] = PROBATION
        if current is not None and t == current_end:
            prev_right, prev_width = i, width
            current = None
    return FileLayout(name, rows, probation, len(windows), window, tp_unit, fp_unit)


@dataclass(frozen=True)
class ThresholdSweep:
    """Raw corpus score for every candidate threshold, highest threshold first."""

    thresholds: FloatArray
    raw: FloatArray

    def best(self) -> tuple[float, float]:
        """(threshold, raw score) with the best raw score; ties go to the highest threshold."""
        top = float(self.raw.max())
        index = int(np.argmax(self.raw >= top - TIE_TOLERANCE))
        return float(self.thresholds[index]), float(self.raw[index])


def _as_scores(layout: FileLayout, scores: ArrayLike) -> FloatArray:
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != (layout.rows,):
        raise ValueError(f"{layout.name}: {values.shape[0]} scores for {layout.rows} rows")
    if np.isnan(values).any():
        raise ValueError(f"{layout.name}: NaN anomaly score")
    return values


def sweep(layouts: Sequence[FileLayout], scores: Sequence[ArrayLike], profile: Profile) -> ThresholdSweep:
    """Exact raw score at every distinct score value of the corpus (NAB's ``calcScoreByThreshold``).

    Rows are sorted by score, descending. Lowering the threshold past a row adds its FP cost, or, for
    a window row, raises the window's contribution from its current best (``-fnWeight`` while
    unfound) to this row's reward if that is better. Each such change is a delta at the row's rank,
    so the raw score at every threshold is one cumulative sum read at the end of each tie group.
    """
    all_scores: list[FloatArray] = []
    all_windows: list[IntArray] = []
    all_values: list[FloatArray] = []
    base = 0.0
    offset = 0
    for layout, file_scores in zip(layouts, scores, strict=True):
        values = _as_scores(layout, file_scores)
        keep = layout.window != PROBATION
        win = layout.window[keep]
        inside = win >= 0
        all_scores.append(values[keep])
        # Windows are numbered across the corpus so that each is its own score part.
        all_windows.append(np.where(inside, win + offset, OUTSIDE))
        all_values.append(
            np.where(
                inside, layout.tp_unit[keep] * profile.tp_weight, layout.fp_unit[keep] * profile.fp_weight
            )
        )
        base -= profile.fn_weight * len(layout.scored_windows)
        offset += layout.windows

    score = np.concatenate(all_scores) if all_scores else np.zeros(0)
    win = np.concatenate(all_windows) if all_windows else np.zeros(0, dtype=np.int64)
    value = np.concatenate(all_values) if all_values else np.zeros(0)
    order = np.argsort(-score, kind="stable")
    score, win, value = score[order], win[order], value[order]

    delta = np.where(win == OUTSIDE, value, 0.0)
    inside = np.flatnonzero(win != OUTSIDE)
    # Group window rows by window, keeping rank order inside each group.
    grouped = inside[np.argsort(win[inside], kind="stable")]
    bounds = np.flatnonzero(np.diff(win[grouped])) + 1
    for ranks in np.split(grouped, bounds):
        if ranks.size == 0:
            continue
        best = np.maximum.accumulate(np.maximum(value[ranks], -profile.fn_weight))
        delta[ranks] = np.diff(best, prepend=-profile.fn_weight)

    totals = base + np.cumsum(delta)
    # The last row of each run of equal scores closes that threshold.
    group_ends = np.flatnonzero(np.append(score[1:] != score[:-1], True)) if score.size else np.zeros(0, int)
    no_detection = max(NO_DETECTION, float(np.nextafter(score[0], np.inf))) if score.size else NO_DETECTION
    thresholds = np.concatenate([[no_detection], score[group_ends]])
    raw = np.concatenate([[base], totals[group_ends]])
    return ThresholdSweep(thresholds, raw)


@dataclass(frozen=True)
class FileScore:
    """One file at one threshold, as a row of NAB's ``<detector>_<profile>_scores.csv``."""

    name: str
    score: float
    tp: int
    tn: int
    fp: int
    fn: int
    windows_found: int
    windows_scored: int


def score_file(layout: FileLayout, scores: ArrayLike, threshold: float, profile: Profile) -> FileScore:
    """NAB's ``Sweeper.scoreDataSet``: the file's raw score with detections ``score >= threshold``."""
    values = _as_scores(layout, scores)
    keep = layout.window != PROBATION
    detected = (values >= threshold) & keep
    inside = layout.window >= 0
    outside = layout.window == OUTSIDE
    fp_cost = float(np.sum(layout.fp_unit[detected & outside])) * profile.fp_weight
    parts: list[float] = []
    found = 0
    for w in layout.scored_windows:
        hits = detected & (layout.window == w)
        if hits.any():
            found += 1
            parts.append(max(-profile.fn_weight, float(layout.tp_unit[hits].max()) * profile.tp_weight))
        else:
            parts.append(-profile.fn_weight)
    return FileScore(
        name=layout.name,
        score=fp_cost + math.fsum(parts),
        tp=int(np.sum(detected & inside)),
        tn=int(np.sum(~detected & outside)),
        fp=int(np.sum(detected & outside)),
        fn=int(np.sum(~detected & inside)),
        windows_found=found,
        windows_scored=len(layout.scored_windows),
    )


@dataclass(frozen=True)
class ProfileResult:
    profile: str
    threshold: float
    raw: float
    null_raw: float
    perfect_raw: float
    normalized: float
    files: list[FileScore]

    @property
    def windows_found(self) -> int:
        return sum(f.windows_found for f in self.files)


def null_raw(layouts: Sequence[FileLayout], profile: Profile) -> float:
    """The null detector's raw score: a constant 0.5, threshold optimised like any detector's."""
    constant = [np.full(layout.rows, 0.5) for layout in layouts]
    return sweep(layouts, constant, profile).best()[1]


def perfect_raw(layouts: Sequence[FileLayout], profile: Profile) -> float:
    # NAB's normalize(): the number of labelled windows times the TP weight, i.e. one detection on
    # the first row of every window.
    return sum(layout.windows for layout in layouts) * profile.tp_weight


def score_detector(
    layouts: Sequence[FileLayout], scores: Sequence[ArrayLike], profiles: Mapping[str, Profile]
) -> dict[str, ProfileResult]:
    """Optimise the threshold, score every file at it and normalise, for each profile."""
    arrays = [_as_scores(layout, s) for layout, s in zip(layouts, scores, strict=True)]
    results: dict[str, ProfileResult] = {}
    for name, profile in profiles.items():
        threshold, _ = sweep(layouts, arrays, profile).best()
        files = [score_file(layout, s, threshold, profile) for layout, s in zip(layouts, arrays, strict=True)]
        raw = math.fsum(f.score for f in files)  # NAB's "Totals" row
        null = null_raw(layouts, profile)
        perfect = perfect_raw(layouts, profile)
        normalized = 100.0 * (raw - null) / (perfect - null)
        results[name] = ProfileResult(name, threshold, raw, null, perfect, normalized, files)
    return results


# --- the corpus on disk -------------------------------------------------------------------------


def datasets_root() -> Path:
    """``$VIGIL_DATASETS`` or ``../shared/datasets`` next to the project root."""
    override = os.environ.get("VIGIL_DATASETS")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def nab_root() -> Path:
    return datasets_root() / "nab"


@dataclass(frozen=True)
class NabFile:
    name: str  # relative path, e.g. "realKnownCause/nyc_taxi.csv"
    timestamps: NDArray[np.datetime64]
    values: FloatArray
    windows: list[tuple[np.datetime64, np.datetime64]]

    @property
    def unix_seconds(self) -> FloatArray:
        # NAB's timestamps carry no zone; read them as UTC.
        return self.timestamps.astype("datetime64[us]").astype(np.int64) / 1e6


@dataclass(frozen=True)
class Corpus:
    root: Path
    files: list[NabFile]
    layouts: list[FileLayout]
    profiles: dict[str, Profile]

    @property
    def rows(self) -> int:
        return sum(layout.rows for layout in self.layouts)


def read_file(root: Path, name: str, windows: Sequence[Sequence[str]]) -> NabFile:
    with (root / "data" / name).open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        if header[:2] != ["timestamp", "value"]:
            raise ValueError(f"{name}: unexpected header {header}")
        rows = list(reader)
    stamps = np.array([r[0] for r in rows], dtype="datetime64[us]")
    values = np.array([float(r[1]) for r in rows], dtype=np.float64)
    limits: list[tuple[np.datetime64, np.datetime64]] = [
        (np.datetime64(a, "us"), np.datetime64(b, "us")) for a, b in windows
    ]
    return NabFile(name, stamps, values, limits)


def load_corpus(root: Path | None = None) -> Corpus:
    """Every file named in ``labels/combined_windows.json``, in sorted order, with its layout."""
    root = root or nab_root()
    labels: dict[str, list[list[str]]] = json.loads((root / "labels" / "combined_windows.json").read_text())
    files = [read_file(root, name, labels[name]) for name in sorted(labels)]
    # Compare timestamps as integers: exact, and much faster than datetime64 scalars in the walk.
    layouts = [
        build_layout(
            f.name,
            f.timestamps.astype(np.int64).tolist(),
            [(int(a.astype(np.int64)), int(b.astype(np.int64))) for a, b in f.windows],
        )
        for f in files
    ]
    return Corpus(root, files, layouts, load_profiles(root / "profiles.json"))
