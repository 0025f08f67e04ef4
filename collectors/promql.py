"""One signal definition, two ways to compute it: the PromQL Prometheus evaluates for a ``ScrapeSignal``.

The embedded scraper (``scrape_signals``) computes a signal from raw samples; with a Prometheus source the
same definition is sent as this PromQL, so a signal is written once whichever source a deployment uses.
Rates use a ``window`` (Prometheus needs at least two samples in it; the scraper uses consecutive scrapes).

>>> from vigil.collectors.scrape_signals import ScrapeSignal
>>> rps = ScrapeSignal("rps", "http_requests_total", "rate", by=("service",), match={"job": "shop"})
>>> print(to_promql(rps))
sum by (service) (rate(http_requests_total{job="shop"}[1m]))
"""

from __future__ import annotations

from collections.abc import Mapping

from vigil.collectors.scrape_signals import ScrapeSignal

COUNTER_SUFFIXES = ("_total", "_count", "_sum")


def quote(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def matchers(*matches: Mapping[str, str]) -> str:
    """``{k="v", r=~"re"}`` from label mappings where a value starting with ``~`` is a regex; "" if none."""
    parts = []
    for match in matches:
        for label, value in match.items():
            parts.append(
                f"{label}=~{quote(value[1:])}" if value.startswith("~") else f"{label}={quote(value)}"
            )
    return "{" + ", ".join(parts) + "}" if parts else ""


def selector(metric: str, *matches: Mapping[str, str]) -> str:
    return metric + matchers(*matches)


def _counter(metric: str, match: Mapping[str, str]) -> str:
    """A counter's series: as named when it says so, else any of the names the scraper would read."""
    if metric.endswith(COUNTER_SUFFIXES):
        return selector(metric, match)
    names = "|".join((metric, f"{metric}_total", f"{metric}_count"))
    return selector("", {"__name__": f"~{names}"}, match)


def _grouped(by: tuple[str, ...]) -> str:
    return f" by ({', '.join(by)})" if by else ""


def to_promql(signal: ScrapeSignal, window: str = "1m") -> str:
    s, by = signal, signal.by
    if s.kind == "gauge":
        expr = f"{s.aggregation}{_grouped(by)} ({selector(s.metric, s.match)})"
    elif s.kind == "rate":
        expr = f"sum{_grouped(by)} (rate({_counter(s.metric, s.match)}[{window}]))"
    elif s.kind == "quantile":
        base = s.metric.removesuffix("_bucket")
        buckets = selector(f"{base}_bucket", s.match)
        expr = f"histogram_quantile({s.quantile:g}, sum{_grouped((*by, 'le'))} (rate({buckets}[{window}])))"
        if s.min_rate is not None:
            events = f"sum{_grouped(by)} (rate({selector(f'{base}_count', s.match)}[{window}]))"
            expr = f"{expr}\nand on ({', '.join(by)}) {events} >= {s.min_rate:g}"
    else:  # ratio: `or ... * 0` so that a group without any numerator series reads 0, not nothing
        total = f"sum{_grouped(by)} (rate({_counter(s.metric, s.match)}[{window}]))"
        part = f"sum{_grouped(by)} (rate({_counter(s.metric, {**s.match, **s.numerator_match})}[{window}]))"
        expr = f"({part} or {total} * 0)\n/ {total}"
        if s.min_rate is not None:
            expr = f"{expr}\nand on ({', '.join(by)}) {total} >= {s.min_rate:g}"
    if s.scale != 1.0:
        expr = f"({expr}) * {s.scale:g}"
    if s.rename:  # copy each renamed label, then keep only the new names (one series per group already)
        for old, new in s.rename.items():
            expr = f'label_replace({expr}, {quote(new)}, "$1", {quote(old)}, "(.*)")'
        expr = f"max{_grouped(tuple(s.rename.get(label, label) for label in by))} ({expr})"
    for label, value in s.labels.items():
        expr = f'label_replace({expr}, {quote(label)}, {quote(value)}, "", "")'
    return expr
