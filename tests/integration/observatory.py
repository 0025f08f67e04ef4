"""The invented observatory (tests/systems/observatory.yaml) running for real: its HTTP services on
loopback, each exporting OpenTelemetry's ``http.server.request.duration`` through prometheus_client on
its own ``/metrics``, the portal calling the scheduler and the archive over HTTP, and a steady stream
of astronomers. A fault is a property of one service (extra latency, a share of server errors), set
through its ``/fault`` endpoint; its callers feel it the way real callers would, through the calls.

It runs in its own process (``python -m tests.integration.observatory``), as a watched system does:
the watcher's work must not stall the services' request threads and show up as their latency.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest

SYSTEM_FILE = Path(__file__).resolve().parents[1] / "systems" / "observatory.yaml"
# route template -> (called service, its route template); a route without a call answers by itself.
ROUTES = {
    "portal": {
        "/proposals": ("scheduler", "/slots"),
        "/frames/{frame_id}": ("archive", "/frames/{frame_id}"),
    },
    "scheduler": {"/slots": None},
    "archive": {"/frames/{frame_id}": None},
}


@dataclass
class Fault:
    delay: float = 0.0  # seconds added to every request
    error_ratio: float = 0.0  # share of requests answered 500


@dataclass
class Service:
    name: str
    routes: dict[str, tuple[str, str] | None]
    fault: Fault = field(default_factory=Fault)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    url: str = ""
    peers: dict[str, str] = field(default_factory=dict)  # service -> base URL

    def __post_init__(self) -> None:
        self.duration = Histogram(
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests.",
            ["http_route", "http_request_method", "http_response_status_code"],
            registry=self.registry,
        )
        self.client = httpx.Client(timeout=10)

    def route_of(self, path: str) -> str | None:
        for template in self.routes:
            if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path):
                return template
        return None

    def handle(self, path: str) -> int:
        """Serve ``path``: the service's own work, its call if the route makes one, its fault."""
        time.sleep(random.uniform(0.002, 0.006) + self.fault.delay)
        if random.random() < self.fault.error_ratio:
            return 500
        call = self.routes[self.route_of(path) or ""]
        if call is not None:
            peer, template = call
            target = template.replace("{frame_id}", path.rsplit("/", 1)[-1])
            try:
                answer = self.client.get(self.peers[peer] + target).status_code
            except httpx.HTTPError:
                return 502
            if answer >= 500:
                return 502
        return 200


def _handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            if self.path != "/fault":
                self._answer(404, b"not found\n", "text/plain")
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            service.fault = Fault(**body)
            self._answer(200, b"{}", "application/json")

        def do_GET(self) -> None:
            if self.path == "/metrics":
                body = generate_latest(service.registry)
                self._answer(200, body, CONTENT_TYPE_LATEST)
                return
            route = service.route_of(self.path)
            if route is None:
                self._answer(404, b"not found\n", "text/plain")
                return
            began = time.perf_counter()
            status = service.handle(self.path)
            service.duration.labels(route, "GET", str(status)).observe(time.perf_counter() - began)
            self._answer(status, b"{}", "application/json")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def serve(services: dict[str, Service]) -> list[ThreadingHTTPServer]:
    servers = []
    for service in services.values():
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(service))
        server.daemon_threads = True
        service.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    for service in services.values():
        service.peers = {name: other.url for name, other in services.items()}
    return servers


def astronomers(portal: str, stop: threading.Event, per_second: float, count: int = 4) -> None:
    """A steady stream of portal requests, half for proposals and half for frames, until ``stop``.

    Paced by the clock: an astronomer kept waiting by a slow answer catches up afterwards, so the
    request rate holds while the portal's latency and errors show a fault.
    """

    def astronomer(offset: int) -> None:
        with httpx.Client(timeout=10) as client:
            sent, interval, began = 0, count / per_second, time.monotonic()
            while not stop.is_set():
                n = offset + count * sent
                path = "/proposals" if n % 2 else f"/frames/{n % 500}"
                with contextlib.suppress(httpx.HTTPError):  # a failure is what the portal's metrics show
                    client.get(portal + path)
                sent += 1
                stop.wait(max(0.0, began + sent * interval - time.monotonic()))

    for i in range(count):
        threading.Thread(target=astronomer, args=(i,), daemon=True).start()


@dataclass
class Observatory:
    urls: dict[str, str]  # service -> base URL

    def targets(self) -> list[dict[str, object]]:
        """Scrape targets as a user's config lists them: each service's /metrics, labelled by job."""
        return [{"url": url + "/metrics", "labels": {"job": name}} for name, url in self.urls.items()]

    def set_fault(self, service: str, **fault: float) -> None:
        httpx.put(self.urls[service] + "/fault", json=fault, timeout=10).raise_for_status()


@contextmanager
def running_observatory(per_second: float = 16.0) -> Iterator[Observatory]:
    """The observatory and its astronomers in a child process, until the block ends."""
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.observatory", str(per_second)],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the services' URLs, once they listen
        assert line, f"the observatory did not start (exit {process.wait(timeout=10)})"
        yield Observatory(json.loads(line))
    finally:
        process.terminate()
        process.wait(timeout=15)


def main() -> None:
    services = {name: Service(name, routes) for name, routes in ROUTES.items()}
    serve(services)
    stop = threading.Event()
    astronomers(services["portal"].url, stop, float(sys.argv[1]) if len(sys.argv) > 1 else 16.0)
    print(json.dumps({name: s.url for name, s in services.items()}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()  # until the test terminates the process


if __name__ == "__main__":
    main()
