"""The detector contract (``vigil.detectors.base``), checked on every registered detector.

Every entry of ``DETECTORS`` is picked up at collection time, plus the wrappers ``Calibrated`` and
``Excluding`` around a scalar detector. Each detector runs on a seeded synthetic stream of its
input kind with labelled anomalies (``STREAMS``); ``TWEAKS`` gives parameters or a stream of its
own to a detector the generic stream does not suit. A detector whose input kind has no stream
generator fails (it is not skipped): add a generator here when adding an input kind.

Checks, one test each: (a) the input is not mutated, nor kept and read after the call; (b) cold
start; (c) ``score_one`` leaves the detector unchanged; (d) bounded memory; (e) a pickled copy
goes on exactly like the original; (f) determinism; (g) ranking quality (ROC AUC); (h) scores
finite, >= 0, exactly 0 while warming up, bands sane; (i) doctests; (j) the common scale: normal
points rarely score above 1, anomalies often do; (k) parameters under their own names and learned
state in attributes ending in ``_``.
"""

from __future__ import annotations

import copy
import doctest
import functools
import importlib
import inspect
import math
import pickle
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import vigil.detectors
from vigil.detectors.base import AnyDetector, Band
from vigil.detectors.calibration import Calibrated
from vigil.detectors.exclusion import Excluding
from vigil.detectors.fitting import fit, fit_many
from vigil.detectors.registry import DETECTORS, make
from vigil.detectors.rolling_mad import RollingMAD

T0 = 1_700_000_000.0  # streams start at a realistic unix time
LENGTH = 4000  # points of the labelled stream
# (d): pickled size after MEMORY_LONG points at most MEMORY_GROWTH times that after MEMORY_SHORT.
# MEMORY_SHORT is past every window the detectors use by default (the longest: Calibrated's 5000
# raw scores, preallocated), so a detector whose state is bounded has reached its size by then; a
# detector keeping a little per point grows 4x from there.
MEMORY_SHORT, MEMORY_LONG, MEMORY_GROWTH = 5_000, 20_000, 1.5
MIN_AUC = 0.75
MAX_FALSE_ALARMS = 0.02  # (j): share of normal points (past warm-up) scoring above 1
MIN_DETECTED = 0.3  # (j): share of labelled anomalies scoring above 1


@dataclass
class Stream:
    xs: list[Any]
    ts: np.ndarray
    labels: np.ndarray  # True: an injected anomaly


def quiet(n: int) -> int:
    """Points before the first anomaly: a quarter of the labelled stream, and no more in a longer one,
    so that (d) measures the state after anomalies at both of its sizes."""
    return min(n // 4, LENGTH // 4)


def anomaly_positions(rng: np.random.Generator, n: int, rate: float = 0.01) -> np.ndarray:
    """Positions of point anomalies, none in the first ``quiet(n)`` points (warm-up and first windows)."""
    labels = rng.random(n) < rate
    labels[: quiet(n)] = False
    return labels


def bursts(rng: np.random.Generator, n: int, length: int, every: int) -> np.ndarray:
    """Runs of ``length`` anomalous steps, about one per ``every`` steps after the first ``quiet(n)``."""
    labels = np.zeros(n, dtype=bool)
    for start in range(quiet(n), n - length, every):
        begin = start + int(rng.integers(0, every - length))
        labels[begin : begin + length] = True
    return labels


def scalar_stream(n: int, seed: int) -> Stream:
    """A latency-like series: daily cycle plus noise, with upward spikes of 12-20 sigma."""
    rng = np.random.default_rng(seed)
    ts = T0 + 60.0 * np.arange(n)
    xs = 100 + 10 * np.sin(2 * np.pi * ts / 86_400) + rng.normal(0, 2, n)
    labels = anomaly_positions(rng, n)
    xs[labels] += rng.uniform(25, 40, labels.sum())
    return Stream([float(x) for x in xs], ts, labels)


def vector_stream(n: int, seed: int) -> Stream:
    """One service's rate, error ratio, latency and saturation, correlated; one signal jumps 8 sigma."""
    rng = np.random.default_rng(seed)
    ts = T0 + 60.0 * np.arange(n)
    load = rng.normal(0, 1, n)
    noise = rng.normal(0, 1, (n, 4))
    z = np.column_stack([load, 0.3 * load, 0.6 * load, 0.8 * load]) + 0.6 * noise
    labels = anomaly_positions(rng, n)
    z[labels, rng.integers(0, 4, labels.sum())] += rng.choice([-8.0, 8.0], labels.sum())
    xs = np.array([500.0, 0.01, 0.2, 0.5]) + np.array([50.0, 0.002, 0.02, 0.05]) * z
    return Stream([row.copy() for row in xs], ts, labels)


def counts_stream(n: int, seed: int) -> Stream:
    """Lines per log template: 20 Poisson templates; anomalies burst one or bring a rare template."""
    rng = np.random.default_rng(seed)
    ts = T0 + 60.0 * np.arange(n)
    rates = np.exp(rng.uniform(0, np.log(100), 20))
    counts = rng.poisson(rates, (n, 20)).astype(float)
    labels = anomaly_positions(rng, n)
    xs: list[Any] = []
    for i in range(n):
        step = {f"T{k}": c for k, c in enumerate(counts[i]) if c > 0}  # absent ids mean 0
        if labels[i] and rng.random() < 0.5:
            k = int(rng.integers(0, 20))
            step[f"T{k}"] = step.get(f"T{k}", 0.0) * 6 + 30
        elif labels[i]:  # a pool of rare templates, so the set of ids stays bounded
            step[f"rare{rng.integers(0, 30)}"] = float(rng.integers(50, 100))
        xs.append(step)
    return Stream(xs, ts, labels)


def events_stream(n: int, seed: int) -> Stream:
    """(bad, total) requests per minute: 0.02% errors, and 15-minute outages (every request fails).

    Normal traffic must stay within a 99% SLO's error budget, or an SLO detector rightly alarms on
    it: two outages 1600 minutes apart spend under 1% of the requests, even over the first days.
    """
    rng = np.random.default_rng(seed)
    ts = T0 + 60.0 * np.arange(n)
    total = rng.poisson(300, n)
    labels = np.zeros(n, dtype=bool)
    for start in range(2 * quiet(n), n - 15, 1600):
        labels[start : start + 15] = True
    bad = np.where(labels, total, rng.binomial(total, 0.0002))
    return Stream([(float(b), float(t)) for b, t in zip(bad, total, strict=True)], ts, labels)


def queue_growth_stream(n: int, seed: int) -> Stream:
    """Queue depth around 20; consumers stall for 25 steps (+2..4 messages/s), then 5 steps to drain."""
    rng = np.random.default_rng(seed)
    ts = T0 + 15.0 * np.arange(n)
    depth = 20 + rng.integers(-3, 4, n).astype(float)
    labels = bursts(rng, n, length=30, every=300)  # the incident lasts until the backlog is gone
    for start in np.flatnonzero(labels & ~np.roll(labels, 1)):
        growth = rng.uniform(2, 4) * 15.0 * np.arange(1, 26)
        depth[start : start + 25] += growth
        depth[start + 25 : start + 30] += np.linspace(growth[-1], 0, 7)[1:-1]
    return Stream([float(x) for x in depth], ts, labels)


STREAMS: dict[str, Callable[[int, int], Stream]] = {
    "scalar": scalar_stream,
    "vector": vector_stream,
    "counts": counts_stream,
    "events": events_stream,
}


@dataclass(frozen=True)
class Tweak:
    params: Mapping[str, Any] = field(default_factory=dict)
    stream: Callable[[int, int], Stream] | None = None


TWEAKS: dict[str, Tweak] = {
    "backlog": Tweak({"threshold": 1000.0, "horizon": 900.0}, queue_growth_stream),
}


@dataclass(frozen=True)
class Case:
    factory: Callable[[], AnyDetector]
    stream: Callable[[int, int], Stream] | None = None  # None: the generic one of its input kind
    registered: Callable[..., Any] | None = None  # the registry entry, for (i) and (k)


def _registered(name: str) -> Case:
    tweak = TWEAKS.get(name, Tweak())
    return Case(functools.partial(make, name, **tweak.params), tweak.stream, DETECTORS[name])


CASES: dict[str, Case] = {
    **{name: _registered(name) for name in sorted(DETECTORS)},
    "calibrated(rolling_mad)": Case(lambda: Calibrated(RollingMAD(), quantile=0.999, warmup=500)),
    "excluding(rolling_mad)": Case(
        lambda: Excluding(
            RollingMAD(), windows=[(T0 + 60 * 1500, T0 + 60 * 1600), (T0 + 60 * 3000, T0 + 60 * 3010)]
        )
    ),
}


def input_kind(detector: AnyDetector) -> str:
    return str(getattr(detector, "input_kind", "scalar"))


def stream_for(name: str, n: int = LENGTH, seed: int = 0) -> Stream:
    case = CASES[name]
    if case.stream is not None:
        return case.stream(n, seed)
    kind = input_kind(case.factory())
    assert kind in STREAMS, f"{name}: no stream generator for input kind {kind!r}; add one to STREAMS"
    return STREAMS[kind](n, seed)


@dataclass
class Run:
    scores: np.ndarray
    warming: np.ndarray  # expected(t) was None before learning the point
    bands: list[Band | None]


def run(detector: AnyDetector, stream: Stream, start: int = 0, stop: int | None = None) -> Run:
    """Score then learn every point, as the engine does; record whether it was still warming up."""
    scores, warming, bands = [], [], []
    for x, t in zip(stream.xs[start:stop], stream.ts[start:stop], strict=True):
        t = float(t)
        scores.append(detector.score_one(x, t))
        band = detector.expected(t)
        warming.append(band is None)
        bands.append(band)
        detector.learn_one(x, t)
    return Run(np.array(scores, dtype=float), np.array(warming), bands)


@functools.cache
def reference(name: str) -> tuple[Stream, Run]:
    stream = stream_for(name)
    return stream, run(CASES[name].factory(), stream)


def same_input(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return type(a) is type(b) and np.array_equal(a, b) and a.dtype == b.dtype
    return type(a) is type(b) and bool(a == b)


def scramble(x: Any) -> None:
    """Overwrite a mutable input in place, as a caller reusing its buffer would."""
    if isinstance(x, np.ndarray):
        x[:] = 1e6
    elif isinstance(x, dict):
        for key in x:
            x[key] = 1e6
        x["scrambled"] = 1e6


NAMES = list(CASES)


@pytest.mark.parametrize("name", NAMES)
def test_a_input_not_mutated_nor_aliased(name: str) -> None:
    stream, expected = reference(name)
    detector = CASES[name].factory()
    scores = []
    for x, t in zip(stream.xs, stream.ts, strict=True):
        given, kept = copy.deepcopy(x), copy.deepcopy(x)
        scores.append(detector.score_one(given, float(t)))
        assert same_input(given, kept), f"score_one changed its input at t={t}"
        detector.learn_one(given, float(t))
        assert same_input(given, kept), f"learn_one changed its input at t={t}"
        scramble(given)  # the detector must not have kept a reference to it
    np.testing.assert_array_equal(scores, expected.scores)


@pytest.mark.parametrize("name", NAMES)
def test_b_cold_start(name: str) -> None:
    stream = stream_for(name)
    for i in (0, int(np.argmax(stream.labels))):  # an ordinary point, and an anomalous one
        detector = CASES[name].factory()
        t = float(stream.ts[i])
        assert detector.score_one(stream.xs[i], t) == 0.0
        band = detector.expected(t)
        assert band is None or all(map(math.isfinite, (band.expected, band.lower, band.upper)))


@pytest.mark.parametrize("name", NAMES)
def test_c_score_one_does_not_change_the_detector(name: str) -> None:
    stream, expected = reference(name)
    anomaly = stream.xs[int(np.argmax(stream.labels))]
    detector = CASES[name].factory()
    scores = []
    for i, (x, t) in enumerate(zip(stream.xs, stream.ts, strict=True)):
        t = float(t)
        before = pickle.dumps(detector) if i % 97 == 0 else None
        first = detector.score_one(x, t)
        detector.score_one(anomaly, t)  # scoring something else in between must not matter either
        second = detector.score_one(x, t)
        assert first == second or (math.isnan(first) and math.isnan(second)), f"two calls differ at {i}"
        if before is not None:
            assert pickle.dumps(detector) == before, f"score_one changed the pickled state at point {i}"
        scores.append(first)
        detector.learn_one(x, t)
    np.testing.assert_array_equal(scores, expected.scores)


@pytest.mark.parametrize("name", NAMES)
def test_d_bounded_memory(name: str) -> None:
    stream = stream_for(name, MEMORY_LONG, seed=1)
    detector = CASES[name].factory()
    run(detector, stream, 0, MEMORY_SHORT)
    short = len(pickle.dumps(detector))
    run(detector, stream, MEMORY_SHORT)
    long = len(pickle.dumps(detector))
    assert long <= MEMORY_GROWTH * short, (
        f"{short} bytes after {MEMORY_SHORT} points, {long} after {MEMORY_LONG}"
    )


@pytest.mark.parametrize("name", NAMES)
def test_e_pickle_round_trip_mid_stream(name: str) -> None:
    stream, expected = reference(name)
    middle = LENGTH // 2
    detector = CASES[name].factory()
    run(detector, stream, 0, middle)
    restored = pickle.loads(pickle.dumps(detector))
    rest = run(detector, stream, middle).scores
    np.testing.assert_array_equal(run(restored, stream, middle).scores, rest)
    np.testing.assert_array_equal(rest, expected.scores[middle:])


@pytest.mark.parametrize("name", NAMES)
def test_f_deterministic(name: str) -> None:
    stream, expected = reference(name)
    np.testing.assert_array_equal(run(CASES[name].factory(), stream).scores, expected.scores)


@pytest.mark.parametrize("name", NAMES)
def test_g_ranks_anomalies_above_normal_points(name: str) -> None:
    stream, expected = reference(name)
    auc = roc_auc_score(stream.labels, expected.scores)
    assert auc > MIN_AUC, f"ROC AUC {auc:.3f}"


@pytest.mark.parametrize("name", NAMES)
def test_h_scores_finite_nonnegative_zero_while_warming_up(name: str) -> None:
    _, expected = reference(name)
    scores = expected.scores
    assert np.isfinite(scores).all()
    assert (scores >= 0).all()
    assert scores[0] == 0.0
    assert (scores[expected.warming] == 0.0).all(), "a score other than 0 while expected() is None"
    assert not expected.warming[-1], "still warming up at the end of the stream"
    for band in expected.bands:
        if band is not None:
            assert all(map(math.isfinite, (band.expected, band.lower, band.upper))), band
            assert band.lower <= band.upper, band


DETECTOR_MODULES = sorted(m.name for m in pkgutil.iter_modules(vigil.detectors.__path__))


@pytest.mark.parametrize("module", DETECTOR_MODULES)
def test_i_module_doctests_pass(module: str) -> None:
    result = doctest.testmod(
        importlib.import_module(f"vigil.detectors.{module}"), optionflags=doctest.ELLIPSIS
    )
    assert result.failed == 0


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_i_registered_detector_has_a_doctest_example(name: str) -> None:
    """In the class (or its methods), or in the docstring of the module that holds only it."""
    entry = CASES[name].registered
    module = inspect.getmodule(entry)
    finder = doctest.DocTestFinder(recurse=False)
    tests = doctest.DocTestFinder().find(entry) + (finder.find(module) if module else [])
    assert any(test.examples for test in tests), f"{name}: no doctest example"


@pytest.mark.parametrize("name", NAMES)
def test_j_common_scale(name: str) -> None:
    """One alert rule, score > 1: rare on normal points past warm-up, frequent on anomalies."""
    stream, expected = reference(name)
    alarms = expected.scores > 1
    normal = ~stream.labels & ~expected.warming
    false_alarms, detected = alarms[normal].mean(), alarms[stream.labels].mean()
    assert false_alarms <= MAX_FALSE_ALARMS, f"{false_alarms:.1%} of normal points score above 1"
    assert detected >= MIN_DETECTED, f"only {detected:.1%} of the anomalies score above 1"


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_k_parameters_and_learned_state(name: str) -> None:
    detector = CASES[name].factory()
    parameters = [
        p.name
        for p in inspect.signature(DETECTORS[name]).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    missing = [p for p in parameters if not hasattr(detector, p)]
    assert not missing, f"parameters not stored under their own names: {missing}"
    stream, _ = reference(name)
    run(detector, stream, 0, 500)
    others = [a for a in vars(detector) if a not in parameters and not a.endswith("_")]
    assert not others, f"learned state should be in attributes ending in '_': {others}"


SCALAR = [name for name in NAMES if input_kind(CASES[name].factory()) == "scalar"]


@pytest.mark.parametrize("name", SCALAR)
def test_l_fit_is_streaming(name: str) -> None:
    """A warm start: ``fit`` on history (in chunks) leaves the state ``learn_one`` on each point would,
    so the points after it score exactly as in the reference run."""
    stream, expected = reference(name)
    half = len(stream.xs) // 2
    xs, ts = np.array(stream.xs[:half], dtype=float), stream.ts[:half].astype(float)
    streamed = CASES[name].factory()
    run(streamed, stream, 0, half)
    fitted = fit(fit(CASES[name].factory(), ts[:700], xs[:700]), ts[700:], xs[700:])
    assert pickle.dumps(fitted) == pickle.dumps(streamed)
    np.testing.assert_array_equal(run(fitted, stream, half).scores, expected.scores[half:])


@pytest.mark.parametrize("name", SCALAR)
def test_m_fit_many_is_streaming_each_series(name: str) -> None:
    """Several series on one time grid, with holes (NaN), fitted together: each as if streamed alone."""
    streams = [stream_for(name, 1500, seed) for seed in (1, 2, 3)]
    ts = streams[0].ts.astype(float)
    grid = np.array([s.xs for s in streams], dtype=float)
    grid[1, 200:260] = np.nan  # a scrape gap
    grid[2, :400] = np.nan  # a series that appeared later
    together = [CASES[name].factory() for _ in streams]
    fit_many(together, ts[:900], grid[:, :900])
    fit_many(together, ts[900:], grid[:, 900:])
    for row, fitted in zip(grid, together, strict=True):
        alone = CASES[name].factory()
        for x, t in zip(row.tolist(), ts.tolist(), strict=True):
            if not math.isnan(x):
                alone.learn_one(x, t)
        assert pickle.dumps(fitted) == pickle.dumps(alone)
