"""A client over Alertmanager's HTTP API v2: post alerts, read them back, manage silences.

Failures come in two kinds, kept apart because callers react differently:
``AlertmanagerUnavailable`` (refused, timed out, 5xx: retried with backoff first; the outbox keeps the
alerts and tries again later) and ``AlertsRejected`` / ``AlertmanagerError`` (a 4xx: the request itself is
wrong and re-sending it cannot help).

Several URLs make an HA pair (or larger cluster). Alerts are posted to *every* instance, as Prometheus
does: an Alertmanager cluster gossips silences and notifications, never alerts, so each member must hear
each alert itself. Reads and silence changes go to the first instance that answers; silences then reach
the others by gossip.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from vigil.alerts.model import Alert

log = logging.getLogger(__name__)


class AlertmanagerError(Exception):
    """Alertmanager refused a request (4xx) or answered something that is not its API."""


class AlertmanagerUnavailable(AlertmanagerError):
    """No Alertmanager answered usefully: refused, timed out or 5xx, after retries."""


class AlertsRejected(AlertmanagerError):
    """Alertmanager refused some alerts (HTTP 400); ``accepted`` ones were delivered all the same."""

    def __init__(self, rejected: list[tuple[Alert, str]], accepted: list[Alert]) -> None:
        self.rejected = rejected  # (alert, Alertmanager's reason)
        self.accepted = accepted
        reasons = "; ".join(f"{dict(alert.labels)}: {reason}" for alert, reason in rejected)
        super().__init__(f"Alertmanager rejected {len(rejected)} alert(s): {reasons}")


class _Transient(Exception):
    """Worth retrying; becomes ``AlertmanagerUnavailable`` when the attempts run out."""


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(f"HTTP {status}: {message}")


@dataclass(frozen=True)
class ReceivedAlert:
    """An alert as Alertmanager holds it (``GET /api/v2/alerts``), with its mute state."""

    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    ends_at: float
    state: str  # "active", "suppressed" (silenced or inhibited) or "unprocessed"
    silenced_by: list[str] = field(default_factory=list)
    inhibited_by: list[str] = field(default_factory=list)
    receivers: list[str] = field(default_factory=list)

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> ReceivedAlert:
        status = body.get("status") or {}
        return cls(
            labels=dict(body.get("labels") or {}),
            annotations=dict(body.get("annotations") or {}),
            starts_at=parse_time(body["startsAt"]),
            ends_at=parse_time(body["endsAt"]),
            state=str(status.get("state", "")),
            silenced_by=list(status.get("silencedBy") or []),
            inhibited_by=list(status.get("inhibitedBy") or []),
            receivers=[r.get("name", "") for r in body.get("receivers") or []],
        )


_RFC3339 = re.compile(r"(.+T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", re.IGNORECASE)


def parse_time(text: str) -> float:
    """Unix seconds of an RFC 3339 time as Alertmanager writes them (up to 9 fraction digits)."""
    match = _RFC3339.fullmatch(text.strip())
    if not match:
        raise AlertmanagerError(f"not an RFC 3339 time: {text!r}")
    seconds, fraction, zone = match.groups()
    # Python 3.11's fromisoformat takes at most 6 fraction digits: nanoseconds are cut to microseconds.
    micro = (fraction or "").ljust(6, "0")[:6]
    zone = "+00:00" if zone.upper() == "Z" else zone
    return datetime.fromisoformat(f"{seconds}.{micro}{zone}").timestamp()


class AlertmanagerClient:
    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 0.2,
    ) -> None:
        self.urls = [u.rstrip("/") for u in ([urls] if isinstance(urls, str) else urls)]
        if not self.urls:
            raise ValueError("at least one Alertmanager URL is needed")
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.session = requests.Session()  # keep-alive across the outbox's frequent small posts

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> AlertmanagerClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- alerts -------------------------------------------------------------------------------------

    def post_alerts(self, alerts: Sequence[Alert]) -> None:
        """Deliver ``alerts`` to every instance; done when at least one took them (as in Prometheus).

        A lagging instance catches up at the next re-send; until then the ``endsAt`` of firing alerts
        bounds how long it can hold a stale state. Raises ``AlertmanagerUnavailable`` when no instance
        answered, ``AlertsRejected`` naming each alert Alertmanager refused.
        """
        if not alerts:
            return
        failures: list[str] = []
        refusal: AlertmanagerError | None = None
        for url in self.urls:
            try:
                self._post_to(url, list(alerts))
            except AlertmanagerUnavailable as error:
                failures.append(str(error))
            except AlertmanagerError as error:  # a 400: the same alerts get the same answer everywhere
                refusal = refusal or error
        if len(failures) == len(self.urls):
            raise AlertmanagerUnavailable("; ".join(failures))
        if failures:
            log.warning("alerts delivered, but not to every Alertmanager: %s", "; ".join(failures))
        if refusal is not None:
            raise refusal

    def _post_to(self, url: str, alerts: list[Alert]) -> None:
        try:
            self._request(url, "POST", "/api/v2/alerts", json=[a.to_api() for a in alerts])
            return
        except _BadRequest as bad:
            if len(alerts) == 1:
                raise AlertsRejected([(alerts[0], bad.message)], []) from None
            reason = bad.message
        # Alertmanager refuses the whole batch and does not say which alert was wrong: one at a time
        # finds out, and the good alerts are delivered rather than held hostage by a bad one.
        rejected: list[tuple[Alert, str]] = []
        accepted: list[Alert] = []
        for alert in alerts:
            try:
                self._request(url, "POST", "/api/v2/alerts", json=[alert.to_api()])
                accepted.append(alert)
            except _BadRequest as bad:
                rejected.append((alert, bad.message))
        if not rejected:  # not one alert but the batch was refused (a size limit?): one by one did it
            log.warning("%s refused a batch of %d alerts (%s); one by one took", url, len(alerts), reason)
            return
        raise AlertsRejected(rejected, accepted)

    def alerts(
        self,
        filter: Sequence[str] = (),  # Alertmanager's own name for its matchers
        *,
        active: bool = True,
        silenced: bool = True,
        inhibited: bool = True,
        unprocessed: bool = True,
    ) -> list[ReceivedAlert]:
        """Alerts Alertmanager holds; ``filter`` takes matchers such as ``service="catalog"``."""
        params: list[tuple[str, str]] = [("filter", f) for f in filter]
        flags = {"active": active, "silenced": silenced, "inhibited": inhibited, "unprocessed": unprocessed}
        params += [(name, str(value).lower()) for name, value in flags.items()]
        body = self._first("GET", "/api/v2/alerts", params=params)
        return [ReceivedAlert.from_api(item) for item in _expect(body, list)]

    # --- silences -----------------------------------------------------------------------------------

    def silences(self, filter: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Silences as Alertmanager returns them (``vigil.alerts.silences`` gives them a type)."""
        body = self._first("GET", "/api/v2/silences", params=[("filter", f) for f in filter])
        return list(_expect(body, list))

    def create_silence(self, silence: Mapping[str, Any]) -> str:
        """Create (or, with an ``id``, replace) a silence; returns its id."""
        # Not idempotent: a retried POST whose first try did arrive would leave two silences.
        body = self._first("POST", "/api/v2/silences", json=dict(silence), idempotent=False)
        return str(_expect(body, dict).get("silenceID", ""))

    def expire_silence(self, silence_id: str) -> None:
        try:
            self._first("DELETE", f"/api/v2/silence/{silence_id}", retry_server_errors=False)
        except AlertmanagerUnavailable as error:
            # Alertmanager answers an unknown id with a 500 "silence not found": say so plainly.
            if "silence not found" in str(error):
                raise AlertmanagerError(f"no silence with id {silence_id}") from error
            raise

    def status(self) -> dict[str, Any]:
        """Cluster, config and version information (``GET /api/v2/status``)."""
        return dict(_expect(self._first("GET", "/api/v2/status"), dict))

    # --- transport ----------------------------------------------------------------------------------

    def _first(self, method: str, path: str, **kwargs: Any) -> Any:
        """The answer of the first instance that gives one."""
        failures: list[str] = []
        for url in self.urls:
            try:
                return self._request(url, method, path, **kwargs)
            except AlertmanagerUnavailable as error:
                failures.append(str(error))
            except _BadRequest as bad:
                raise AlertmanagerError(f"{method} {url}{path}: {bad}") from None
        raise AlertmanagerUnavailable("; ".join(failures))

    def _request(
        self,
        url: str,
        method: str,
        path: str,
        *,
        idempotent: bool = True,
        retry_server_errors: bool = True,
        **kwargs: Any,
    ) -> Any:
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts if idempotent else 1),
            wait=wait_exponential(multiplier=self.backoff, max=max(self.backoff, 5.0)),
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        )
        try:
            return retrying(self._request_once, url + path, method, retry_server_errors, kwargs)
        except _Transient as error:
            raise AlertmanagerUnavailable(f"Alertmanager at {url}: {error}") from error

    def _request_once(self, full_url: str, method: str, retry_server_errors: bool, kwargs: Any) -> Any:
        try:
            response = self.session.request(method, full_url, timeout=self.timeout, **kwargs)
        except requests.Timeout as error:
            raise _Transient(f"timed out after {self.timeout}s") from error
        except requests.ConnectionError as error:
            raise _Transient(f"cannot connect ({type(error).__name__})") from error
        status = response.status_code
        if status >= 500 or status == 429:
            message = f"HTTP {status}: {_message(response)}"
            if not retry_server_errors:
                raise AlertmanagerUnavailable(message)
            raise _Transient(message)
        if status in (400, 422):  # the request is wrong: Alertmanager's message says why
            raise _BadRequest(status, _message(response))
        if status >= 400:  # 401, 403, 404...: the URL or the credentials, not the alerts
            raise AlertmanagerError(f"{full_url}: HTTP {status}: {_message(response)}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as error:
            raise AlertmanagerError(f"{full_url} answered with something other than JSON") from error


def _message(response: requests.Response) -> str:
    """Alertmanager's error text: a bare JSON string, or ``{"message": ...}`` from the API layer."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300]
    if isinstance(body, dict):
        return str(body.get("message", body))
    return str(body)


def _expect(body: Any, kind: type) -> Any:
    if not isinstance(body, kind):
        raise AlertmanagerError(f"unexpected answer from Alertmanager: {str(body)[:200]}")
    return body
