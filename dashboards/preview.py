"""A static picture of a dashboard, drawn from the same queries Grafana would run (PNG plus a one-file HTML).

Meant for review: a panel whose queries return nothing says "No data" in red, so a broken panel shows
up before anyone opens Grafana. The layout follows the dashboard's 24-column grid.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.image as mimage
import numpy as np
from jinja2 import Environment
from matplotlib.backends.backend_agg import FigureCanvasAgg  # no display needed: servers and tests
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from vigil.dashboards.preview_panels import (
    Placed,
    add_legend,
    draw_logs,
    draw_stat,
    draw_table,
    draw_timeseries,
)
from vigil.dashboards.queries import expand_panels, queries_of, resolve_variables
from vigil.dashboards.query_runner import DEFAULT_LOGS, has_data, run
from vigil.system.telemetry import LogTelemetry

WIDTH_IN = 18.0  # 1800 px at 100 dpi, about a browser's width
CELL_HEIGHT_IN = 0.32  # Grafana's grid row is 30 px high next to 75 px wide columns
HEADER_IN = 0.7
PAD_IN = 0.06
DPI = 100

HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h2 { border-bottom: 1px solid #999; margin-top: 1.5em; }
section { margin: 1em 0 2em; }
img { max-width: 100%; border: 1px solid #ddd; }
.error { color: #c00; }
table { border-collapse: collapse; font: 12px monospace; }
td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: left; vertical-align: top; }
</style></head><body>
<h1>{{ title }}</h1>
<p>{{ period }}</p>
{% for item in items %}{% if item.is_row %}<h2>{{ item.title }}</h2>
{% else %}<section><h3>{{ item.title }}</h3>
{% for error in item.errors %}<p class="error">{{ error }}</p>{% endfor %}
<img alt="{{ item.title }}" src="data:image/png;base64,{{ item.png }}">
{% if item.logs %}<table><tr><th>time</th><th>level</th><th>service</th><th>message</th></tr>
{% for line in item.logs %}<tr><td>{{ line.timestamp.strftime("%Y-%m-%d %H:%M:%S") }}</td>
<td>{{ line.level }}</td><td>{{ line.service }}</td><td>{{ line.message }}</td></tr>
{% endfor %}</table>{% endif %}
</section>
{% endif %}{% endfor %}
</body></html>
"""


def _compact(
    expanded: list[tuple[dict[str, Any], dict[str, list[str]]]],
) -> list[tuple[dict[str, Any], dict, int, int, int, int]]:
    """Grid positions after Grafana's vertical compaction: each panel floats up to the panels above it."""
    skyline = [0] * 24
    placed = []
    for panel, values in expanded:
        grid = panel.get("gridPos", {})
        w = 24 if panel.get("type") == "row" else min(int(grid.get("w", 12)), 24)
        h = 1 if panel.get("type") == "row" else int(grid.get("h", 8))
        x = min(int(grid.get("x", 0)), 24 - w)
        y = max(skyline[x : x + w])
        skyline[x : x + w] = [y + h] * w
        if panel.get("type") == "row":  # nothing in a later section may float above its row
            skyline = [y + h] * 24
        placed.append((panel, values, x, y, w, h))
    return placed


def _ordered(
    expanded: list[tuple[dict[str, Any], dict[str, list[str]]]],
) -> list[tuple[dict[str, Any], dict[str, list[str]]]]:
    """Within each section, reading order (top to bottom, left to right), as compaction expects."""
    ordered: list[tuple[dict[str, Any], dict[str, list[str]]]] = []
    section: list[tuple[dict[str, Any], dict[str, list[str]]]] = []

    def flush() -> None:
        section.sort(
            key=lambda item: (item[0].get("gridPos", {}).get("y", 0), item[0].get("gridPos", {}).get("x", 0))
        )
        ordered.extend(section)
        section.clear()

    for item in expanded:
        if item[0].get("type") == "row":
            flush()
            ordered.append(item)
        else:
            section.append(item)
    flush()
    return ordered


def _draw_panel(figure: Figure, placed: Placed, *, top_in: float, start: float, end: float) -> None:
    """The panel's box, title and content, in figure inches measured from the top of the grid."""
    height_total = figure.get_figheight()
    left_in, width_in = placed.x / 24 * WIDTH_IN + PAD_IN, placed.w / 24 * WIDTH_IN - 2 * PAD_IN
    top, height_in = top_in + placed.y * CELL_HEIGHT_IN + PAD_IN, placed.h * CELL_HEIGHT_IN - 2 * PAD_IN

    def frac(left: float, top_: float, width: float, height: float) -> tuple[float, float, float, float]:
        return left / WIDTH_IN, 1 - (top_ + height) / height_total, width / WIDTH_IN, height / height_total

    title = placed.panel.get("title", "")
    if placed.panel.get("type") == "row":
        figure.text(
            left_in / WIDTH_IN,
            1 - (top + height_in / 2) / height_total,
            title,
            fontsize=13,
            fontweight="bold",
            va="center",
        )
        figure.add_artist(
            Rectangle(
                frac(left_in, top + height_in, width_in, 0)[:2],
                width_in / WIDTH_IN,
                0.0,
                transform=figure.transFigure,
                edgecolor="#999",
                linewidth=1,
                zorder=-1,
            )
        )
        return
    box = frac(left_in, top, width_in, height_in)
    figure.add_artist(
        Rectangle(
            box[:2],
            box[2],
            box[3],
            transform=figure.transFigure,
            facecolor="#f7f8fa",
            edgecolor="#ccd",
            linewidth=0.8,
            zorder=-1,  # under the axes drawn inside it
        )
    )
    figure.text(
        (left_in + 0.08) / WIDTH_IN,
        1 - (top + 0.16) / height_total,
        title[: int(width_in * 11)],
        fontsize=9,
        fontweight="bold",
        va="center",
    )
    kind = placed.panel.get("type", "")
    unit = placed.panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
    series_count = sum(len(r.series) for r in placed.results)
    legend_rows = 0
    if kind == "timeseries" and series_count:
        legend_rows = math.ceil(min(series_count, 12) / max(1, min(series_count, int(width_in // 2.2))))
    margin_left = 0.65 if kind == "timeseries" else 0.1
    margin_bottom = (0.3 + 0.16 * legend_rows) if kind == "timeseries" else 0.08
    inner = (
        left_in + margin_left,
        top + 0.34,
        width_in - margin_left - 0.12,
        height_in - 0.34 - margin_bottom,
    )
    ax = figure.add_axes(frac(inner[0], inner[1], inner[2], max(inner[3], 0.1)))
    ax.set_facecolor("white")
    errors = [r.error for r in placed.results if r.error]
    if kind == "text":
        ax.axis("off")
        content = str(placed.panel.get("options", {}).get("content", ""))
        ax.text(0, 1, content[:600], ha="left", va="top", fontsize=8, wrap=True, transform=ax.transAxes)
        return
    if not any(has_data(r) for r in placed.results):
        ax.axis("off")
        ax.text(
            0.5,
            0.55,
            "No data",
            ha="center",
            va="center",
            fontsize=16,
            color="#d00",
            fontweight="bold",
            transform=ax.transAxes,
        )
        if errors:
            ax.text(
                0.5,
                0.3,
                errors[0][: int(width_in * 14)],
                ha="center",
                va="center",
                fontsize=7,
                color="#d00",
                transform=ax.transAxes,
            )
        return
    if kind == "stat":
        draw_stat(ax, placed, unit, inner[3], inner[2])
    elif kind == "table":
        draw_table(ax, placed, unit, inner[3])
    elif kind == "logs":
        draw_logs(ax, placed, inner[3], inner[2])
    else:
        draw_timeseries(ax, placed, start, end, unit)
        add_legend(
            ax, placed, figure, 1 - (top + height_in - 0.16 * legend_rows - 0.04) / height_total, width_in
        )


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    mimage.imsave(buffer, pixels, format="png")
    return buffer.getvalue()


def render(
    dashboard: Mapping[str, Any],
    *,
    prometheus_url: str,
    elasticsearch_url: str,
    start: datetime,
    end: datetime,
    out_dir: Path,
    logs: LogTelemetry = DEFAULT_LOGS,
) -> tuple[Path, Path]:
    """Query every panel over ``start``..``end``; write ``<uid>.png`` and ``<uid>.html`` into ``out_dir``.

    ``logs`` is where the system's logs are (``system.telemetry.logs``)."""
    values = resolve_variables(dashboard, prometheus_url=prometheus_url, start=start, end=end)
    uid = dashboard.get("uid", "dashboard")
    placements = []
    for panel, panel_values, x, y, w, h in _compact(_ordered(expand_panels(dashboard, values))):
        queries = [] if panel.get("type") == "row" else queries_of(panel, panel_values, dashboard_uid=uid)
        urls = {"prometheus_url": prometheus_url, "elasticsearch_url": elasticsearch_url}
        results = [run(q, start=start, end=end, logs=logs, **urls) for q in queries]
        placements.append(Placed(panel, x, y, w, h, results))
    title, period = dashboard.get("title", uid), f"{start:%Y-%m-%d %H:%M:%S} to {end:%Y-%m-%d %H:%M:%S %Z}"
    # Titles, legends and log lines are data, not TeX: a "$" in them must not start mathtext.
    with matplotlib.rc_context({"text.parse_math": False}):
        pixels = _draw(placements, title=title, period=period, start=start, end=end)
    out_dir.mkdir(parents=True, exist_ok=True)
    png_path, html_path = out_dir / f"{uid}.png", out_dir / f"{uid}.html"
    png_path.write_bytes(_png(pixels))
    html_path.write_text(_html(placements, pixels, title=title, period=period), encoding="utf-8")
    return png_path, html_path


def _draw(placements: list[Placed], *, title: str, period: str, start: datetime, end: datetime) -> np.ndarray:
    """The whole dashboard as RGBA pixels."""
    rows = max((p.y + p.h for p in placements), default=1)
    figure = Figure(figsize=(WIDTH_IN, HEADER_IN + rows * CELL_HEIGHT_IN), dpi=DPI, facecolor="white")
    header_y = 1 - 0.3 / figure.get_figheight()
    figure.text(0.006, header_y, title, fontsize=16, fontweight="bold", va="center")
    figure.text(0.994, header_y, period, fontsize=10, ha="right", va="center")
    for placed in placements:
        _draw_panel(figure, placed, top_in=HEADER_IN, start=start.timestamp(), end=end.timestamp())
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())


def _html(placements: list[Placed], pixels: np.ndarray, *, title: str, period: str) -> str:
    """One page: each panel's part of the picture inline, logs panels' lines as an escaped table."""
    items = []
    for placed in placements:
        top, bottom = (round((HEADER_IN + y * CELL_HEIGHT_IN) * DPI) for y in (placed.y, placed.y + placed.h))
        left, right = (round(x / 24 * WIDTH_IN * DPI) for x in (placed.x, placed.x + placed.w))
        is_row = placed.panel.get("type") == "row"
        items.append(
            {
                "is_row": is_row,
                "title": placed.panel.get("title", ""),
                "png": "" if is_row else base64.b64encode(_png(pixels[top:bottom, left:right])).decode(),
                "errors": [f"{r.query.ref_id}: {r.error}" for r in placed.results if r.error],
                "logs": [line for r in placed.results for line in r.logs],
            }
        )
    return Environment(autoescape=True).from_string(HTML).render(title=title, period=period, items=items)
