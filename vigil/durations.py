"""Durations as people write them: ``90``, ``90s``, ``2m``, ``1h30m``, ``1.5h``."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in ``text``.

    >>> parse_duration("1h30m"), parse_duration("90"), parse_duration("250ms")
    (5400.0, 90.0, 0.25)
    """
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if not text or _PART.sub("", text):
        raise ValueError(f"not a duration: {text!r} (examples: 90s, 2m, 1h30m)")
    return float(sum(float(n) * _UNIT[u] for n, u in _PART.findall(text)))


def parse_moment(text: str, now: float) -> float:
    """Unix seconds: ``now``, ``-2h`` / ``now-2h`` (ago), ``+2h`` / ``in 2h`` (ahead), unix seconds, ISO 8601.

    Times without an offset are UTC: the stack and Prometheus run in UTC, so local time would surprise.

    >>> parse_moment("-1h", now=7200.0), parse_moment("in 30m", now=0.0)
    (3600.0, 1800.0)
    >>> parse_moment("1970-01-01T01:00", now=0.0)
    3600.0
    """
    text = text.strip()
    if text == "now":
        return now
    ago = re.fullmatch(r"(?:now)?\s*-\s*(\S+)", text)
    if ago:
        return now - parse_duration(ago.group(1))
    ahead = re.fullmatch(r"(?:now\s*\+|\+|in\s+)\s*(\S+)", text)
    if ahead:
        return now + parse_duration(ahead.group(1))
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (e.g. now, -2h, +2h, 1795549132, 2026-11-24T18:00Z)"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
