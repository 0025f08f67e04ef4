"""A private, real Prometheus whose whole history the test wrote itself.

Tests that replay or catch up over a time range need data that covers it. The stack's Prometheus
only holds what happened since it started (minutes, on a new machine), and what earlier tests left
there. So these tests write their series as OpenMetrics, turn them into TSDB blocks with
``promtool tsdb create-blocks-from openmetrics`` (Prometheus' own backfill), and start the real
``prometheus`` binary on that data, on a free port, scraping nothing: every answer is known.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from vigil.stack.private_prometheus import serve_tsdb


@dataclass(frozen=True)
class History:
    """One series' samples: ``name{labels}`` at each ``(time, value)``."""

    name: str
    labels: dict[str, str]
    samples: Sequence[tuple[float, float]] = field(default_factory=list)


def every(start: float, end: float, step: float, value: float = 1.0) -> list[tuple[float, float]]:
    """A constant ``value`` at ``start``, ``start + step``, ... up to ``end`` inclusive."""
    count = math.floor((end - start) / step + 1e-9) + 1
    return [(start + k * step, value) for k in range(count)]


def openmetrics(histories: Iterable[History]) -> str:
    """OpenMetrics text: families contiguous (the format requires it), samples in time order."""
    by_name: dict[str, list[History]] = {}
    for history in histories:
        by_name.setdefault(history.name, []).append(history)
    lines: list[str] = []
    for name, members in by_name.items():
        lines.append(f"# TYPE {name} gauge")
        for history in members:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(history.labels.items()))
            lines.extend(f"{name}{{{labels}}} {v!r} {t:.3f}" for t, v in sorted(history.samples))
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@contextmanager
def prometheus_with_history(home: Path, histories: Iterable[History]) -> Iterator[str]:
    """The real Prometheus over blocks backfilled from ``histories``; yields its URL."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed (`vigil stack install`)"
    home.mkdir(parents=True, exist_ok=True)
    source, data = home / "history.om", home / "data"
    source.write_text(openmetrics(histories))
    backfill = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(source), str(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert backfill.returncode == 0, backfill.stdout + backfill.stderr
    with serve_tsdb(data, home) as url:
        yield url
