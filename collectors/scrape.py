"""The embedded default collector: scrapes ``/metrics`` endpoints directly, so vigil needs no Prometheus.

Each ``collect`` is one scrape round: every target is fetched concurrently, its exposition parsed with
``prometheus_client``'s parser, and the signals (``scrape_signals``) computed from this round's samples
and the previous round's raw counter values. Rates are per-second increases between the two latest
scrapes of a series (what PromQL's ``irate`` gives), so a signal has its first point on the second round.

State is one entry per raw counter or bucket series that a signal reads, per target; entries of series
not seen for ``stale_after`` rounds are dropped, and a round that would hold more than ``max_series``
raw series refuses the targets that would cross the limit, with the reason in ``target_health``.

As in Prometheus, every target also gives ``up`` (1 when this round scraped it, 0 when not), with the
target's labels: an exporter that stops answering says nothing else, so the signals reading ``up``
are how a hung component shows. An ``up`` a target exposes itself is ignored, as Prometheus does.
"""

from __future__ import annotations

import io
import math
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from prometheus_client.parser import text_fd_to_metric_families

from vigil.collectors.model import Collection, Point
from vigil.collectors.scrape_signals import STATEFUL_KINDS, Accumulator, ScrapeSignal, compile_match
from vigil.collectors.scrape_targets import ScrapeTarget, http_fetch, targets_from_file_sd

__all__ = ["ScrapeCollector", "ScrapeSignal", "ScrapeTarget", "targets_from_file_sd"]

UP = "up"  # the scrape's own health, written by the scraper (Prometheus' synthetic series)
MAX_ERROR_CHARS = 240  # requests' connection errors repeat the URL and the whole cause chain


class _Raw:
    """The latest raw value of one counter or bucket series on one target."""

    __slots__ = ("round", "ts", "value")

    def __init__(self, value: float, ts: float, round_: int) -> None:
        self.value = value
        self.ts = ts
        self.round = round_


# One sample a signal wants: (series key, labels incl. the target's, raw value, signal indexes, stateful)
_Sample = tuple[str, Mapping[str, str], float, tuple[int, ...], bool]


class ScrapeCollector:
    def __init__(
        self,
        name: str,
        targets: Iterable[ScrapeTarget],
        signals: Sequence[ScrapeSignal],
        *,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        max_series: int = 200_000,
        fetch: Callable[[str], str] | None = None,
        stale_after: int = 5,
        max_gap_intervals: float = 3.0,
        max_workers: int = 8,
    ) -> None:
        names = [s.name for s in signals]
        if len(set(names)) != len(names):
            raise ValueError(f"signal names must be unique: {names}")
        if stale_after < 1 or max_series < 1:
            raise ValueError("stale_after and max_series must be at least 1")
        self.name = name
        self.signals = tuple(signals)
        self.timeout = timeout
        self.max_series = max_series
        self.stale_after = stale_after
        self.max_gap_intervals = max_gap_intervals
        self.max_workers = max_workers
        self._clock = clock
        self._fetch = fetch or (lambda url: http_fetch(url, self.timeout))
        self._matchers = [compile_match(s.match) for s in self.signals]
        self._stateful = [s.kind in STATEFUL_KINDS for s in self.signals]
        self._consumers: dict[str, tuple[int, ...]] = {}  # sample name -> indexes of the signals reading it
        for index, signal in enumerate(self.signals):
            for sample_name in signal.sample_names():
                self._consumers[sample_name] = (*self._consumers.get(sample_name, ()), index)
        self._state: dict[str, dict[str, _Raw]] = {}  # target url -> series key -> latest raw sample
        self._health: dict[str, tuple[bool, str | None]] = {}
        self._round = 0
        self._last_round_ts: float | None = None
        self._intervals: deque[float] = deque(maxlen=8)
        self.targets: list[ScrapeTarget] = []
        self._target_labels: dict[str, dict[str, str]] = {}
        self.update_targets(targets)

    def update_targets(self, targets: Iterable[ScrapeTarget]) -> None:
        """Replace the target list (e.g. the file_sd file changed); removed targets' state is dropped."""
        self.targets = list(targets)
        # Prometheus adds `instance` (host:port) unless the target sets it.
        self._target_labels = {t.url: {"instance": t.instance, **t.labels} for t in self.targets}
        for url in set(self._state) - set(self._target_labels):
            del self._state[url]
        for url in set(self._health) - set(self._target_labels):
            del self._health[url]

    def target_health(self) -> dict[str, tuple[bool, str | None]]:
        """Per target URL, whether the latest round scraped it, and why not."""
        return dict(self._health)

    @property
    def series_held(self) -> int:
        """Raw series whose previous value is kept (for rates)."""
        return sum(len(series) for series in self._state.values())

    def collect(self, now: float) -> Collection:
        """One scrape round. Points are stamped with the scrape time from ``clock``, not ``now``: the
        samples were taken then, and rates divide by the time between scrapes."""
        ts = self._clock()
        max_gap = self._max_gap()
        if self._last_round_ts is not None:
            self._intervals.append(ts - self._last_round_ts)
        self._last_round_ts = ts
        self._round += 1
        accumulators = [Accumulator(s) for s in self.signals]
        budget = self.max_series - self.series_held
        seen: dict[str, int] = {}
        if self.targets:
            with ThreadPoolExecutor(max_workers=min(self.max_workers, len(self.targets))) as pool:
                futures = [(t.url, pool.submit(self._scrape, t)) for t in self.targets]
                # In target order, so which target a full series budget refuses is deterministic.
                for url, future in futures:
                    try:
                        samples = future.result()
                    except Exception as error:  # a target that is down never fails the round
                        self._health[url] = (False, _describe(error))
                        continue
                    budget, seen[url] = self._ingest(url, samples, ts, max_gap, budget, accumulators)
        self._evict(seen)
        self._add_up(accumulators)

        collection = Collection(self.name)
        for accumulator in accumulators:
            for key, value in accumulator.results():
                collection.add(key, Point(ts, value))
        down = [(t.url, self._health[t.url][1]) for t in self.targets if not self._health[t.url][0]]
        collection.up = len(down) < len(self.targets)
        if not self.targets:
            collection.error = "no targets"
        elif down:
            listed = "; ".join(f"{url}: {error}" for url, error in down)
            collection.error = f"{len(down)} of {len(self.targets)} targets down: {listed}"
        return collection

    def _add_up(self, accumulators: list[Accumulator]) -> None:
        """Each target's own ``up`` for the signals that read it (never a rate: its state is this round)."""
        for target in self.targets:
            labels = self._target_labels[target.url]
            value = 1.0 if self._health[target.url][0] else 0.0
            for i in self._consumers.get(UP, ()):
                if not accumulators[i].stateful and self._matchers[i](labels):
                    accumulators[i].add(labels, value)

    def _max_gap(self) -> float:
        """The longest time a rate may span: a target down for longer restarts its baseline instead,
        as an average over the outage would hide what happened in it."""
        if not self._intervals:
            return math.inf
        return self.max_gap_intervals * statistics.median(self._intervals)

    def _scrape(self, target: ScrapeTarget) -> list[_Sample]:
        """Fetch and parse one target (in a worker thread); keeps only the samples some signal reads."""
        text = self._fetch(target.url)
        extra = self._target_labels[target.url]
        consumers, matchers, stateful = self._consumers, self._matchers, self._stateful
        wanted: list[_Sample] = []
        lines = _Lines(text)
        kept: set[str] = set()
        try:
            for family in text_fd_to_metric_families(lines):
                for sample in family.samples:
                    indexes = consumers.get(sample.name)
                    if indexes is None or sample.name == UP:
                        continue
                    try:
                        value = float(sample.value)  # the parser gives ints as ints, of any size
                    except OverflowError:  # beyond a float: +-Inf, as Prometheus reads it
                        continue
                    if not math.isfinite(value):  # no rate
                        continue
                    raw = sample.labels
                    labels = {**raw, **extra}
                    for k, v in extra.items():
                        # Target labels win, as with Prometheus' honor_labels: false; a different
                        # exposed value is kept as exported_<name> (an equal one is just redundant).
                        if (old := raw.get(k)) is not None and old != v:
                            labels[f"exported_{k}"] = old
                    indexes = tuple(i for i in indexes if matchers[i](labels))
                    if not indexes:
                        continue
                    is_stateful = any(stateful[i] for i in indexes)
                    # A flat string is a third of the memory of a tuple of label pairs; label names
                    # cannot contain NUL, so the key is unambiguous for any sane label value.
                    key = sample.name + "".join(f"\0{k}\0{v}" for k, v in sorted(raw.items()))
                    if key in kept:  # a series exposed twice: the first counts, as in Prometheus
                        continue
                    kept.add(key)
                    wanted.append((key, labels, value, indexes, is_stateful))
        except (ValueError, OverflowError) as error:  # OverflowError: a timestamp beyond a float
            # The parser's messages seldom say where, and some are empty.
            where = f"near line {lines.number} {_excerpt(lines.line.strip())}"
            raise ValueError(f"unparseable exposition {where}: {str(error) or 'malformed line'}") from error
        return wanted

    def _ingest(
        self,
        url: str,
        samples: list[_Sample],
        ts: float,
        max_gap: float,
        budget: int,
        accumulators: list[Accumulator],
    ) -> tuple[int, int]:
        """Update one target's state and feed its samples to the signals; returns (budget left, series
        of this target seen this round)."""
        state = self._state.setdefault(url, {})
        need = sum(1 for key, _, _, _, is_stateful in samples if not is_stateful or key not in state)
        if need > budget:
            self._health[url] = (
                False,
                f"series limit: this target would add {need} series to {self.max_series - budget} held, "
                f"over max_series={self.max_series}; narrow the signals' match or raise max_series",
            )
            return budget, 0
        self._health[url] = (True, None)
        round_, seen = self._round, 0
        for key, labels, value, indexes, is_stateful in samples:
            rate = None
            if is_stateful:
                raw = state.get(key)
                if raw is None:
                    state[key] = _Raw(value, ts, round_)  # the first scrape of a series is its baseline
                    seen += 1
                else:
                    seen += raw.round != round_  # a series listed twice counts once
                    dt = ts - raw.ts
                    if 0 < dt <= max_gap:
                        # A counter that dropped belongs to a restarted process, which counted from 0.
                        rate = (value - raw.value if value >= raw.value else value) / dt
                    raw.value, raw.ts, raw.round = value, ts, round_
            for i in indexes:
                accumulator = accumulators[i]
                if not accumulator.stateful:
                    accumulator.add(labels, value)
                elif rate is not None:
                    accumulator.add(labels, rate)
        return budget - need, seen

    def _evict(self, seen: dict[str, int]) -> None:
        """Forget series absent for ``stale_after`` rounds, so vanished series do not pile up."""
        cutoff = self._round - self.stale_after
        for url, state in self._state.items():
            if seen.get(url) == len(state):
                continue  # every series was seen this round: nothing can be stale
            if any(raw.round <= cutoff for raw in state.values()):
                # A new dict rather than `del`: Python dicts never shrink their table on deletion.
                self._state[url] = {key: raw for key, raw in state.items() if raw.round > cutoff}


class _Lines(io.StringIO):
    """An exposition read line by line, knowing which line the parser is at."""

    number = 0
    line = ""

    def __next__(self) -> str:  # type: ignore[override]  # typeshed gives _IOBase's (bytes) to StringIO
        self.line = super().__next__()
        self.number += 1
        return self.line


def _excerpt(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."
