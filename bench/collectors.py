"""Benchmark the embedded scrape collector on synthetic exposition text; prints JSON.

For 10k and 100k series (half counters, half histogram buckets with their _count and _sum), spread
over 4 targets, side by side in one run:

- samples_per_s: exposition samples ingested per second (parse + rate and signal computation) over the
  scrapes after the first (the first only sets baselines);
- bytes_per_series: memory the collector keeps between scrapes (tracemalloc, after the scrapes) per raw
  series it holds state for; peak_bytes_per_series: the tracemalloc peak during a scrape per exposition
  sample (the parsed text and this round's aggregation are transient).

Usage: python bench/collectors.py [--rounds 4]. Needs no network and no stack.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import tracemalloc
from typing import Any

from vigil.collectors.scrape import ScrapeCollector, ScrapeSignal, ScrapeTarget

TARGETS = 4
BOUNDS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "+Inf")
SAMPLES_PER_HISTOGRAM = len(BOUNDS) + 2  # buckets, _count, _sum
INTERVAL = 15.0
SIGNALS = [
    ScrapeSignal("rps", "app_requests_total", "rate", by=("service", "route")),
    ScrapeSignal("errors", "app_requests_total", "ratio", by=("service",), numerator_match={"code": "~5.."}),
    ScrapeSignal("p99", "app_latency_seconds", "quantile", by=("service", "route"), quantile=0.99),
    ScrapeSignal("latency_rps", "app_latency_seconds", "rate", by=("service",)),
]


def exposition(target: int, series: int, round_: int) -> str:
    """One target's /metrics text with about ``series`` samples; counters grow with ``round_``."""
    counters = series // 2
    histograms = (series - counters) // SAMPLES_PER_HISTOGRAM
    service = f"svc{target}"
    lines = ["# HELP app_requests_total Requests.", "# TYPE app_requests_total counter"]
    for i in range(counters):
        code = "500" if i % 10 == 0 else "200"
        labels = f'service="{service}",route="/r{i % 100}",code="{code}",shard="s{i}"'
        lines.append(f"app_requests_total{{{labels}}} {i + round_ * (i % 13 + 1)}")
    lines += ["# HELP app_latency_seconds Latency.", "# TYPE app_latency_seconds histogram"]
    for i in range(histograms):
        labels = f'service="{service}",route="/r{i % 100}",shard="s{i}"'
        step = round_ * (i % 5 + 1)
        for j, le in enumerate(BOUNDS):
            lines.append(f'app_latency_seconds_bucket{{{labels},le="{le}"}} {step * (j + 1)}')
        lines.append(f"app_latency_seconds_count{{{labels}}} {step * len(BOUNDS)}")
        lines.append(f"app_latency_seconds_sum{{{labels}}} {step * 0.7}")
    return "\n".join(lines) + "\n"


class Replay:
    """Serves pre-generated texts round by round on a fake clock, so only the collector is measured."""

    def __init__(self, series: int, rounds: int) -> None:
        per_target = series // TARGETS
        self.urls = [f"http://10.0.0.{t}:9000/metrics" for t in range(TARGETS)]
        self.pages = [
            {url: exposition(t, per_target, r) for t, url in enumerate(self.urls)} for r in range(rounds)
        ]
        self.samples = sum(
            1 for text in self.pages[0].values() for line in text.splitlines() if not line.startswith("#")
        )
        self.round = 0
        self.now = 1_700_000_000.0

    def collector(self) -> ScrapeCollector:
        targets = [ScrapeTarget(url, {"job": "bench"}) for url in self.urls]
        return ScrapeCollector(
            "bench", targets, SIGNALS, fetch=self.fetch, clock=lambda: self.now, max_series=1_000_000
        )

    def fetch(self, url: str) -> str:
        return self.pages[self.round][url]

    def scrape(self, collector: ScrapeCollector, round_: int) -> int:
        self.round = round_
        self.now += INTERVAL
        collection = collector.collect(self.now)
        assert collection.up, collection.error
        return collection.samples


def measure(series: int, rounds: int) -> dict[str, Any]:
    replay = Replay(series, rounds)

    # Throughput, without tracemalloc (it slows allocation-heavy code several-fold).
    collector = replay.collector()
    replay.scrape(collector, 0)
    started = time.perf_counter()
    points = 0
    for round_ in range(1, rounds):
        points = replay.scrape(collector, round_)
    elapsed = time.perf_counter() - started
    held = collector.series_held
    del collector
    gc.collect()

    # Memory: what a fresh collector keeps after the same scrapes, and the peak during one.
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    collector = replay.collector()
    for round_ in range(rounds):
        if round_ == rounds - 1:
            tracemalloc.reset_peak()
        replay.scrape(collector, round_)
    gc.collect()
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "series": replay.samples,
        "series_with_state": held,
        "output_points_per_scrape": points,
        "scrape_seconds": round(elapsed / (rounds - 1), 3),
        "samples_per_s": round(replay.samples * (rounds - 1) / elapsed),
        "bytes_per_series": round((retained - baseline) / held),
        "peak_bytes_per_series": round((peak - baseline) / replay.samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=4, help="scrapes per size; all but the first timed")
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be at least 2: rates need two scrapes")
    result = {label: measure(series, args.rounds) for label, series in (("10k", 10_000), ("100k", 100_000))}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
