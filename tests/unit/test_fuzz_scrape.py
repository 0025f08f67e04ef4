"""Fuzzed exposition text through the scrape collector: no round ever raises, a bad target is reported
by URL with what was wrong, and ``max_series`` holds under a cardinality burst."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.collectors.model import Collection, SeriesKey
from vigil.collectors.scrape import ScrapeCollector, ScrapeSignal, ScrapeTarget

A = "http://10.0.0.1:9000/metrics"
SIGNALS = (
    ScrapeSignal("requests", "http_requests", "rate", by=("route",)),
    ScrapeSignal("p90", "latency", "quantile", quantile=0.9),
    ScrapeSignal("rss", "rss_bytes", "gauge"),
    ScrapeSignal("up", "up", "gauge"),
)
# Why a target may be down: its exposition (with where and what), the series limit, or its HTTP answer.
REASON = re.compile(
    r"ValueError: unparseable exposition near line \d+ .+: \S.*|series limit: .+|HTTPError: .+"
)


def escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


label_names = st.sampled_from(["route", "le", "job", "instance", "service", "__name__", "bad-name", "é"])
label_values = st.text(max_size=8).map(escaped) | st.sampled_from(["\\q", "\\", 'a"b', "\x00", "\ufffd"])
labels = st.lists(st.tuples(label_names, label_values), max_size=4) | st.lists(
    st.tuples(st.from_regex(r"l[0-9]{1,3}", fullmatch=True), st.text(max_size=3).map(escaped)), max_size=60
)  # a huge label set
values = (
    st.sampled_from(["NaN", "+Inf", "-Inf", "1e400", "9" * 400, "-" + "9" * 400, "0x1F", "1_0", "", "abc"])
    | st.floats().map(repr)
    | st.integers().map(str)
)
names = st.sampled_from(["http_requests_total", "http_requests_count", "latency_bucket", "rss_bytes", "up"])
sample_lines = st.builds(
    lambda name, pairs, value, ts: name + "{" + ",".join(f'{k}="{v}"' for k, v in pairs) + "} " + value + ts,
    names | st.sampled_from(["1bad", "", "other"]),
    labels,
    values,
    st.sampled_from(["", " 1700000000000", " " + "9" * 400, " x"]),
)
comments = st.sampled_from(
    ["# TYPE http_requests counter", "# TYPE latency histogram", "# TYPE rss_bytes bogus", "# TYPE", "#"]
)
pages = st.lists(sample_lines | comments | st.text(max_size=20), max_size=12).map("\n".join)


class Feed:
    """What every target answers (its ``pages`` entry, else ``page``), and the scrape clock."""

    def __init__(self) -> None:
        self.page = ""
        self.pages: dict[str, str] = {}
        self.now = 1_000.0

    def fetch(self, url: str) -> str:
        return self.pages.get(url, self.page)

    def collector(self, urls: list[str] = [A], max_series: int = 200_000) -> ScrapeCollector:  # noqa: B006
        targets = [ScrapeTarget(url, {"job": "shop"}) for url in urls]
        return ScrapeCollector(
            "scrape", targets, SIGNALS, fetch=self.fetch, clock=lambda: self.now, max_series=max_series
        )


def check(made: ScrapeCollector, collection: Collection) -> None:
    """The round's points are finite; a target down is named in the error, with a reason."""
    assert all(math.isfinite(p.value) for points in collection.series.values() for p in points)
    for url, (up, reason) in made.target_health().items():
        if up:
            assert reason is None
        else:
            assert REASON.fullmatch(str(reason)), reason
            assert f"{url}: {reason}" in str(collection.error)


@settings(max_examples=150, deadline=None)
@given(st.lists(pages, min_size=1, max_size=3))
def test_any_exposition_gives_points_or_names_the_target_and_the_problem(rounds: list[str]) -> None:
    feed = Feed()
    made = feed.collector()
    for feed.page in rounds:
        check(made, made.collect(feed.now))
        feed.now += 15


series = st.lists(
    st.tuples(
        st.sampled_from(["http_requests_total", "rss_bytes"]), st.sampled_from("abcd"), st.integers(0, 99)
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda s: s[:2],
)


@settings(max_examples=60, deadline=None)
@given(series, series, st.data())
def test_a_series_exposed_twice_counts_once_as_in_prometheus(first, second, data) -> None:
    """Repeats (with other values) after a series' first line change nothing: Prometheus keeps the first."""

    def page(found: list[tuple[str, str, int]], repeats: list[tuple[str, str, int]] = ()) -> str:
        return "".join(f'{name}{{route="{route}"}} {value}\n' for name, route, value in [*found, *repeats])

    def repeated(found: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
        chosen = data.draw(st.lists(st.sampled_from(found), min_size=1))
        return [(name, route, data.draw(st.integers(0, 99))) for name, route, _ in chosen]

    plain, dup = Feed(), Feed()
    plain_collector, dup_collector = plain.collector(), dup.collector()
    for found in (first, second):
        plain.page, dup.page = page(found), page(found, repeated(found))
        assert plain_collector.collect(0).series == dup_collector.collect(0).series
        plain.now = dup.now = plain.now + 15


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 30), st.lists(st.lists(st.integers(0, 90), min_size=1, max_size=3), min_size=1, max_size=4)
)
def test_a_cardinality_burst_never_holds_more_than_max_series(limit: int, bursts: list[list[int]]) -> None:
    """Each round every target exposes new series (churning ids): held state stays within max_series, and
    a target refused for it is named with the limit."""
    urls = [f"http://10.0.0.{i}:9000/metrics" for i in range(1, 4)]
    feed = Feed()
    made = feed.collector(urls, max_series=limit)
    for round_, counts in enumerate(bursts):
        feed.pages = {
            url: "".join(f'http_requests_total{{route="/{round_}/{i}"}} 1\n' for i in range(count))
            for url, count in zip(urls, counts, strict=False)
        }
        collection = made.collect(feed.now)
        feed.now += 15
        assert made.series_held <= limit
        check(made, collection)
        refused = [reason for up, reason in made.target_health().values() if not up]
        assert all(f"max_series={limit}" in str(reason) for reason in refused)
        if round_ == 0 and counts[0] > limit:
            assert refused, "a first target with more series than the limit is refused"


class Server(ThreadingHTTPServer):
    page: tuple[int, bytes] = (200, b"")  # (status, body) it answers, set by the test


class Page(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        status, body = self.server.page
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; version=0.0.4")  # no charset: read as UTF-8
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture(scope="module")
def loopback() -> Iterator[Server]:
    """A /metrics endpoint of this test's own, on a free loopback port."""
    server = Server(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


raw_pages = st.binary(max_size=60) | pages.map(lambda text: text.encode("utf-8", "surrogatepass"))
invalid_utf8 = st.sampled_from(
    [b'rss_bytes{route="\xff\xfe"} 1\n', b"rss_bytes 1\xc3\n", b"\xef\xbb\xbfrss_bytes 2\n"]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([200, 200, 200, 404, 500]), raw_pages | invalid_utf8)
def test_bytes_served_over_http_never_fail_the_round(loopback: Server, status: int, body: bytes) -> None:
    """The real fetch path (requests, decoding as UTF-8 with replacement), from a loopback server."""
    loopback.page = (status, body)
    url = f"http://127.0.0.1:{loopback.server_address[1]}/metrics"
    made = ScrapeCollector("scrape", [ScrapeTarget(url)], SIGNALS, timeout=5)  # fetched with requests
    collection = made.collect(0)
    check(made, collection)
    if status != 200:
        assert not made.target_health()[url][0]
        assert f"HTTPError: {status}" in str(collection.error)


@pytest.mark.parametrize(
    ("page", "reason"),
    [
        ("rss_bytes 1\n# TYPE\n", "near line 2 '# TYPE': malformed line"),
        (f"rss_bytes 1\nrss_bytes 2 {'9' * 400}\n", "near line 2 'rss_bytes 2 999999999"),
        ('rss_bytes{a="1} 1\n', "near line 1 'rss_bytes{a=\"1} 1': "),
        (f'rss_bytes{{a="1"}} {"9" * 400}\nrss_bytes{{a="2"}} 5\n', None),  # beyond a float: like +Inf
    ],
)
def test_where_an_exposition_breaks_is_told_and_an_overflowing_value_is_skipped(page, reason) -> None:
    feed = Feed()
    feed.page = page
    made = feed.collector()
    collection = made.collect(0)
    up, said = made.target_health()[A]
    assert up is (reason is None)
    if reason is None:
        assert [p.value for p in collection.series[SeriesKey("rss")]] == [5.0]
    else:
        assert f"ValueError: unparseable exposition {reason}" in str(said)
