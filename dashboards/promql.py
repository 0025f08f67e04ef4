"""Small PromQL helpers for the dashboards: selectors, ratios that exist when nothing failed, quantiles."""

from __future__ import annotations

import re

from vigil.alerts.prometheus_rules import repr_label as quote  # a PromQL string literal

RATE = "$__rate_interval"


def selector(metric: str, *matchers: str, **labels: str) -> str:
    """``metric{a="x", <raw matchers>}``; raw matchers carry operators such as ``route=~"$route"``."""
    parts = [f"{name}={quote(value)}" for name, value in labels.items()] + list(matchers)
    return f"{metric}{{{', '.join(parts)}}}" if parts else metric


def one_of(label: str, values: tuple[str, ...] | list[str]) -> str:
    """A matcher for any of ``values`` (exact strings: regex characters such as '.' are escaped)."""
    if len(values) == 1:
        return f"{label}={quote(values[0])}"
    return f"{label}=~{quote('|'.join(re.escape(v) for v in values))}"


def rate(series: str, *, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({series}[{RATE}]))"


def ratio_or_zero(bad: str, total: str) -> str:
    """bad / total that reads 0 (not "no data") while nothing was bad: no series is not the same as none."""
    return f"(({bad}) or vector(0)) / ({total})"


def quantile(q: float, histogram: str, *, by: str = "") -> str:
    """``histogram`` is the ``_bucket`` selector; ``by`` keeps extra labels besides ``le``."""
    labels = f"{by}, le" if by else "le"
    return f"histogram_quantile({q:g}, sum by ({labels}) (rate({histogram}[{RATE}])))"
