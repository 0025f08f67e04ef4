"""How a dashboard preview draws one panel's content: Grafana's units, reducers, colours and panel kinds."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import is_color_like
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from vigil.dashboards.query_runner import QueryResult

RATE_SUFFIXES = {
    "reqps": "req/s",
    "mps": "msg/s",
    "ops": "ops/s",
    "rps": "reads/s",
    "wps": "writes/s",
    "eps": "events/s",
    "cps": "c/s",
    "opm": "ops/min",
    "rpm": "req/min",
}
# Grafana's "short" scale, then the byte scales (IEC for "bytes", SI for "decbytes").
SHORT = [(1e12, " Tri"), (1e9, " Bil"), (1e6, " Mil"), (1e3, " K")]
IEC_BYTES = [(1024.0**4, " TiB"), (1024.0**3, " GiB"), (1024.0**2, " MiB"), (1024.0, " KiB")]
SI_BYTES = [(1e12, " TB"), (1e9, " GB"), (1e6, " MB"), (1e3, " kB")]
DURATIONS = [(86400.0, " day"), (3600.0, " hour"), (60.0, " min"), (1.0, " s"), (1e-3, " ms"), (1e-6, " µs")]
LEVEL_COLORS = {
    "critical": "#8b0000",
    "error": "#d00000",
    "warning": "#c77700",
    "warn": "#c77700",
    "debug": "#777",
}


def _number(value: float) -> str:
    """Up to three significant digits, without trailing zeros (12.5, 0.0312, 1250)."""
    magnitude = abs(value)
    if magnitude >= 100 or magnitude == 0:
        return f"{value:.0f}"
    text = f"{value:.{max(0, 2 - math.floor(math.log10(magnitude)))}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _scaled(value: float, scale: Sequence[tuple[float, str]], base: str) -> str:
    for size, suffix in scale:
        if abs(value) >= size:
            return _number(value / size) + suffix
    return _number(value) + base


def format_value(value: float, unit: str) -> str:
    """``value`` as Grafana shows it in ``unit`` (its unit ids: s, ms, percentunit, reqps, bytes, ...)."""
    if not math.isfinite(value):
        return str(value)
    if unit in ("s", "ms"):
        seconds = value / 1000 if unit == "ms" else value
        if seconds == 0:
            return "0 s"
        return next(
            (_number(seconds / size) + suffix for size, suffix in DURATIONS if abs(seconds) >= size),
            _number(seconds * 1e6) + " µs",
        )
    if unit == "percentunit":
        return _number(value * 100) + "%"
    if unit == "percent":
        return _number(value) + "%"
    if unit in RATE_SUFFIXES:
        return _scaled(value, SHORT, "") + " " + RATE_SUFFIXES[unit]
    if unit == "bytes":
        return _scaled(value, IEC_BYTES, " B")
    if unit == "decbytes":
        return _scaled(value, SI_BYTES, " B")
    if unit == "short":
        return _scaled(value, SHORT, "")
    if unit in ("", "none"):
        return _number(value)
    return f"{_number(value)} {unit}"


def reduce_values(values: np.ndarray, calc: str) -> float:
    """Grafana's reducers for stat and table panels, over the finite values (NaN when there are none)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan
    reducers: dict[str, Callable[[np.ndarray], Any]] = {
        "mean": np.mean,
        "max": np.max,
        "min": np.min,
        "sum": np.sum,
        "first": lambda v: v[0],
    }
    return float(reducers.get(calc, lambda v: v[-1])(finite))  # lastNotNull, last and anything unknown


def threshold_color(value: float, steps: Sequence[Mapping[str, Any]]) -> str:
    """The colour of the highest threshold step at or below ``value`` (Grafana's absolute thresholds)."""
    color = "#1f6f3f"
    for step in steps:
        if step.get("value") is None or (math.isfinite(value) and value >= float(step["value"])):
            color = str(step.get("color", color))
    # Grafana's palette names ("semi-dark-red", "green") map onto matplotlib's plain colour names.
    plain = color.split("-")[-1]
    named = {"green": "#1f8f4f", "red": "#d00000", "orange": "#e07000", "yellow": "#c9a000"}.get(plain, plain)
    return named if is_color_like(named) else "#333"


def level_color(level: str) -> str:
    return LEVEL_COLORS.get(level.lower(), "#222")


@dataclass
class Placed:
    panel: dict[str, Any]
    x: int
    y: int
    w: int
    h: int
    results: list[QueryResult]


def _to_datetimes(times: np.ndarray) -> np.ndarray:
    return (times * 1000).astype("datetime64[ms]")


def draw_timeseries(ax: Axes, placed: Placed, start: float, end: float, unit: str) -> None:
    bars = (
        placed.panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {}).get("drawStyle") == "bars"
    )
    series = [s for r in placed.results for s in r.series]
    for item in series:
        times = _to_datetimes(item.times)
        if bars and len(item.times) > 1:
            width = float(np.median(np.diff(item.times))) / 86400 * 0.8  # matplotlib dates are in days
            ax.bar(times, item.values, width=width, label=item.name, alpha=0.7)
        else:
            ax.plot(times, item.values, label=item.name, linewidth=1.2)
    ax.set_xlim(tuple(_to_datetimes(np.array([start, end]))))
    locator = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: format_value(value, unit)))
    custom = placed.panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
    finite = np.concatenate([s.values[np.isfinite(s.values)] for s in series] or [np.zeros(0)])
    soft_min = custom.get("axisSoftMin")
    if soft_min is not None and finite.size and finite.min() >= soft_min:  # Grafana's soft minimum
        ax.set_ylim(bottom=soft_min, top=max(ax.get_ylim()[1], soft_min + 1e-9))
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=7)


def add_legend(ax: Axes, placed: Placed, figure: Figure, legend_top: float, width_in: float) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    columns = max(1, min(len(handles), int(width_in // 2.2)))
    ax.legend(
        handles[:12],
        [label[:40] for label in labels[:12]],
        loc="upper left",
        ncol=columns,
        bbox_to_anchor=(placed.x / 24 + 0.004, legend_top),
        bbox_transform=figure.transFigure,
        fontsize=7,
        frameon=False,
        handlelength=1.2,
        columnspacing=1.0,
        borderaxespad=0,
    )


def draw_stat(ax: Axes, placed: Placed, unit: str, height_in: float, width_in: float) -> None:
    ax.axis("off")
    defaults = placed.panel.get("fieldConfig", {}).get("defaults", {})
    calc = (placed.panel.get("options", {}).get("reduceOptions", {}).get("calcs") or ["lastNotNull"])[0]
    shown = [(s.name, reduce_values(s.values, calc)) for r in placed.results for s in r.series][:6]
    for index, (name, value) in enumerate(shown):
        x, text = (index + 0.5) / len(shown), format_value(value, unit)
        # As big as the cell allows: 72 points an inch, a bold digit about 0.65 of its size wide.
        size = min(height_in * 72 * 0.5, width_in / len(shown) * 72 / (0.65 * max(len(text), 3)), 48)
        color = threshold_color(value, defaults.get("thresholds", {}).get("steps", []))
        ax.text(
            x,
            0.5,
            text,
            ha="center",
            va="center",
            fontsize=size,
            fontweight="bold",
            color=color,
            transform=ax.transAxes,
        )
        if len(shown) > 1:
            ax.text(x, 0.08, name[:30], ha="center", va="bottom", fontsize=7, transform=ax.transAxes)


def draw_table(ax: Axes, placed: Placed, unit: str, height_in: float) -> None:
    """Grafana's "merge": one row per label set, a value column per query."""
    ax.axis("off")
    rows: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    columns: list[str] = []
    for result in placed.results:
        value_column = f"Value #{result.query.ref_id}" if len(placed.results) > 1 else "Value"
        for series in result.series:
            labels = {k: v for k, v in series.labels.items() if k != "__name__"}
            row = rows.setdefault(tuple(sorted(labels.items())), dict(labels))
            row[value_column] = format_value(reduce_values(series.values, "lastNotNull"), unit)
            columns += [c for c in [*labels, value_column] if c not in columns]
    widths = [max([len(c), *(len(r.get(c, "")) for r in rows.values())]) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += [
        "  ".join(r.get(c, "").ljust(w) for c, w in zip(columns, widths, strict=True)) for r in rows.values()
    ]
    fitting = max(int(height_in / 0.16), 1)
    ax.text(
        0.0,
        1.0,
        "\n".join(lines[:fitting]),
        ha="left",
        va="top",
        family="monospace",
        fontsize=7.5,
        transform=ax.transAxes,
    )


def draw_logs(ax: Axes, placed: Placed, height_in: float, width_in: float) -> None:
    ax.axis("off")
    lines = sorted(
        (line for r in placed.results for line in r.logs), key=lambda line: line.timestamp, reverse=True
    )
    fitting, characters = max(int(height_in / 0.16), 1), max(int(width_in * 15), 20)
    for index, line in enumerate(lines[:fitting]):
        text = f"{line.timestamp:%H:%M:%S}  {line.level:<8} {line.service:<14} {line.message}"
        ax.text(
            0.0,
            1.0 - index / fitting,
            text[:characters],
            ha="left",
            va="top",
            family="monospace",
            fontsize=7,
            color=level_color(line.level),
            transform=ax.transAxes,
        )
