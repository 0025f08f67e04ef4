"""Fuzzed Prometheus HTTP API answers: valid samples, each dropped one counted, or a ``PrometheusError``
naming the signal or query and what was wrong; never a KeyError or TypeError out of the collector."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from requests.adapters import BaseAdapter

from vigil.collectors.prometheus_api import PrometheusCollector, PromSignal
from vigil.collectors.prometheus_client import PrometheusClient, PrometheusError, Series

URL = "http://prometheus.test:9090"
SIGNAL = PromSignal("checkout_p99", 'histogram_quantile(0.99, rate(x_bucket{job="shop"}[1m]))', step=15)
NOW = 100_000.0  # the collector asks for (NOW - 600, NOW]: one request


class Answer(BaseAdapter):
    """Prometheus as a requests transport: every request is answered 200 with ``body`` as JSON."""

    def __init__(self, body: Any) -> None:
        super().__init__()
        self.text = json.dumps(body)  # NaN and Infinity as Python writes them, which its parser reads

    def send(self, request: requests.PreparedRequest, *_args: Any, **_kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code, response.url, response.request = 200, str(request.url), request
        response._content = self.text.encode()
        response.headers["Content-Type"] = "application/json"
        return response

    def close(self) -> None:
        pass


def client(body: Any) -> PrometheusClient:
    made = PrometheusClient(URL, attempts=1)
    made.session.mount(URL, Answer(body))
    return made


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**400), 10**400)
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(["NaN", "+Inf", "-Inf", "1e400", "99500", "1.5", "", "0x10"])
)
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
)
timestamps = st.floats(99_400, 100_000).map(lambda t: round(t, 3)) | scalars
pairs = st.lists(st.tuples(timestamps, scalars | st.floats().map(repr)).map(list), max_size=6) | junk
labels = st.dictionaries(
    st.sampled_from(["__name__", "job", "route", ""]), st.text(max_size=5) | junk, max_size=3
)
value = st.tuples(timestamps, scalars).map(list) | junk  # an instant query's
items = st.fixed_dictionaries({"metric": labels | junk, "values": pairs, "value": value}) | junk
huge = st.builds(lambda item, n: [item] * n, items, st.integers(0, 3000))
kinds = st.sampled_from(["matrix", "vector", "scalar", "string", "x"])
data = st.fixed_dictionaries({"resultType": kinds, "result": st.lists(items, max_size=5) | huge | junk})
bodies = st.fixed_dictionaries({"status": st.just("success"), "data": data | junk}) | junk


def answered_values(body: Any) -> int | None:
    """How many samples a range answer that reads as well-formed holds."""
    try:
        return sum(len(item.get("values", [])) for item in body["data"].get("result") or [])
    except (AttributeError, TypeError, KeyError):
        return None


def check_series(found: list[Series]) -> None:
    for series in found:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in series.metric.items())
        assert all(isinstance(t, float) and isinstance(x, float) for t, x in series.values)


@settings(max_examples=300, deadline=None)
@given(bodies)
def test_any_answer_gives_valid_samples_counted_drops_or_an_error_naming_the_signal(body: Any) -> None:
    collector = PrometheusCollector("prometheus", client(body), [SIGNAL], clock=lambda: NOW)
    result = collector.collect()
    for key, points in result.series.items():
        assert all(isinstance(v, str) for _, v in key.labels)
        assert all(math.isfinite(p.timestamp) and math.isfinite(p.value) for p in points)
    if result.error is None:
        dropped = result.dropped_non_finite + result.dropped_out_of_order
        assert result.samples + dropped == answered_values(body)
    else:
        assert result.samples == 0
        assert "to signal checkout_p99: " in result.error or "did not answer like Prometheus" in result.error


@pytest.mark.parametrize("method", ["query", "query_range", "series"])
@settings(max_examples=60, deadline=None)
@given(body=bodies)
def test_the_client_returns_series_or_a_prometheus_error_naming_the_query(method: str, body: Any) -> None:
    prometheus = client(body)
    calls = {
        "query": lambda: prometheus.query('up{job="shop"}', NOW),
        "query_range": lambda: prometheus.query_range('up{job="shop"}', NOW - 60, NOW, 15),
        "series": lambda: prometheus.series(['up{job="shop"}'], NOW - 60, NOW),
    }
    try:
        found, problem = calls[method](), ""
    except PrometheusError as error:
        found, problem = [], str(error)
    assert (
        not problem or "query 'up{job=\"shop\"}': " in problem or "did not answer like Prometheus" in problem
    )
    check_series([Series(labels) if method == "series" else labels for labels in found])


@pytest.mark.parametrize(
    ("values", "kept", "non_finite"),
    [
        ([[99_990, "1"], ["NaN", "2"], [math.inf, "3"], [10**400, "4"]], 1, 3),  # timestamps
        ([[99_990, "NaN"], [99_991, "+Inf"], [99_992, 10**400], [99_993, "junk"], [99_994, "5"]], 1, 4),
    ],
)
def test_non_finite_timestamps_and_values_are_dropped_and_counted(values, kept: int, non_finite: int) -> None:
    body = {
        "status": "success",
        "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]},
    }
    result = PrometheusCollector("prometheus", client(body), [SIGNAL], clock=lambda: NOW).collect()
    assert (result.error, result.samples, result.dropped_non_finite) == (None, kept, non_finite)


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        ([{"metric": {"job": ["shop"]}, "values": []}], "a series' labels are a mapping of strings"),
        ([{"metric": ["job"], "values": []}], "a series' labels are a mapping of strings"),
        ([{"metric": {}, "values": {"99990": "1"}}], "values is not a list"),
        ([{"metric": {}, "values": ["12"]}], "a sample is [timestamp, value], not '12'"),
        ([{"values": [[99_990, "1", "2"]]}], "a sample is [timestamp, value], not [99990, '1', '2']"),
        ([{"values": [[99_990, ["1"]]]}], "a sample is [timestamp, value], not [99990, ['1']]"),
        ({"metric": {}}, "result is not a list"),
        (["abc"], "expected an object with 'metric', not 'abc'"),
    ],
)
def test_a_misshapen_answer_is_an_error_naming_the_signal_and_the_shape(result: Any, problem: str) -> None:
    body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    collected = PrometheusCollector("prometheus", client(body), [SIGNAL], clock=lambda: NOW).collect()
    assert collected.up is False
    assert f"unexpected answer from {URL} to signal checkout_p99: " in str(collected.error)
    assert problem in str(collected.error)
