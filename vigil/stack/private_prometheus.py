"""A private, read-only Prometheus over a TSDB directory: a fault-matrix recording's snapshot, or blocks a
test backfilled with ``promtool``. It scrapes nothing (unless a test gives it targets) and listens on a
free loopback port, so every answer comes from that data, and the stack's own Prometheus is left alone.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import yaml

from vigil.stack.component import ProbeError, http_probe


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_tsdb(
    data: Path, home: Path, *, port: int = 0, timeout: float = 120.0, scrape: Sequence[str] = ()
) -> Iterator[str]:
    """The real ``prometheus`` on ``data`` (its TSDB directory; it may write there), with its config and
    log in ``home``, on ``port`` (0: a free one), scraping the ``host:port`` targets in ``scrape`` every
    second (none by default); yields its URL and stops it on exit."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus is not installed (`vigil stack install`)")
    home.mkdir(parents=True, exist_ok=True)
    config = home / "prometheus.yml"
    jobs = {"job_name": "targets", "scrape_interval": "1s", "static_configs": [{"targets": list(scrape)}]}
    config.write_text(
        yaml.safe_dump({"global": {"scrape_interval": "1m"}, "scrape_configs": [jobs] if scrape else []})
    )
    url = f"http://127.0.0.1:{port or free_port()}"
    log_path = home / "prometheus.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address={url.removeprefix('http://')}",
                "--storage.tsdb.retention.time=100y",  # recorded data is read long after it was made
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(url, process, log_path, timeout)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    # Opening the blocks and replaying the WAL come before /-/ready answers; a busy machine takes a while.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            code = process.returncode
            raise RuntimeError(f"the private prometheus exited with code {code}:\n{log.read_text()}")
        try:
            http_probe(f"{url}/-/ready")  # the stack's Prometheus is probed the same way
            return
        except ProbeError:
            time.sleep(0.5)
    raise RuntimeError(f"the private prometheus at {url} was not ready within {timeout:.0f} s")
