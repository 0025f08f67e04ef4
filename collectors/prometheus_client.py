"""A small client over the Prometheus HTTP API (``/api/v1/query``, ``query_range``, ``series``).

Two kinds of failure matter to callers and are kept apart: the query is wrong (``PromQLError``:
retrying cannot help, other queries may still work) and the source is not answering
(``SourceUnavailable``: retried with backoff first, then the caller reports the source as down).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential


class PrometheusError(Exception):
    """Anything that went wrong talking to Prometheus."""


class PromQLError(PrometheusError):
    """Prometheus refused the query (HTTP 400/422, ``bad_data`` or ``execution``)."""

    def __init__(self, query: str, detail: str, error_type: str = "bad_data", name: str | None = None):
        self.query = query
        self.detail = detail  # Prometheus' own error text, e.g. "1:5: parse error: ..."
        self.error_type = error_type
        self.name = name
        where = f"in signal {name}" if name else f"in query {query!r}"
        super().__init__(f"bad PromQL {where}: {detail}")


class SourceUnavailable(PrometheusError):
    """Prometheus did not answer usefully: refused, timed out, 5xx/429 after retries, or not Prometheus."""


class _Transient(Exception):
    """A failure worth retrying; becomes ``SourceUnavailable`` when the attempts run out."""


@dataclass(frozen=True)
class Series:
    """One result series; values are floats and may be NaN or infinite, as Prometheus sent them."""

    metric: dict[str, str]
    values: list[tuple[float, float]] = field(default_factory=list)


class PrometheusClient:
    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        # One session: keep-alive connections, and the auth headers set once for every request.
        self.session = requests.Session()
        self.session.headers.update(headers or {})

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def query(self, promql: str, at: float, *, name: str | None = None) -> list[Series]:
        """Instant query at ``at``; each series has one value (scalars come back as one unlabelled series)."""
        data = self._post("query", {"query": promql, "time": _ts(at)}, promql, name)
        with _parsing(self.url):
            kind, result = data.get("resultType"), data.get("result")
            if kind in ("scalar", "string"):
                return [Series({}, [_sample(result)])]
            return [Series(dict(item.get("metric", {})), [_sample(item["value"])]) for item in result or []]

    def query_range(
        self, promql: str, start: float, end: float, step: float, *, name: str | None = None
    ) -> list[Series]:
        form = {"query": promql, "start": _ts(start), "end": _ts(end), "step": _ts(step)}
        data = self._post("query_range", form, promql, name)
        with _parsing(self.url):
            return [
                Series(dict(item.get("metric", {})), [_sample(v) for v in item.get("values", [])])
                for item in data.get("result") or []
            ]

    def series(self, match: list[str], start: float, end: float) -> list[dict[str, str]]:
        """Label sets of the series matching any selector in ``match`` between ``start`` and ``end``."""
        form: list[tuple[str, str]] = [("match[]", m) for m in match]
        form += [("start", _ts(start)), ("end", _ts(end))]
        result = self._post("series", form, " or ".join(match), None)
        with _parsing(self.url):
            return [dict(labels) for labels in result or []]

    def _post(self, endpoint: str, form: Any, promql: str, name: str | None) -> Any:
        # POST form-encoded: long PromQL would overflow a URL; Prometheus accepts both.
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff, max=max(self.backoff, 10.0)),
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        )
        try:
            return retrying(self._post_once, endpoint, form, promql, name)
        except _Transient as exc:
            raise SourceUnavailable(
                f"Prometheus at {self.url}: {exc} (after {self.attempts} attempts)"
            ) from exc

    def _post_once(self, endpoint: str, form: Any, promql: str, name: str | None) -> Any:
        url = f"{self.url}/api/v1/{endpoint}"
        try:
            response = self.session.post(url, data=form, timeout=self.timeout)
        except requests.Timeout as exc:
            raise _Transient(f"timed out after {self.timeout}s") from exc
        except requests.ConnectionError as exc:
            raise _Transient(f"cannot connect: {_reason(exc)}") from exc
        status = response.status_code
        if status >= 500 or status == 429:
            raise _Transient(f"HTTP {status}: {_body_error(response)}")
        if status in (400, 422):
            body = _json(response)
            if isinstance(body, dict) and body.get("status") == "error":
                raise PromQLError(promql, str(body.get("error", "")), str(body.get("errorType", "")), name)
        if status != 200:
            # 401/403/404...: not retried (it will not fix itself) and no data can come from this source.
            raise SourceUnavailable(f"Prometheus at {self.url}: HTTP {status}: {_body_error(response)}")
        body = _json(response)
        if not isinstance(body, dict) or body.get("status") != "success":
            raise SourceUnavailable(f"{url} did not answer like Prometheus: {response.text[:200]!r}")
        return body.get("data")


@contextmanager
def _parsing(url: str) -> Iterator[None]:
    # A 200 whose data is not shaped like Prometheus' is a broken source, not a crash of the caller.
    try:
        yield
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise SourceUnavailable(f"unexpected answer from {url}: {exc!r}") from exc


def _ts(value: float) -> str:
    # Millisecond precision is what Prometheus keeps; repr-free formatting avoids "1.7e+09".
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _sample(pair: list[Any]) -> tuple[float, float]:
    # Values are strings; float() understands Prometheus' "NaN", "+Inf" and "-Inf".
    timestamp, value = pair
    try:
        return float(timestamp), float(value)
    except ValueError:
        return float(timestamp), math.nan


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _body_error(response: requests.Response) -> str:
    body = _json(response)
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return response.text[:200].strip() or response.reason or ""


def _reason(exc: Exception) -> str:
    # requests nests the useful "Connection refused" several levels deep in urllib3 exceptions.
    text = str(exc)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "Connection reset",
        "Remote end closed",
    ):
        if marker in text:
            return marker
    return text[:200]
