"""Score vigil's detectors on the Numenta Anomaly Benchmark (NAB); prints JSON.

Each of NAB's 58 files is streamed in row order through a fresh detector: ``score_one(x, t)`` before
``learn_one(x, t)``, point by point, with ``t`` the row's timestamp as unix seconds (read as UTC), so
no detector sees the future. vigil's score ``s`` (0..inf, 1 = its own alarm threshold) becomes NAB's
[0, 1] anomaly score as ``s / (1 + s)``: monotone, so the threshold NAB optimises is the same decision
as some vigil threshold, reported back as ``threshold_vigil``. Scores are kept at full float
precision; ``bench/nab_scorer.py`` then optimises one global threshold per profile and normalises
(null = 0, perfect = 100) exactly as NAB's scorer does.

Usage:
    python bench/nab.py                                 # baselines + every registered detector
    python bench/nab.py --detector rolling_mad --params '{"window": 240}'
    python bench/nab.py --detector rolling_mad --detector other --params '{"other": {"k": 3}}'
    python bench/nab.py --baselines [--nab-rounding]

``--params`` is a JSON object: with one ``--detector``, that detector's keyword arguments; otherwise
``{"<detector>": {...}, ...}``. ``--nab-rounding`` rounds every NAB score to 12 significant digits, as
NAB's own result CSVs do (Python 2's ``str``): the published scoreboard was computed from those, and
that rounding turns many windowed-Gaussian scores into ties at 1.0.

The corpus is read from ``$VIGIL_DATASETS/nab`` (default ``../shared/datasets/nab`` from the project
root). Files are spread over 2 processes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    # Run as `python bench/nab.py`: make `bench` importable from the project root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.nab_baselines import BASELINES
from bench.nab_scorer import Corpus, FloatArray, ProfileResult, load_corpus, nab_root, score_detector
from vigil.detectors.registry import DETECTORS, make

PROCESSES = 2
# The dataset README's published standard-profile scores (NAB scoreboard; random: seed 42, current scorer).
PUBLISHED_STANDARD = {
    "ARTime": 74.9,
    "Numenta HTM": 70.5,
    "CAD OSE": 69.9,
    "earthgecko Skyline": 58.2,
    "KNN CAD": 58.0,
    "Relative Entropy": 54.6,
    "Random Cut Forest": 51.7,
    "Twitter ADVec": 47.1,
    "windowedGaussian": 39.6,
    "Etsy Skyline": 35.7,
    "random": 17.7,
    "null": 0.0,
}

# (kind, detector name, params, file index, values, unix seconds)
Task = tuple[str, str, dict[str, Any], int, FloatArray, FloatArray]


def to_nab(scores: FloatArray) -> FloatArray:
    """vigil's 0..inf scale -> NAB's [0, 1]: s / (1 + s); +inf -> 1, NaN and negatives -> 0 (neutral)."""
    s = np.nan_to_num(np.maximum(np.asarray(scores, dtype=np.float64), 0.0), nan=0.0, posinf=np.inf)
    with np.errstate(invalid="ignore"):
        mapped = s / (1.0 + s)
    return np.where(np.isinf(s), 1.0, mapped)


def stream(name: str, params: dict[str, Any], values: FloatArray, times: FloatArray) -> FloatArray:
    """One file through a fresh detector, each point scored before it is learnt."""
    detector = make(name, **params)
    scores = np.empty(len(values), dtype=np.float64)
    for i, (x, t) in enumerate(zip(values.tolist(), times.tolist(), strict=True)):
        scores[i] = detector.score_one(x, t)
        detector.learn_one(x, t)
    return scores


def run_file(task: Task) -> tuple[int, FloatArray, int, float]:
    """(file index, NAB scores, NaN scores seen, seconds) for one detector on one file."""
    kind, name, params, index, values, times = task
    start = time.perf_counter()
    if kind == "baseline":
        scores = BASELINES[name](values)
        nans = 0
    else:
        raw = stream(name, params, values, times)
        nans = int(np.isnan(raw).sum())
        scores = to_nab(raw)
    return index, scores, nans, time.perf_counter() - start


def round_like_nab(scores: FloatArray) -> FloatArray:
    return np.array([float(f"{v:.12g}") for v in scores.tolist()], dtype=np.float64)


def detect(
    pool: Any, corpus: Corpus, kind: str, name: str, params: dict[str, Any]
) -> tuple[list[FloatArray], int, float]:
    """Every file's NAB scores for one detector, computed in the pool; largest files first."""
    order = sorted(range(len(corpus.files)), key=lambda i: -len(corpus.files[i].values))
    tasks: list[Task] = [
        (kind, name, params, i, corpus.files[i].values, corpus.files[i].unix_seconds) for i in order
    ]
    scores: list[FloatArray | None] = [None] * len(tasks)
    nans = 0
    busy = 0.0
    for index, file_scores, file_nans, seconds in pool.imap_unordered(run_file, tasks):
        scores[index] = file_scores
        nans += file_nans
        busy += seconds
    done = [s for s in scores if s is not None]
    assert len(done) == len(tasks)
    return done, nans, busy


def report(
    results: dict[str, ProfileResult], seconds: float, vigil_scale: bool, params: dict[str, Any], nans: int
) -> dict[str, Any]:
    out: dict[str, Any] = {profile: r.normalized for profile, r in results.items()}
    out["threshold"] = {profile: r.threshold for profile, r in results.items()}
    if vigil_scale:
        # p = s / (1 + s)  <=>  s = p / (1 - p); the no-detection threshold (1.1) has no vigil equivalent.
        out["threshold_vigil"] = {
            profile: (r.threshold / (1.0 - r.threshold) if r.threshold < 1.0 else None)
            for profile, r in results.items()
        }
        out["params"] = params
        out["nan_scores"] = nans
    out["raw"] = {profile: r.raw for profile, r in results.items()}
    out["windows_found"] = {profile: r.windows_found for profile, r in results.items()}
    out["seconds"] = seconds
    return out


def split_params(raw: str | None, detectors: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not raw:
        return {name: {} for name in detectors}
    given = json.loads(raw)
    if not isinstance(given, dict):
        raise SystemExit("--params must be a JSON object")
    if given and all(k in detectors and isinstance(v, dict) for k, v in given.items()):
        return {name: dict(given.get(name, {})) for name in detectors}
    if len(detectors) == 1:
        return {detectors[0]: given}
    raise SystemExit('--params with several detectors must be {"<detector>": {...}, ...}')


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--detector", action="append", default=[], metavar="NAME", help="a registered vigil detector"
    )
    parser.add_argument("--baselines", action="store_true", help="NAB's null, random and windowedGaussian")
    parser.add_argument("--params", help="detector keyword arguments as JSON")
    parser.add_argument(
        "--nab-rounding", action="store_true", help="round scores to 12 significant digits like NAB's CSVs"
    )
    args = parser.parse_args(argv)

    detectors: list[str] = list(dict.fromkeys(args.detector))
    baselines = args.baselines
    if not detectors and not baselines:
        detectors, baselines = sorted(DETECTORS), True
    unknown = [d for d in detectors if d not in DETECTORS]
    if unknown:
        parser.error(f"unknown detector(s) {unknown}; known: {', '.join(sorted(DETECTORS))}")
    params = split_params(args.params, detectors)

    root = nab_root()
    if not (root / "labels" / "combined_windows.json").is_file():
        raise SystemExit(f"NAB dataset not found at {root} (set VIGIL_DATASETS to the datasets folder)")
    corpus = load_corpus(root)

    runs: list[tuple[str, str, dict[str, Any]]] = []
    if baselines:
        runs += [("baseline", name, {}) for name in BASELINES]
    runs += [("vigil", name, params[name]) for name in detectors]

    output: dict[str, Any] = {}
    with multiprocessing.Pool(PROCESSES) as pool:
        for kind, name, detector_params in runs:
            start = time.perf_counter()
            scores, nans, _ = detect(pool, corpus, kind, name, detector_params)
            if args.nab_rounding:
                scores = [round_like_nab(s) for s in scores]
            results = score_detector(corpus.layouts, scores, corpus.profiles)
            seconds = time.perf_counter() - start
            output[name] = report(results, seconds, kind == "vigil", detector_params, nans)
            print(f"{name}: standard {results['standard'].normalized:.2f} ({seconds:.1f}s)", file=sys.stderr)

    output["published_standard"] = PUBLISHED_STANDARD
    output["corpus"] = {
        "path": str(root),
        "files": len(corpus.files),
        "rows": corpus.rows,
        "windows": sum(layout.windows for layout in corpus.layouts),
        "nab_rounding": args.nab_rounding,
    }
    print(json.dumps(output, indent=2))
    return output


if __name__ == "__main__":
    main()
