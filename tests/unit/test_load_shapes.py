"""Load shapes' arithmetic, the runner's host check, and the runner's locust subprocess + CSV plumbing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vigil.demo_marketplace.catalog import service
from vigil.demo_marketplace.loadgen.runner import (
    LoadResult,
    check_loopback,
    parse_stats_csv,
    run_load,
    start_load,
    stop_load,
)
from vigil.demo_marketplace.loadgen.shapes import (
    SHAPES,
    BlackFriday,
    Diurnal,
    Steady,
    make_shape,
    shape_from_env,
    shape_parameters,
    wait_bounds,
)

# --- shapes -------------------------------------------------------------------------------------


def test_black_friday_default_phases_in_real_time() -> None:
    shape = BlackFriday(base_users=10)
    assert shape.at(0) is not None
    assert shape.users_at(0) == 10
    assert shape.users_at(10 * 60 - 1) == 10  # baseline
    assert shape.users_at(20 * 60) == 30  # halfway up the ramp
    assert shape.users_at(30 * 60) == 50  # exactly 5x when the hold starts
    assert shape.users_at(89 * 60) == 50  # still holding
    assert shape.users_at(105 * 60) == 30  # halfway down
    assert shape.users_at(120 * 60) == 10  # back to base after the decay
    assert shape.stop_after_s == 130 * 60
    assert shape.at(130 * 60) is None


def test_black_friday_peak_is_exactly_five_times_base() -> None:
    for base in (1, 3, 7, 20):
        shape = BlackFriday(base_users=base, time_scale=60)
        users = [shape.users_at(t / 10) for t in range(int(shape.stop_after_s * 10))]
        assert max(users) == 5 * base
        assert min(users) == base
        assert users[-1] == base


def test_time_scale_compresses_every_phase() -> None:
    real, fast = BlackFriday(base_users=10), BlackFriday(base_users=10, time_scale=60)
    assert fast.stop_after_s == pytest.approx(real.stop_after_s / 60)
    for t in range(0, int(fast.stop_after_s)):
        assert fast.users_at(t) == real.users_at(t * 60)
    assert fast.users_at(30) == 50  # the hold starts 30 real seconds in
    assert Diurnal(base_users=10, time_scale=60).stop_after_s == pytest.approx(24 * 60)


def test_duration_stops_the_shape_early() -> None:
    shape = BlackFriday(base_users=10, time_scale=60, duration_s=40)
    target = shape.at(39.9)
    assert target is not None
    assert target.users == 50
    assert shape.at(40) is None
    assert shape.at(1000) is None


def test_diurnal_trough_at_night_peak_at_midday() -> None:
    shape = Diurnal(base_users=100)
    hourly = [shape.users_at(hour * 3600) for hour in range(24)]
    assert min(hourly) == hourly[0] == 30
    assert max(hourly) == hourly[12] == 100
    assert hourly[6] == hourly[18] == 65
    assert Diurnal(base_users=100, start_hour=12).users_at(0) == 100


def test_steady_is_constant_and_stops() -> None:
    shape = Steady(base_users=4, duration_s=5)
    assert {shape.users_at(t / 2) for t in range(10)} == {4}
    assert shape.at(5) is None
    assert Steady(base_users=4, time_scale=60).stop_after_s == pytest.approx(10)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_shape_stops_by_itself(name: str) -> None:
    shape = make_shape(name, base_users=5, time_scale=3600)
    assert 0 < shape.stop_after_s < 100
    assert shape.at(shape.stop_after_s) is None
    target = shape.at(0)
    assert target is not None
    assert target.users >= 1
    assert target.spawn_rate >= 1


def test_black_friday_spawn_rate_keeps_up_with_the_ramp() -> None:
    shape = BlackFriday(base_users=10, time_scale=60)  # 40 extra users over a 20 s ramp
    target = shape.at(0)
    assert target is not None
    assert target.spawn_rate >= 2 * 40 / 20


def test_shape_from_env() -> None:
    shape = shape_from_env(
        {
            "VIGIL_LOAD_SHAPE": "black_friday",
            "VIGIL_LOAD_BASE_USERS": "8",
            "VIGIL_LOAD_DURATION": "12.5",
            "VIGIL_LOAD_TIME_SCALE": "60",
        }
    )
    assert isinstance(shape, BlackFriday)
    assert (shape.base_users, shape.duration_s, shape.time_scale) == (8, 12.5, 60)
    default = shape_from_env({})
    assert isinstance(default, Steady)
    assert default.base_users == 10
    assert default.duration_s is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VIGIL_LOAD_SHAPE": "tuesday"}, "unknown load shape"),
        ({"VIGIL_LOAD_BASE_USERS": "many"}, "VIGIL_LOAD_BASE_USERS"),
        ({"VIGIL_LOAD_BASE_USERS": "0"}, "base_users"),
        ({"VIGIL_LOAD_TIME_SCALE": "0"}, "time_scale"),
        ({"VIGIL_LOAD_DURATION": "-1"}, "duration_s"),
        ({"VIGIL_LOAD_PARAMS": "[1]"}, "VIGIL_LOAD_PARAMS must be a JSON object"),
        ({"VIGIL_LOAD_PARAMS": "{ramp"}, "VIGIL_LOAD_PARAMS must be a JSON object"),
        (
            {"VIGIL_LOAD_SHAPE": "steady", "VIGIL_LOAD_PARAMS": '{"peak": 5}'},
            "steady takes length_s; got peak",
        ),
        ({"VIGIL_LOAD_SHAPE": "black_friday", "VIGIL_LOAD_PARAMS": '{"ramp_s": -1}'}, "ramp_s must be"),
    ],
)
def test_shape_from_env_rejects_bad_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        shape_from_env(env)


def test_a_shapes_own_parameters_set_its_phases() -> None:
    env = {
        "VIGIL_LOAD_SHAPE": "black_friday",
        "VIGIL_LOAD_BASE_USERS": "20",
        "VIGIL_LOAD_PARAMS": '{"baseline_s": 100, "ramp_s": 20, "hold_s": 150, "decay_s": 10, "tail_s": 0}',
    }
    shape = shape_from_env(env)
    assert shape.stop_after_s == 280
    assert [shape.users_at(t) for t in (50, 110, 200, 275)] == [20, 60, 100, 60]
    assert shape_parameters("black_friday") == ["peak", "baseline_s", "ramp_s", "hold_s", "decay_s", "tail_s"]


def test_wait_time_is_compressed() -> None:
    assert wait_bounds(1) == (1.0, 3.0)
    assert wait_bounds(10) == pytest.approx((0.1, 0.3))


# --- runner -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["http://127.0.0.1:8000", "http://127.8.9.10", "https://localhost:8443/", "http://[::1]:8000"]
)
def test_loopback_hosts_are_accepted(host: str) -> None:
    check_loopback(host)


@pytest.mark.parametrize(
    "host",
    ["http://10.0.0.1:8000", "http://example.com", "http://127.0.0.1.example.com", "http://0.0.0.0:8000"],
)
def test_other_hosts_are_refused(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        check_loopback(host)
    with pytest.raises(ValueError, match="loopback"):
        run_load(host, shape="steady", base_users=1, duration_s=1)


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "ftp://127.0.0.1", ""])
def test_malformed_hosts_are_refused(host: str) -> None:
    with pytest.raises(ValueError, match="http"):
        check_loopback(host)


def test_stats_without_requests_have_no_percentiles(tmp_path: Path) -> None:
    header = "Type,Name,Request Count,Failure Count,Requests/s,50%,99%"
    (tmp_path / "s.csv").write_text(f"{header}\nGET,/a,0,0,0.0,N/A,N/A\n,Aggregated,0,0,0.0,N/A,N/A\n")
    routes, total = parse_stats_csv(tmp_path / "s.csv")
    assert routes["/a"].p50_ms is None
    assert total is not None
    assert total.requests == 0


class Storefront(BaseHTTPRequestHandler):
    """Just enough of the storefront API for the load generator: every route answers successfully."""

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._reply(200, {"path": self.path})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/api/checkout":
            self._reply(201, {"order_id": "order-1", "status": "placed"})
        else:
            self._reply(200, {"ok": True})

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def storefront() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Storefront)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def assert_sane(result: LoadResult) -> None:
    assert result.returncode == 0, result.log_tail
    assert not result.timed_out
    assert result.total is not None
    assert result.requests > 0
    assert result.failures == 0, result.log_tail
    assert set(result.routes) <= set(service("gateway").routes)  # names are the route templates
    busiest = result.routes["/api/products/{product_id}"]
    assert busiest.requests > 0
    assert busiest.p50_ms is not None
    assert busiest.p99_ms is not None
    assert busiest.p50_ms <= busiest.p99_ms
    assert busiest.rps > 0


@pytest.mark.slow
def test_run_load_runs_locust_and_parses_its_csv(storefront: str, tmp_path: Path) -> None:
    result = run_load(
        storefront, shape="steady", base_users=10, duration_s=5, time_scale=10, csv_prefix=tmp_path / "run"
    )
    assert_sane(result)  # includes "not timed out": the run ended by itself at its duration
    assert result.csv_prefix == tmp_path / "run"
    assert (tmp_path / "run_stats.csv").exists()
    assert {"/api/products", "/api/search"} <= set(result.routes)


@pytest.mark.slow
def test_background_load_can_be_stopped(storefront: str) -> None:
    handle = start_load(storefront, shape="black_friday", base_users=5, duration_s=600, time_scale=60)
    # Stop it only once it really runs and reports: locust takes a few seconds to import and spawn (more on
    # a busy machine) and writes its statistics file once a second, not at the very end.
    assert handle.csv_prefix is not None
    stats = handle.csv_prefix.with_name(handle.csv_prefix.name + "_stats.csv")

    def reported() -> int:
        try:
            total = parse_stats_csv(stats)[1]
        except (OSError, KeyError, ValueError, TypeError):  # not there yet, or caught mid-rewrite
            return 0
        return total.requests if total else 0

    deadline = time.monotonic() + 120
    while reported() == 0 and handle.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert handle.poll() is None, "the load ended by itself: its 600 s were meant to outlast the test"
    assert reported() > 0, "locust reported no request within 120 s"
    result = stop_load(handle)
    assert handle.returncode is not None
    assert_sane(result)  # a clean stop (exit 0, statistics written), not the SIGKILL after the grace
    assert result.csv_prefix is None  # a temporary directory, already removed
