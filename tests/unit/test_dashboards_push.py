"""`vigil dashboards push`: credentials from files only, and a clear failure when Grafana cannot be reached.

No Grafana server is available from this project's package sources (Debian 12 has no grafana package and
the Go module proxy refuses github.com/grafana/*), so the upload itself is not exercised against a real
Grafana here; what is tested is everything up to the first request, with a real closed port.
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.dashboards.grafana_api import credentials

runner = CliRunner()
SYSTEM = ["--system", str(Path(__file__).resolve().parents[2] / "demo_marketplace" / "system.yaml")]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


def test_token_and_password_come_from_files(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("glsa_secret\n")
    assert credentials(token_file=token) == {"Authorization": "Bearer glsa_secret"}
    password = tmp_path / "password"
    password.write_text("hunter2\n")
    basic = credentials(user="admin", password_file=password)
    assert isinstance(basic, httpx.BasicAuth)
    with pytest.raises(ValueError, match="--password-file"):
        credentials(user="admin")
    assert credentials() is None


def test_push_to_an_unreachable_grafana_fails_with_the_address() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = runner.invoke(app, ["dashboards", "push", *SYSTEM, "--grafana-url", url])
    assert result.exit_code == 1
    assert "push to" in result.output
    assert url in result.output


def test_push_refuses_a_password_on_the_command_line_and_a_missing_token_file(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = runner.invoke(app, ["dashboards", "push", *SYSTEM, "--grafana-url", url, "--user", "admin"])
    assert result.exit_code == 2
    assert "--password-file" in result.output
    missing = tmp_path / "nope"
    result = runner.invoke(
        app, ["dashboards", "push", *SYSTEM, "--grafana-url", url, "--token-file", str(missing)]
    )
    assert result.exit_code == 2
    assert "nope" in result.output
