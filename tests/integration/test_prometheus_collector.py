"""The Prometheus collector against the real Prometheus of the local stack.

Outages, auth headers and request counts are observed through small proxies on loopback that
forward to the real Prometheus; the proxies are test plumbing, every answer comes from Prometheus.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.integration.netproxy import TcpForwarder
from vigil.collectors.model import Collection, Collector, SeriesKey
from vigil.collectors.prometheus_api import (
    PrometheusClient,
    PrometheusCollection,
    PrometheusCollector,
    PromQLError,
    PromSignal,
    SourceUnavailable,
)
from vigil.stack import Stack

pytestmark = pytest.mark.integration


def fast_client(url: str, headers: dict[str, str] | None = None) -> PrometheusClient:
    # Short timeouts and backoff: the failure cases must not slow the suite down.
    return PrometheusClient(url, headers=headers, timeout=2.0, attempts=2, backoff=0.01)


def steps(now: float, lookback: float, step: int) -> list[float]:
    """The aligned timestamps a first round at ``now`` reads: ceil((now-lookback)/step) .. floor(now/step)."""
    return [float(k * step) for k in range(math.ceil((now - lookback) / step), math.floor(now / step) + 1)]


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]


class RecordingProxy:
    """An HTTP proxy that records each request and can answer the next ``fail_next`` with a 503."""

    def __init__(self, upstream: str) -> None:
        self.seen: list[Recorded] = []
        self.fail_next = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                form = parse_qs(body.decode())
                proxy.seen.append(Recorded(urlsplit(self.path).path, dict(self.headers.items()), form))
                if proxy.fail_next > 0:
                    proxy.fail_next -= 1
                    self._answer(503, b"overloaded", "text/plain")
                    return
                headers = {"Content-Type": self.headers.get("Content-Type", "")}
                answer = requests.post(upstream + self.path, data=body, headers=headers, timeout=30)
                self._answer(answer.status_code, answer.content, answer.headers.get("Content-Type", ""))

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def paths(self, endpoint: str) -> list[Recorded]:
        return [r for r in self.seen if r.path.endswith(endpoint)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def prometheus_url(stack: Stack) -> str:
    """The stack's Prometheus, once it has scraped itself: tests here read its own ``up`` series.

    Just after `vigil stack up` it may not have yet (a scrape every 5 s); 60 s is room for a busy machine.
    """
    url = stack.settings.prometheus_url
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(requests.RequestException):
            answer = requests.get(f"{url}/api/v1/query", params={"query": 'up{job="prometheus"}'}, timeout=5)
            if answer.json()["data"]["result"]:
                return url
        assert time.monotonic() < deadline, "the stack's Prometheus did not scrape itself within 60 s"
        time.sleep(1)


@pytest.fixture
def client(prometheus_url: str) -> Iterator[PrometheusClient]:
    with fast_client(prometheus_url) as c:
        yield c


@pytest.fixture
def proxy(prometheus_url: str) -> Iterator[RecordingProxy]:
    recording = RecordingProxy(prometheus_url)
    yield recording
    recording.close()


@pytest.fixture
def forwarder(prometheus_url: str) -> Iterator[TcpForwarder]:
    host, port = urlsplit(prometheus_url).hostname, urlsplit(prometheus_url).port
    assert host
    assert port
    tcp = TcpForwarder((host, port))
    tcp.start()
    yield tcp
    tcp.stop()


def timestamps(collection: Collection, signal: str) -> list[float]:
    """All timestamps of the one series of ``signal`` (a label-less query such as ``vector(1)``)."""
    return [p.timestamp for p in collection.series.get(SeriesKey(signal), [])]


def test_up_gives_labelled_series_on_aligned_steps(client: PrometheusClient) -> None:
    now = time.time()
    instant = client.query("up", now)
    assert instant
    assert all(s.metric["__name__"] == "up" and "job" in s.metric for s in instant)

    collector: Collector = PrometheusCollector(
        "prometheus", client, [PromSignal("up", "up", 5)], initial_lookback=60
    )
    result = collector.collect(now)
    assert result.error is None, result.error
    assert result.up
    jobs = {key.label_dict().get("job") for key in result.series}
    assert "prometheus" in jobs, jobs
    for key, points in result.series.items():
        assert key.signal == "up"
        assert "__name__" not in key.label_dict()
        assert "instance" in key.label_dict()
        assert all(p.timestamp % 5 == 0 and now - 60 <= p.timestamp <= now for p in points), key
        assert all(p.value in (0.0, 1.0) for p in points)
    assert isinstance(result, PrometheusCollection)
    assert result.requests == 1


def test_consecutive_rounds_return_only_new_points(client: PrometheusClient) -> None:
    clock = FakeClock(start := time.time() - 60)
    signals = [PromSignal("one", "vector(1)", 5), PromSignal("up", "up", 5)]
    collector = PrometheusCollector("prometheus", client, signals, initial_lookback=60, clock=clock)

    first = collector.collect()
    clock.now += 32
    second = collector.collect()
    again = collector.collect()  # no time has passed: nothing new, and no query

    before, after = timestamps(first, "one"), timestamps(second, "one")
    assert before == steps(start, 60, 5)
    assert after == [before[-1] + 5 * i for i in range(1, len(after) + 1)]  # continues exactly
    assert after[-1] == math.floor(clock.now) // 5 * 5
    for key, points in second.series.items():
        seen = {p.timestamp for p in first.series.get(key, [])}
        assert not seen & {p.timestamp for p in points}, key
        assert len({p.timestamp for p in points}) == len(points), key
    assert again.samples == 0
    assert again.requests == 0
    assert again.up


def test_keep_labels_trims_labels(client: PrometheusClient) -> None:
    signal = PromSignal("up_by_job", "up", 5, keep_labels=("job", "no_such_label"))
    result = PrometheusCollector("prometheus", client, [signal], initial_lookback=30).collect(time.time())
    assert SeriesKey("up_by_job", (("job", "prometheus"),)) in result.series
    assert all(key.label_dict().keys() == {"job"} for key in result.series)


def test_series_merged_by_keep_labels_drop_duplicate_timestamps(client: PrometheusClient) -> None:
    # Two series that differ only in a label that is not kept land on one key: one value per step survives.
    replica = 'label_replace(label_replace(vector({v}), "job", "x", "", ""), "replica", "{r}", "", "")'
    query = f"{replica.format(v=1, r='a')} or {replica.format(v=2, r='b')}"
    now = time.time()
    signal = PromSignal("merged", query, 5, keep_labels=("job",))
    result = PrometheusCollector("prometheus", client, [signal], initial_lookback=30).collect(now)
    assert result.error is None, result.error
    points = result.series[SeriesKey("merged", (("job", "x"),))]
    assert [p.timestamp for p in points] == steps(now, 30, 5)
    assert result.dropped_out_of_order == len(points)


def test_bad_promql_is_reported_and_good_signals_still_collect(
    client: PrometheusClient, proxy: RecordingProxy
) -> None:
    now = time.time()
    with pytest.raises(PromQLError) as parse:
        client.query_range("rate(up[5m", now - 60, now, 15, name="checkout_p99")
    assert str(parse.value).startswith("bad PromQL in signal checkout_p99: 1:11: parse error")
    assert parse.value.query == "rate(up[5m"
    assert parse.value.error_type == "bad_data"
    with pytest.raises(PromQLError, match=r"bad PromQL in query 'up \+ on\(\) up': .*many-to-many") as exe:
        client.query("up + on() up", now)
    assert exe.value.error_type == "execution"  # HTTP 422

    with fast_client(proxy.url) as proxied:
        with pytest.raises(PromQLError):
            proxied.query("sum(", now)
        assert len(proxy.seen) == 1  # a 400 is never retried

    signals = [PromSignal("broken", "sum(rate(up[5m]) by", 5), PromSignal("one", "vector(1)", 5)]
    result = PrometheusCollector("prometheus", client, signals, initial_lookback=30).collect(now)
    assert result.up  # Prometheus answered
    assert (result.error or "").startswith("bad PromQL in signal broken: "), result.error
    assert timestamps(result, "one") == steps(now, 30, 5)


def test_non_finite_values_are_dropped_and_counted(client: PrometheusClient) -> None:
    signals = [PromSignal("inf", "vector(1) / 0", 5), PromSignal("nan", "vector(0) / 0", 5)]
    now = time.time()
    result = PrometheusCollector("prometheus", client, signals, initial_lookback=30).collect(now)
    assert result.up
    assert result.error is None
    assert result.samples == 0
    assert result.dropped_non_finite == 2 * len(steps(now, 30, 5))


def test_outage_gives_up_false_then_catches_up(client: PrometheusClient, forwarder: TcpForwarder) -> None:
    clock = FakeClock(time.time() - 120)
    with fast_client(f"http://127.0.0.1:{forwarder.port}") as through:
        signals = [PromSignal("one", "vector(1)", 5), PromSignal("up", "up", 5)]
        collector = PrometheusCollector("prometheus", through, signals, initial_lookback=30, clock=clock)
        first = collector.collect()
        assert first.up
        assert first.samples > 0
        last = timestamps(first, "one")[-1]

        forwarder.stop()
        clock.now += 40
        down = collector.collect()
        assert not down.up
        assert down.samples == 0
        assert "Connection refused" in (down.error or ""), down.error
        assert collector.position("one") == last  # not advanced: the next round catches up

        forwarder.start()
        clock.now += 40
        back = collector.collect()
    assert back.up
    assert back.error is None
    caught_up = timestamps(back, "one")
    assert caught_up == [last + 5 * i for i in range(1, 17)]  # both rounds' steps, none twice
    assert any(key.signal == "up" for key in back.series)


def test_catch_up_is_bounded_by_max_lookback(client: PrometheusClient) -> None:
    clock = FakeClock(time.time() - 3600)
    signal = PromSignal("one", "vector(1)", 10)
    collector = PrometheusCollector(
        "prometheus", client, [signal], initial_lookback=60, max_lookback=600, clock=clock
    )
    collector.collect()
    clock.now += 3600  # an hour without a successful round
    result = collector.collect()
    assert timestamps(result, "one") == steps(clock.now, 600, 10)


def test_auth_header_goes_on_every_request(proxy: RecordingProxy) -> None:
    now = time.time()
    headers = {"Authorization": "Bearer s3cret-token"}
    with fast_client(proxy.url, headers) as client:
        assert client.query("up", now)
        found = client.series(['up{job="prometheus"}'], now - 60, now)
        assert found
        assert all(labels["__name__"] == "up" and "instance" in labels for labels in found)
        PrometheusCollector("p", client, [PromSignal("up", "up", 15)]).collect(now)
    assert [r.path for r in proxy.seen] == ["/api/v1/query", "/api/v1/series", "/api/v1/query_range"]
    assert all(r.headers.get("Authorization") == "Bearer s3cret-token" for r in proxy.seen)
    # Queries travel form-encoded in the body, so long PromQL never hits URL length limits.
    assert proxy.seen[0].form["query"] == ["up"]
    assert proxy.seen[1].form["match[]"] == ['up{job="prometheus"}']


def test_long_range_is_split_into_chunks(proxy: RecordingProxy) -> None:
    now = time.time()
    with fast_client(proxy.url) as client:
        signal = PromSignal("one", "vector(1)", 1)
        collector = PrometheusCollector("p", client, [signal], initial_lookback=4 * 3600)
        result = collector.collect(now)
    assert result.error is None, result.error
    assert result.up
    sent = proxy.paths("/query_range")
    assert len(sent) == result.requests == 2
    spans = [(float(r.form["start"][0]), float(r.form["end"][0])) for r in sent]
    assert all(end - start + 1 <= 10_000 for start, end in spans)
    assert spans[1][0] == spans[0][1] + 1  # adjacent chunks, no step read twice
    assert timestamps(result, "one") == steps(now, 4 * 3600, 1)


def test_5xx_is_retried_then_reported_as_unavailable(proxy: RecordingProxy) -> None:
    now = time.time()
    with PrometheusClient(proxy.url, timeout=2.0, attempts=3, backoff=0.01) as client:
        proxy.fail_next = 2
        assert client.query("up", now)  # third attempt gets through
        assert len(proxy.seen) == 3

        proxy.fail_next = 10
        with pytest.raises(SourceUnavailable, match="HTTP 503"):
            client.query("up", now)
        assert len(proxy.seen) == 6

        result = PrometheusCollector(
            "p", client, [PromSignal("a", "up", 5), PromSignal("b", "up", 5)]
        ).collect(now)
    assert not result.up
    assert result.error
    assert "HTTP 503" in result.error
    assert len(proxy.seen) == 9  # the source is down: the second signal does not retry in vain


def test_timeout_is_unavailable() -> None:
    with socket.socket() as silent:  # accepts TCP connections (kernel backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with PrometheusClient(url, timeout=0.3, attempts=2, backoff=0.01) as client:
            started = time.monotonic()
            with pytest.raises(SourceUnavailable, match="timed out"):
                client.query("up", time.time())
    # 2 attempts of 0.3 s; without the timeout the call would hang until pytest's own (300 s).
    assert time.monotonic() - started < 60
