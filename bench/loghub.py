"""Grouping accuracy of vigil's log templates on the Loghub-2k samples; prints JSON.

Each system's ``Content`` column is fed, line by line and in order, through a fresh ``LogTemplates``
(the class and defaults ``vigil run`` uses), and the template ids it returns are compared with the
ground-truth ``EventId``. Grouping accuracy (GA) is the share of lines whose predicted group holds
exactly the lines of their true group: one stray line in a cluster makes every line of it wrong.

Two configurations are reported:

- ``default``: ``LogTemplates()`` as shipped; this is the headline, what users get;
- ``configured``: the same plus a few masks per system, the kind of regex Drain's own benchmark
  passed per dataset and vigil users can add with ``extra_masks``. Only masks, no parameter tuning.

Published Drain GA (He et al., "Tools and Benchmarks for Automated Log Parsing", ICSE-SEIP 2019) sits
next to each figure. Usage: python bench/loghub.py [--systems HDFS,BGL] [--config default|configured|both]

The data is read from ``$VIGIL_DATASETS/loghub-2k`` (default ``../shared/datasets/loghub-2k`` from the
project root).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from collections import defaultdict
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

from vigil.collectors.log_templates import LogTemplates

DRAIN_GA = {
    "HDFS": 0.9975,
    "Hadoop": 0.9475,
    "Spark": 0.92,
    "Zookeeper": 0.9665,
    "BGL": 0.9625,
    "HPC": 0.887,
    "Thunderbird": 0.955,
    "Linux": 0.69,
}
SYSTEMS = tuple(DRAIN_GA)

# Per-system masks for the "configured" run: shapes a user of that system would know about. They are
# written from the systems' log formats (as Drain's benchmark did), not fitted to the labels.
EXTRA_MASKS: dict[str, list[tuple[str, str]]] = {
    "HDFS": [],
    "Hadoop": [],
    # Sizes printed with a unit token after them ("1024.0 B", "2.3 KB") vary in unit as well.
    "Spark": [(r"(?<!\w)\d+(?:\.\d+)? [KMGT]?B(?!\w)", "SIZE")],
    "Zookeeper": [],
    "BGL": [],
    "HPC": [],
    # sendmail queue ids ("jA9J1UvC004306: from=root, ..."): 8 letters or digits, then 6 digits.
    "Thunderbird": [(r"(?<!\w)[0-9A-Za-z]{8}\d{6}(?!\w)", "QUEUE_ID")],
    "Linux": [],
}


def datasets_dir() -> Path:
    root = Path(__file__).resolve().parent.parent
    return Path(os.environ.get("VIGIL_DATASETS", root.parent / "shared" / "datasets")) / "loghub-2k"


def load(system: str, directory: Path | None = None) -> tuple[list[str], list[str]]:
    """The ``Content`` lines of one system and their ground-truth ``EventId``s, in file order."""
    path = (directory or datasets_dir()) / system / f"{system}_2k.log_structured.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [row["Content"] for row in rows], [row["EventId"] for row in rows]


def grouping_accuracy(predicted: Sequence[Hashable], truth: Sequence[Hashable]) -> float:
    """Share of lines whose predicted cluster is exactly the set of lines of their true cluster."""
    if len(predicted) != len(truth):
        raise ValueError("predicted and truth must have one label per line")
    if not truth:
        return 0.0
    predicted_groups: dict[Hashable, list[int]] = defaultdict(list)
    true_sizes: dict[Hashable, int] = defaultdict(int)
    for line, (p, t) in enumerate(zip(predicted, truth, strict=True)):
        predicted_groups[p].append(line)
        true_sizes[t] += 1
    correct = 0
    for lines in predicted_groups.values():
        true_ids = {truth[line] for line in lines}
        # Equal sets: the cluster holds one true group only, and all of it.
        if len(true_ids) == 1 and true_sizes[truth[lines[0]]] == len(lines):
            correct += len(lines)
    return correct / len(truth)


def run(
    system: str, extra_masks: Sequence[tuple[str, str]] = (), directory: Path | None = None
) -> dict[str, Any]:
    """Template one system's lines with a fresh ``LogTemplates``; its GA, templates and speed."""
    lines, truth = load(system, directory)
    templates = LogTemplates(extra_masks=extra_masks)
    started = time.perf_counter()
    predicted = [templates.add(line)[0] for line in lines]
    seconds = time.perf_counter() - started
    return {
        "ga": round(grouping_accuracy(predicted, truth), 4),
        "drain_ga": DRAIN_GA[system],
        "templates": len(templates),
        "true_templates": len(set(truth)),
        "lines": len(lines),
        "seconds": seconds,
    }


def evaluate(systems: Sequence[str], configured: bool, directory: Path | None = None) -> dict[str, Any]:
    """GA per system and on average, next to Drain's published figures, and overall lines/s."""
    per_system = {s: run(s, EXTRA_MASKS[s] if configured else (), directory) for s in systems}
    lines = sum(r["lines"] for r in per_system.values())
    seconds = sum(r.pop("seconds") for r in per_system.values())
    average = sum(r["ga"] for r in per_system.values()) / len(per_system)
    drain_average = sum(DRAIN_GA[s] for s in systems) / len(systems)
    return {
        "systems": per_system,
        "average_ga": round(average, 4),
        "drain_average_ga": round(drain_average, 4),
        "beats_drain": sorted(s for s, r in per_system.items() if r["ga"] > r["drain_ga"]),
        "lines_per_s": round(lines / seconds),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help="comma-separated subset of " + ",".join(SYSTEMS)
    )
    parser.add_argument("--config", choices=("default", "configured", "both"), default="both")
    args = parser.parse_args(argv)
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems: {sorted(unknown)}")
    report: dict[str, Any] = {}
    if args.config in ("default", "both"):
        report["default"] = evaluate(systems, configured=False)
    if args.config in ("configured", "both"):
        report["configured"] = evaluate(systems, configured=True)
        report["configured"]["extra_masks"] = {s: EXTRA_MASKS[s] for s in systems if EXTRA_MASKS[s]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
