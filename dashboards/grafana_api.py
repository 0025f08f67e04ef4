"""Upload the built dashboards to a running Grafana through its HTTP API.

For users whose Grafana is not provisioned from files: ``vigil dashboards push --grafana-url URL``
creates the ``vigil`` folder if needed and saves every dashboard with ``POST /api/dashboards/db``
(``overwrite``: the uid is the identity, the repository is the source of truth). Credentials come
from files (a service account token, or a password), never from the command line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from vigil.dashboards.build import FOLDER_TITLE, FOLDER_UID, api_payload


class GrafanaError(RuntimeError):
    """Grafana refused a request; the message says which and what Grafana answered."""


@dataclass(frozen=True)
class Pushed:
    uid: str
    title: str
    url: str  # where Grafana serves it
    version: int


def credentials(
    *, token_file: Path | None = None, user: str | None = None, password_file: Path | None = None
) -> httpx.Auth | dict[str, str] | None:
    """Bearer token from ``token_file``, or basic auth for ``user`` with the password in ``password_file``."""
    if token_file is not None:
        return {"Authorization": f"Bearer {token_file.read_text().strip()}"}
    if user is not None:
        if password_file is None:
            raise ValueError("--user needs --password-file (passwords are not taken on the command line)")
        return httpx.BasicAuth(user, password_file.read_text().strip())
    return None


class GrafanaClient:
    def __init__(
        self, url: str, *, auth: httpx.Auth | dict[str, str] | None = None, timeout: float = 10
    ) -> None:
        headers = auth if isinstance(auth, dict) else {}
        basic = auth if isinstance(auth, httpx.Auth) else None
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, auth=basic, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    @retry(
        retry=retry_if_exception_type(httpx.TransportError),
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.5, max=4),
        reraise=True,
    )
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, **kwargs)

    def _json(self, method: str, path: str, *, ok: Iterable[int] = (200,), **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code in (401, 403):
            raise GrafanaError(
                f"{method} {path}: Grafana answered {response.status_code} ({_message(response)}); "
                "pass --token-file with a service account token that may write dashboards"
            )
        if response.status_code not in set(ok):
            raise GrafanaError(
                f"{method} {path}: Grafana answered {response.status_code}: {_message(response)}"
            )
        return response.json() if response.content else None

    def ensure_folder(self, uid: str = FOLDER_UID, title: str = FOLDER_TITLE) -> None:
        if self._request("GET", f"/api/folders/{uid}").status_code == 200:
            return
        self._json("POST", "/api/folders", json={"uid": uid, "title": title})

    def save(self, payload: Mapping[str, Any]) -> Pushed:
        answer = self._json("POST", "/api/dashboards/db", json=payload)
        board = payload["dashboard"]
        return Pushed(board["uid"], board["title"], answer.get("url", ""), int(answer.get("version", 0)))

    def get(self, uid: str) -> dict[str, Any]:
        found: dict[str, Any] = self._json("GET", f"/api/dashboards/uid/{uid}")
        return found


def push(client: GrafanaClient, dashboards: Iterable[Mapping[str, Any]], *, message: str) -> list[Pushed]:
    """Save every dashboard into the vigil folder, in order; the first refusal stops the push."""
    client.ensure_folder()
    return [client.save(api_payload(board, message=message)) for board in dashboards]


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    return str(body.get("message") or body) if isinstance(body, dict) else str(body)[:300]
