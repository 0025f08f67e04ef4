"""The scrape collector's math on exposition text fed through an injected fetch: no network."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from vigil.collectors.model import Collection, SeriesKey
from vigil.collectors.scrape import ScrapeCollector, ScrapeSignal, ScrapeTarget, targets_from_file_sd
from vigil.collectors.scrape_signals import histogram_quantile

A = "http://10.0.0.1:9000/metrics"
B = "http://10.0.0.2:9000/metrics"
BOUNDS = ("0.1", "0.5", "1.0", "+Inf")


class Source:
    """What each target answers this round (text, or an exception to raise), and a settable clock."""

    def __init__(self) -> None:
        self.pages: dict[str, str | Exception] = {}
        self.now = 1_000.0

    def fetch(self, url: str) -> str:
        page = self.pages.get(url, ConnectionError(f"{url} refused"))
        if isinstance(page, Exception):
            raise page
        return page

    def clock(self) -> float:
        return self.now


def counter(name: str, series: Mapping[str, float]) -> str:
    """``series`` maps a label body (``route="/a"``) to the counter's value."""
    lines = [f"# TYPE {name} counter", *(f"{name}_total{{{labels}}} {v}" for labels, v in series.items())]
    return "\n".join(lines) + "\n"


def histogram(name: str, labels: str, cumulative: tuple[float, ...]) -> str:
    lines = [f"# TYPE {name} histogram"]
    lines += [f'{name}_bucket{{{labels},le="{le}"}} {c}' for le, c in zip(BOUNDS, cumulative, strict=True)]
    lines += [f"{name}_count{{{labels}}} {cumulative[-1]}", f"{name}_sum{{{labels}}} 0"]
    return "\n".join(lines) + "\n"


def gauge(name: str, value: float) -> str:
    return f"# TYPE {name} gauge\n{name} {value}\n"


@pytest.fixture
def source() -> Source:
    return Source()


@pytest.fixture
def make(source: Source) -> Callable[..., ScrapeCollector]:
    def build(*signals: ScrapeSignal, targets: tuple[str, ...] = (A,), **kwargs: object) -> ScrapeCollector:
        found = [ScrapeTarget(url, {"job": "shop", "service": "catalog"}) for url in targets]
        return ScrapeCollector(
            "scrape",
            found,
            signals,
            fetch=source.fetch,
            clock=source.clock,
            **kwargs,
        )

    return build


def rounds(
    collector: ScrapeCollector, source: Source, *pages: dict[str, str], step: float = 10.0
) -> Iterator[Collection]:
    """One collect per ``pages`` entry, ``step`` seconds apart."""
    for page in pages:
        source.pages = dict(page)
        yield collector.collect(source.now)
        source.now += step


def values(collection: Collection) -> dict[str, float]:
    return {str(key): points[-1].value for key, points in collection.series.items()}


REQUESTS = ScrapeSignal("requests", "http_requests_total", "rate", by=("service",))


def test_first_scrape_gives_no_rate_and_the_second_does(make: Callable[..., ScrapeCollector], source: Source):
    collector = make(REQUESTS, ScrapeSignal("rss", "rss_bytes", "gauge"))
    first, second = rounds(
        collector,
        source,
        {A: counter("http_requests", {'route="/a"': 10}) + gauge("rss_bytes", 5)},
        {A: counter("http_requests", {'route="/a"': 40}) + gauge("rss_bytes", 7)},
    )
    assert values(first) == {"rss{}": 5}  # a gauge needs no previous value
    assert values(second) == {'requests{service="catalog"}': pytest.approx(3.0), "rss{}": 7}
    assert second.series[SeriesKey("requests", (("service", "catalog"),))][0].timestamp == 1_010.0


def test_a_counter_reset_counts_the_new_value_as_the_increase(make, source):
    collector = make(REQUESTS)
    texts = [counter("http_requests", {'route="/a"': v}) for v in (100, 130, 5, 25)]
    results = [values(c) for c in rounds(collector, source, *({A: t} for t in texts))]
    # 100 -> 130: 3/s; restart, 130 -> 5: the process counted 5 since it started: 0.5/s; then 2/s.
    assert [r.get('requests{service="catalog"}') for r in results] == [None, 3.0, 0.5, 2.0]


def test_no_rate_across_a_gap_the_baseline_restarts(make, source):
    collector = make(REQUESTS)
    page = lambda v: {A: counter("http_requests", {'route="/a"': v})}  # noqa: E731
    got = [values(c) for c in rounds(collector, source, page(0), page(10), page(20))]
    source.pages = {}  # down for four rounds (40 s, over 3 x the usual 10 s)
    for _ in range(4):
        assert collector.collect(source.now).up is False
        source.now += 10
    got += [values(c) for c in rounds(collector, source, page(520), page(530))]
    rate = [g.get('requests{service="catalog"}') for g in got]
    assert rate == [None, 1.0, 1.0, None, 1.0], "the 500 counted while down is not spread as a rate"


def test_a_short_outage_averages_over_the_missed_round(make, source):
    collector = make(REQUESTS)
    page = lambda v: {A: counter("http_requests", {'route="/a"': v})}  # noqa: E731
    got = [values(c) for c in rounds(collector, source, page(0), page(10), {}, page(50))]
    assert got[-1] == {'requests{service="catalog"}': pytest.approx(40 / 20)}


def test_histogram_quantile_interpolates_like_prometheus():
    # cumulative rates 1, 6, 9, 10 per second in buckets <=0.1, <=0.5, <=1, +Inf
    buckets = {0.1: 1.0, 0.5: 6.0, 1.0: 9.0, math.inf: 10.0}
    assert histogram_quantile(0.05, buckets) == pytest.approx(0.05)  # rank 0.5 of 1 in [0, 0.1]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1 + 0.4 * 4 / 5)  # rank 4 of 5 in (0.1, 0.5]
    assert histogram_quantile(0.9, buckets) == pytest.approx(1.0)  # rank 9 is exactly the <=1 bucket's count
    # In the +Inf bucket: the highest finite bound, nothing is extrapolated.
    assert histogram_quantile(0.95, buckets) == 1.0
    assert histogram_quantile(1.0, buckets) == 1.0


def test_histogram_quantile_edge_rules():
    assert math.isnan(histogram_quantile(0.5, {0.1: 1.0, 1.0: 2.0}))  # no +Inf bucket
    assert math.isnan(histogram_quantile(0.5, {math.inf: 3.0}))  # a single bucket
    assert math.isnan(histogram_quantile(0.5, {0.1: 0.0, math.inf: 0.0}))  # no observations
    assert math.isnan(histogram_quantile(math.nan, {0.1: 1.0, math.inf: 1.0}))
    assert histogram_quantile(-0.1, {0.1: 1.0, math.inf: 1.0}) == -math.inf
    assert histogram_quantile(1.1, {0.1: 1.0, math.inf: 1.0}) == math.inf
    # The lowest bucket's bound is returned, not interpolated, when it is not positive.
    assert histogram_quantile(0.2, {-1.0: 5.0, 0.0: 8.0, math.inf: 10.0}) == -1.0
    # All observations in +Inf: the highest finite bound.
    assert histogram_quantile(0.5, {0.1: 0.0, 0.5: 0.0, math.inf: 4.0}) == 0.5
    # Non-monotonic counts (rate noise) are flattened to their running maximum first.
    assert histogram_quantile(0.5, {0.1: 2.0, 0.5: 1.0, 1.0: 4.0, math.inf: 4.0}) == pytest.approx(0.1)


def test_quantile_signal_sums_bucket_rates_over_targets(make, source):
    p50 = ScrapeSignal("p50", "latency_seconds", "quantile", by=("service",), quantile=0.5)
    p99 = ScrapeSignal("p99", "latency_seconds", "quantile", by=("service",), quantile=0.99)
    collector = make(p50, p99, targets=(A, B))
    zero = histogram("latency_seconds", 'route="/a"', (0, 0, 0, 0))
    _, second = rounds(
        collector,
        source,
        {A: zero, B: zero},
        # Over 10 s, A adds 10/60/90/100 and B adds 0/0/0/0: rates 1, 6, 9, 10 as above.
        {A: histogram("latency_seconds", 'route="/a"', (10, 60, 90, 100)), B: zero},
    )
    assert values(second) == {
        'p50{service="catalog"}': pytest.approx(0.42),
        'p99{service="catalog"}': 1.0,
    }


def test_quantile_of_a_window_without_requests_is_left_out(make, source):
    p99 = ScrapeSignal("p99", "latency_seconds", "quantile", quantile=0.99)
    collector = make(p99)
    page = {A: histogram("latency_seconds", 'route="/a"', (1, 2, 3, 4))}
    assert [values(c) for c in rounds(collector, source, page, page)] == [{}, {}]


def test_ratio_is_the_share_of_matching_requests(make, source):
    errors = ScrapeSignal(
        "errors", "http_requests_total", "ratio", by=("service",), numerator_match={"status_class": "~5.."}
    )
    collector = make(errors)
    before = {'status_class="2xx"': 0, 'status_class="4xx"': 0, 'status_class="5xx"': 0}
    after = {'status_class="2xx"': 80, 'status_class="4xx"': 10, 'status_class="5xx"': 10}
    (idle,) = rounds(collector, source, {A: counter("http_requests", before)})
    busy, quiet = rounds(
        collector, source, {A: counter("http_requests", after)}, {A: counter("http_requests", after)}
    )
    assert values(idle) == {}
    assert values(busy) == {'errors{service="catalog"}': pytest.approx(0.1)}
    assert values(quiet) == {}, "0/0 without requests is no ratio"


def test_by_aggregates_across_targets_and_other_labels(make, source):
    by_service = ScrapeSignal("rps", "http_requests", "rate", by=("service",))
    by_instance = ScrapeSignal("rps_instance", "http_requests", "rate", by=("instance", "route"))
    total = ScrapeSignal("rps_total", "http_requests", "rate")
    renamed = ScrapeSignal("rps_path", "http_requests", "rate", by=("route",), rename={"route": "path"})
    collector = make(by_service, by_instance, total, renamed, targets=(A, B))
    zero = counter("http_requests", {'route="/a"': 0, 'route="/b"': 0})
    _, second = rounds(
        collector,
        source,
        {A: zero, B: zero},
        {
            A: counter("http_requests", {'route="/a"': 10, 'route="/b"': 20}),
            B: counter("http_requests", {'route="/a"': 30, 'route="/b"': 40}),
        },
    )
    assert values(second) == {
        'rps{service="catalog"}': 10.0,
        'rps_instance{instance="10.0.0.1:9000",route="/a"}': 1.0,
        'rps_instance{instance="10.0.0.1:9000",route="/b"}': 2.0,
        'rps_instance{instance="10.0.0.2:9000",route="/a"}': 3.0,
        'rps_instance{instance="10.0.0.2:9000",route="/b"}': 4.0,
        "rps_total{}": 10.0,
        'rps_path{path="/a"}': 4.0,
        'rps_path{path="/b"}': 6.0,
    }


def test_match_is_exact_or_an_anchored_regex(make, source):
    exact = ScrapeSignal("products", "http_requests", "rate", match={"route": "/api/products"})
    regex = ScrapeSignal("api", "http_requests", "rate", match={"route": "~/api/(products|cart)"})
    prefix = ScrapeSignal("unanchored", "http_requests", "rate", match={"route": "~/api/prod"})
    absent = ScrapeSignal("no_tenant", "http_requests", "rate", match={"tenant": ""})
    collector = make(exact, regex, prefix, absent)
    routes = ("/api/products", "/api/cart", "/api/products/7", "/healthz")
    _, second = rounds(
        collector,
        source,
        {A: counter("http_requests", {f'route="{r}"': 0 for r in routes})},
        {A: counter("http_requests", {f'route="{r}"': 10 * (i + 1) for i, r in enumerate(routes)})},
    )
    assert values(second) == {"products{}": 1.0, "api{}": 3.0, "no_tenant{}": 10.0}


def test_gauge_aggregations(make, source):
    signals = [
        ScrapeSignal(f"rss_{how}", "rss_bytes", "gauge", by=("service",), aggregation=how)
        for how in ("sum", "max", "avg")
    ]
    collector = make(*signals, targets=(A, B))
    (first,) = rounds(collector, source, {A: gauge("rss_bytes", 100), B: gauge("rss_bytes", 300)})
    assert values(first) == {
        'rss_sum{service="catalog"}': 400.0,
        'rss_max{service="catalog"}': 300.0,
        'rss_avg{service="catalog"}': 200.0,
    }


def test_non_finite_raw_values_are_skipped(make, source):
    collector = make(REQUESTS, ScrapeSignal("rss", "rss_bytes", "gauge"))
    pages = [
        {A: counter("http_requests", {'route="/a"': 10, 'route="/b"': v}) + gauge("rss_bytes", g)}
        for v, g in ((0, math.nan), (math.nan, math.inf), (20, 1))
    ]
    got = [values(c) for c in rounds(collector, source, *pages)]
    assert got[0] == {}
    assert got[1] == {'requests{service="catalog"}': 0.0}  # /b's NaN neither counts nor moves its baseline
    assert got[2] == {'requests{service="catalog"}': pytest.approx(20 / 20), "rss{}": 1.0}


def test_vanished_series_are_evicted(make, source):
    collector = make(REQUESTS, stale_after=3)
    both = {A: counter("http_requests", {'route="/a"': 1, 'route="/b"': 1})}
    only_a = {A: counter("http_requests", {'route="/a"': 1})}
    list(rounds(collector, source, both))
    assert collector.series_held == 2
    held = [collector.series_held for _ in rounds(collector, source, only_a, only_a, only_a, only_a)]
    assert held == [2, 2, 1, 1], "/b is forgotten once absent for 3 rounds"
    # Back after eviction it starts over: no rate from a baseline that was forgotten.
    back = {A: counter("http_requests", {'route="/a"': 1, 'route="/b"': 100})}
    (returned,) = rounds(collector, source, back)
    assert values(returned) == {'requests{service="catalog"}': 0.0}


def test_only_series_a_signal_reads_are_kept(make, source):
    collector = make(ScrapeSignal("five", "http_requests", "rate", match={"status_class": "5xx"}))
    page = {A: counter("http_requests", {f'status_class="{c}xx"': 1 for c in "2345"}) + gauge("other", 1)}
    list(rounds(collector, source, page))
    assert collector.series_held == 1


def test_down_targets_are_listed_without_failing_the_round(make, source):
    collector = make(REQUESTS, targets=(A, B))
    (collection,) = rounds(collector, source, {A: counter("http_requests", {'route="/a"': 1})})
    assert collection.up is True
    assert collection.error is not None
    assert collection.error.startswith("1 of 2 targets down: http://10.0.0.2:9000/metrics: ConnectionError")
    assert collector.target_health() == {A: (True, None), B: (False, f"ConnectionError: {B} refused")}
    (nothing,) = rounds(collector, source, {})
    assert nothing.up is False
    assert "2 of 2 targets down" in str(nothing.error)


def test_unparseable_exposition_marks_the_target_down(make, source):
    collector = make(REQUESTS)
    (collection,) = rounds(collector, source, {A: "http_requests_total{route= 1\n"})
    up, error = collector.target_health()[A]
    assert collection.up is False
    assert up is False
    assert "unparseable exposition" in str(error)


def test_more_than_max_series_is_refused_with_a_clear_error(make, source):
    collector = make(REQUESTS, targets=(A, B), max_series=3)
    a = counter("http_requests", {'route="/a"': 1, 'route="/b"': 1})
    b = counter("http_requests", {'route="/c"': 1, 'route="/d"': 1})
    (collection,) = rounds(collector, source, {A: a, B: b})
    health = collector.target_health()
    assert health[A] == (True, None)
    assert health[B][0] is False
    assert "max_series=3" in str(health[B][1])
    assert collector.series_held == 2
    assert collection.up is True
    assert "series limit" in str(collection.error)


def test_target_labels_win_and_a_different_exposed_value_is_exported(make, source):
    by_service = ScrapeSignal("rps", "http_requests", "rate", by=("service", "exported_service"))
    collector = make(by_service)
    zero = counter("http_requests", {'service="catalog"': 0, 'service="legacy"': 0})
    _, second = rounds(
        collector,
        source,
        {A: zero},
        {A: counter("http_requests", {'service="catalog"': 10, 'service="legacy"': 20})},
    )
    assert values(second) == {
        'rps{service="catalog"}': 1.0,
        'rps{exported_service="legacy",service="catalog"}': 2.0,
    }


def test_targets_from_file_sd(tmp_path: Path):
    path = tmp_path / "marketplace.json"
    groups = [
        {"targets": ["127.0.0.1:20000", "127.0.0.1:20001"], "labels": {"job": "m", "service": "gateway"}},
        {"targets": ["127.0.0.1:8404"], "labels": {"job": "haproxy", "__metrics_path__": "/stats"}},
    ]
    path.write_text(json.dumps(groups))
    assert targets_from_file_sd(path) == [
        ScrapeTarget("http://127.0.0.1:20000/metrics", {"job": "m", "service": "gateway"}),
        ScrapeTarget("http://127.0.0.1:20001/metrics", {"job": "m", "service": "gateway"}),
        ScrapeTarget("http://127.0.0.1:8404/stats", {"job": "haproxy"}),
    ]
    path.write_text('{"targets": []}')
    with pytest.raises(ValueError, match="list of target groups"):
        targets_from_file_sd(path)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"kind": "quantile"}, "quantile between 0 and 1"),
        ({"kind": "quantile", "quantile": 0.9, "by": ("le",)}, "`le`"),
        ({"kind": "ratio"}, "numerator_match"),
        ({"kind": "rate", "match": {"route": "~("}}, "bad label regex"),
        ({"kind": "gauge", "aggregation": "median"}, "aggregation"),
        ({"kind": "rate", "rename": {"peer": "service"}}, "only grouping labels"),
        ({"kind": "rate", "by": ("peer", "service"), "rename": {"peer": "service"}}, "overwrite another"),
    ],
)
def test_bad_signals_are_refused(kwargs: dict, problem: str):
    with pytest.raises(ValueError, match=problem):
        ScrapeSignal("s", "m", **kwargs)


def test_every_target_gives_up_as_prometheus_does(make, source):
    """An exporter that hangs says nothing else: ``up`` is 1 while it is scraped, 0 when not, with the
    target's labels; an ``up`` the target exposes itself does not count."""
    collector = make(
        ScrapeSignal("scraped", "up", "gauge", by=("instance",), aggregation="min"), targets=(A, B)
    )
    fine = {A: gauge("up", 0), B: gauge("other", 1)}
    (both,) = rounds(collector, source, fine)
    assert values(both) == {
        'scraped{instance="10.0.0.1:9000"}': 1.0,
        'scraped{instance="10.0.0.2:9000"}': 1.0,
    }
    (one,) = rounds(collector, source, {A: gauge("other", 1), B: TimeoutError("read timed out")})
    assert values(one) == {'scraped{instance="10.0.0.1:9000"}': 1.0, 'scraped{instance="10.0.0.2:9000"}': 0.0}
