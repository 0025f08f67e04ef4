"""One signal's recent history drawn as a PNG: what was observed against what vigil expected.

The top panel shows the observed value, the expected value and the normal band (lower-upper) shaded, with
vertical lines where the fault started, vigil fired and the SLO broke, so the reader sees at a glance how
far ahead of the customer impact vigil warned. The bottom panel shows the anomaly score against its one
alerting threshold, 1.0.

The figure is drawn on matplotlib's Agg canvas directly (no pyplot): no display is needed, no global state is
shared between threads, and every PNG has the same pixel size whatever the data.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import NamedTuple

import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

WIDTH_INCHES, HEIGHT_INCHES, DPI = 8.0, 4.5, 100
SIZE_PIXELS = (int(WIDTH_INCHES * DPI), int(HEIGHT_INCHES * DPI))  # (width, height) of every PNG
SCORE_THRESHOLD = 1.0  # scores above 1 are anomalous, for every detector

# Marker kinds, in the order they usually happen.
FAULT_STARTED, VIGIL_FIRED, SLO_BROKE, RESOLVED = "fault started", "vigil fired", "SLO broke", "resolved"
_MARKER_STYLE = {
    FAULT_STARTED: ("tab:gray", ":"),
    VIGIL_FIRED: ("tab:orange", "--"),
    SLO_BROKE: ("tab:red", "-"),
    RESOLVED: ("tab:green", "--"),
}

Values = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class Marker:
    """Something that happened at one instant (unix seconds), drawn as a vertical line."""

    kind: str  # FAULT_STARTED, VIGIL_FIRED, SLO_BROKE or RESOLVED (any other text is drawn in black)
    at: float


@dataclass(frozen=True)
class SeriesHistory:
    """A series' recent points; every column is aligned with ``times`` and NaN where unknown.

    Columns left out (``None``) are unknown everywhere: a detector still warming up has no band yet.
    ``fingerprint`` optionally names the alert this series belongs to, so the summary can fall back on the
    history's latest values when the alert's annotations lack them.
    """

    label: str  # the series as a person reads it, e.g. 'latency_p99 service=gateway route=/api/checkout'
    times: Values  # unix seconds
    observed: Values
    expected: Values | None = None
    lower: Values | None = None
    upper: Values | None = None
    scores: Values | None = None
    unit: str = ""
    fingerprint: str = ""

    def columns(self) -> Columns:
        """The history as float arrays of one length; raises ValueError when columns disagree in length."""
        times = np.asarray(self.times, dtype=float)

        def column(name: str, values: Values | None) -> np.ndarray:
            if values is None:
                return np.full(times.shape, np.nan)
            array = np.asarray(values, dtype=float)
            if array.shape != times.shape:
                raise ValueError(f"{self.label}: {name} has shape {array.shape}, times {times.shape}")
            return np.where(np.isfinite(array), array, np.nan)  # an infinity would break the axis limits

        return Columns(
            times,
            column("observed", self.observed),
            column("expected", self.expected),
            column("lower", self.lower),
            column("upper", self.upper),
            column("scores", self.scores),
        )


class Columns(NamedTuple):
    times: np.ndarray
    observed: np.ndarray
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    scores: np.ndarray


def plot_png(history: SeriesHistory | None, markers: Sequence[Marker] = ()) -> bytes:
    """The history as a PNG of SIZE_PIXELS; a 'no data' figure when there is nothing to draw."""
    figure = Figure(figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=DPI)
    FigureCanvasAgg(figure)  # attaches itself to the figure: savefig renders with Agg, no display
    data = history.columns() if history is not None else None
    usable = data is not None and bool(np.any(np.isfinite(data.times) & np.isfinite(data.observed)))
    if history is None or data is None or not usable:
        _draw_no_data(figure, history.label if history is not None else "")
    else:
        _draw_history(figure, history, data, markers)
    buffer = io.BytesIO()
    # No 'tight' bounding box (it would change the pixel size) and no software version in the metadata.
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _draw_no_data(figure: Figure, label: str) -> None:
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.set_title(label or "(no series)", fontsize=11)
    axes.text(0.5, 0.5, "no data", ha="center", va="center", fontsize=20, color="tab:gray")


def _draw_history(figure: Figure, history: SeriesHistory, data: Columns, markers: Sequence[Marker]) -> None:
    # Keep only points with a usable time; matplotlib breaks lines at NaN values by itself.
    keep = np.isfinite(data.times)
    times = _as_dates(data.times[keep])
    observed, expected = data.observed[keep], data.expected[keep]
    lower, upper, scores = data.lower[keep], data.upper[keep], data.scores[keep]

    grid = figure.add_gridspec(2, 1, height_ratios=(3, 1), hspace=0.08)
    values: Axes = figure.add_subplot(grid[0])
    score: Axes = figure.add_subplot(grid[1], sharex=values)

    band = np.isfinite(lower) & np.isfinite(upper)
    if band.any():
        values.fill_between(
            times, lower, upper, where=band, color="tab:blue", alpha=0.15, linewidth=0, label="normal band"
        )
    if np.isfinite(expected).any():
        values.plot(times, expected, color="tab:blue", linestyle="--", linewidth=1, label="expected")
    values.plot(times, observed, color="black", linewidth=1.3, label="observed")
    values.set_title(history.label, fontsize=11, loc="left")
    values.set_ylabel(history.unit or "value")
    values.tick_params(labelbottom=False)

    if np.isfinite(scores).any():
        score.plot(times, scores, color="tab:purple", linewidth=1, label="score")
        score.fill_between(
            times, SCORE_THRESHOLD, scores, where=scores > SCORE_THRESHOLD, color="tab:red", alpha=0.25
        )
    else:
        score.text(0.5, 0.5, "no scores", transform=score.transAxes, ha="center", va="center", color="gray")
    score.axhline(SCORE_THRESHOLD, color="tab:red", linewidth=0.8, linestyle="--", label="threshold 1.0")
    score.set_ylabel("score")
    # Room above the threshold line even when every score is far below it.
    top = max(1.5 * SCORE_THRESHOLD, 1.1 * float(np.nanmax(scores))) if np.isfinite(scores).any() else 1.5
    score.set_ylim(0, top)

    for marker in markers:
        color, style = _MARKER_STYLE.get(marker.kind, ("black", "-."))
        at = _as_dates(np.array([marker.at]))[0]
        values.axvline(at, color=color, linestyle=style, linewidth=1.2, label=marker.kind)
        score.axvline(at, color=color, linestyle=style, linewidth=1.2)

    values.legend(loc="best", fontsize=8, ncols=3, framealpha=0.8)
    values.grid(alpha=0.3)
    score.grid(alpha=0.3)
    locator = mdates.AutoDateLocator(tz=UTC)
    score.xaxis.set_major_locator(locator)
    score.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    score.set_xlabel("time (UTC)")
    figure.subplots_adjust(left=0.09, right=0.98, top=0.93, bottom=0.12)


def _as_dates(unix_seconds: np.ndarray) -> np.ndarray:
    """Unix seconds as matplotlib date numbers (days since matplotlib's epoch, whatever it is set to)."""
    return unix_seconds / 86400.0 + float(mdates.date2num(np.datetime64("1970-01-01T00:00:00")))
