"""The log parsers the Loghub bench compares, each as ``lines -> (group id, template) per line``.

- vigil: ``LogTemplates`` with the parameters under test (what ``vigil run`` uses, defaults or chosen);
- drain3 with its defaults (no masks), the library vigil builds on;
- LOGPAI's reference implementations from ``logparser3`` (PyPI): Drain and Brain with their defaults
  and no per-system regexes or names, so every parser sees the same bare lines and nothing it was
  tuned with. logparser3 reads and writes files, so its runs go through a temporary directory.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

from vigil.collectors.log_templates import LogTemplates

Parsed = list[tuple[str, str]]  # per line: (group id, template text)
Parser = Callable[[Sequence[str]], Parsed]


def vigil_parser(**params: Any) -> Parser:
    def parse(lines: Sequence[str]) -> Parsed:
        templates = LogTemplates(**params)
        ids = [templates.add(line)[0] for line in lines]
        final = templates.templates()  # a template's text as it ended up, as Loghub labels it
        return [(i, final.get(i, "")) for i in ids]

    return parse


def drain3_defaults(lines: Sequence[str]) -> Parsed:
    miner = _drain3_miner()
    ids = [miner.add_log_message(line)["cluster_id"] for line in lines]
    final = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
    return [(str(i), final[i]) for i in ids]


def _drain3_miner() -> TemplateMiner:
    logging.getLogger("drain3").setLevel(logging.WARNING)
    return TemplateMiner(None, TemplateMinerConfig())  # drain3's defaults, no drain3.ini


def logparser3(name: str) -> Parser:
    """LOGPAI's ``Drain`` or ``Brain`` with defaults, on the bare message lines."""

    def parse(lines: Sequence[str]) -> Parsed:
        with tempfile.TemporaryDirectory(prefix="vigil-loghub-") as work:
            source = Path(work) / "lines.log"
            # One message per line, read back whole as the <Content> field.
            source.write_text("".join(line.replace("\n", " ") + "\n" for line in lines))
            out = Path(work) / "out"
            with contextlib.redirect_stdout(io.StringIO()):  # both print progress
                if name == "Drain":
                    from logparser.Drain import LogParser as DrainParser

                    DrainParser("<Content>", indir=work, outdir=str(out)).parse(source.name)
                else:
                    from logparser.Brain import LogParser as BrainParser

                    # Brain's first argument switches on per-dataset preprocessing; "generic" has none.
                    BrainParser("generic", "<Content>", indir=work, outdir=str(out)).parse(source.name)
            with (out / f"{source.name}_structured.csv").open(newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        if len(rows) != len(lines):
            raise RuntimeError(f"logparser3 {name} returned {len(rows)} rows for {len(lines)} lines")
        return [(row["EventId"], row["EventTemplate"]) for row in rows]

    return parse


BASELINES: dict[str, Parser] = {
    "drain3 defaults": drain3_defaults,
    "logparser3 Drain": logparser3("Drain"),
    "logparser3 Brain": logparser3("Brain"),
}


def speed(lines: Sequence[str], rounds: int = 3) -> dict[str, float]:
    """Lines per second of vigil's defaults and drain3's defaults on the same lines, measured in turns
    (best of ``rounds`` each) so that a busy machine slows both alike: ``cold``, every line new to a
    fresh parser (the Loghub figure), and ``warm``, the same lines again through the parser that has
    seen them (a long-running collector's stream repeats its messages but for their variables)."""
    best = {f"{name}_{phase}": 0.0 for name in ("vigil", "drain3") for phase in ("cold", "warm")}
    for _ in range(rounds):
        for name in ("vigil", "drain3"):
            add = LogTemplates().add if name == "vigil" else _drain3_miner().add_log_message
            for phase in ("cold", "warm"):
                started = time.perf_counter()
                for line in lines:
                    add(line)
                rate = len(lines) / (time.perf_counter() - started)
                best[f"{name}_{phase}"] = max(best[f"{name}_{phase}"], rate)
    ratios = {
        f"vigil_vs_drain3_{phase}": round(best[f"vigil_{phase}"] / best[f"drain3_{phase}"], 3)
        for phase in ("cold", "warm")
    }
    return {name: round(rate) for name, rate in best.items()} | ratios
