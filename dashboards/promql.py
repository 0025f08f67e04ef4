"""Small PromQL helpers for the dashboards: selectors, ratios that exist when nothing failed, quantiles."""

from __future__ import annotations

from collections.abc import Mapping

from vigil.collectors.promql import matchers, quote
from vigil.system.components import regex_literal

__all__ = ["RATE", "label_matchers", "one_of", "quantile", "quote", "rate", "ratio_or_zero", "selector"]

RATE = "$__rate_interval"


def label_matchers(*parts: Mapping[str, str] | str) -> str:
    """``a="x", b=~"y|z"`` from label mappings as the system file writes them (a ``~`` value is a regex)
    and raw matchers, which carry their own operator (``route=~"$route"``): a dashboard variable is not a
    label value, so it must not be quoted or escaped as one."""
    rendered = [part if isinstance(part, str) else matchers(part)[1:-1] for part in parts]
    return ", ".join(part for part in rendered if part)


def selector(metric: str, *parts: Mapping[str, str] | str) -> str:
    """``metric{...}`` (see :func:`label_matchers`); the bare name when nothing is matched."""
    inner = label_matchers(*parts)
    return f"{metric}{{{inner}}}" if inner else metric


def one_of(label: str, values: tuple[str, ...] | list[str]) -> str:
    """A matcher for any of ``values`` (exact strings: regex characters such as '.' are escaped)."""
    if len(values) == 1:
        return f"{label}={quote(values[0])}"
    return f"{label}=~{quote('|'.join(regex_literal(v) for v in values))}"


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
