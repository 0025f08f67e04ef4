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
        with _parsing(self.url, promql, name):
            kind, result = _get(data, "resultType"), _get(data, "result")
            if kind in ("scalar", "string"):
                return [Series({}, [_sample(result)])]
            return [
                Series(_labels(_get(item, "metric", {})), [_sample(_get(item, "value"))])
                for item in _list(result or [], "result")
            ]

    def query_range(
        self, promql: str, start: float, end: float, step: float, *, name: str | None = None
    ) -> list[Series]:
        form = {"query": promql, "start": _ts(start), "end": _ts(end), "step": _ts(step)}
        data = self._post("query_range", form, promql, name)
        with _parsing(self.url, promql, name):
            return [
                Series(
                    _labels(_get(item, "metric", {})),
                    [_sample(v) for v in _list(_get(item, "values", []), "values")],
                )
                for item in _list(_get(data, "result") or [], "result")
            ]

    def series(self, match: list[str], start: float, end: float) -> list[dict[str, str]]:
        """Label sets of the series matching any selector in ``match`` between ``start`` and ``end``."""
        form: list[tuple[str, str]] = [("match[]", m) for m in match]
        form += [("start", _ts(start)), ("end", _ts(end))]
        result = self._post("series", form, " or ".join(match), None)
        with _parsing(self.url, " or ".join(match), None):
            return [_labels(labels) for labels in _list(result or [], "data")]

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
def _parsing(url: str, promql: str, name: str | None) -> Iterator[None]:
    # A 200 whose data is not shaped like Prometheus' is a broken source, not a crash of the caller.
    try:
        yield
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        where = f"signal {name}" if name else f"query {promql!r}"
        raise SourceUnavailable(f"unexpected answer from {url} to {where}: {exc!r}") from exc


def _ts(value: float) -> str:
    # Millisecond precision is what Prometheus keeps; repr-free formatting avoids "1.7e+09".
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _get(body: Any, key: str, default: Any = None) -> Any:
    if not isinstance(body, dict):
        raise TypeError(f"expected an object with {key!r}, not {_excerpt(body)}")
    return body.get(key, default)


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"{what} is not a list: {_excerpt(value)}")
    return value


def _labels(metric: Any) -> dict[str, str]:
    if not isinstance(metric, dict) or not all(isinstance(v, str) for v in metric.values()):
        raise TypeError(f"a series' labels are a mapping of strings, not {_excerpt(metric)}")
    return dict(metric)


def _sample(pair: Any) -> tuple[float, float]:
    # Values are strings; float() understands Prometheus' "NaN", "+Inf" and "-Inf".
    if (
        not isinstance(pair, list)
        or len(pair) != 2
        or not all(isinstance(x, str | int | float) for x in pair)
    ):
        raise ValueError(f"a sample is [timestamp, value], not {_excerpt(pair)}")
    timestamp, value = pair
    try:
        return _float(timestamp), _float(value)
    except ValueError:
        return _float(timestamp), math.nan


def _float(x: Any) -> float:
    try:
        return float(x)
    except OverflowError:  # a JSON integer beyond a float: +-Inf, as Prometheus would read it
        return math.inf if x > 0 else -math.inf


def _excerpt(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
