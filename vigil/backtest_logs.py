"""Logs kept beside a recording, so that a backtest replays the log signals too.

A recording of Prometheus is a TSDB snapshot; its logs are the Elasticsearch documents of the same
span, exported as gzip JSON lines (only the fields the log collector reads, plus ``@timestamp``). In a
replay, ``RecordedLogs`` answers the log collector's window reads in place of Elasticsearch, so the
counts, the templates and the one-window-behind timing are those ``vigil run`` would have had.
"""

from __future__ import annotations

import bisect
import gzip
import json
import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from vigil.collectors.logs import SOURCE_FIELDS, read_documents

TIMESTAMP = "@timestamp"


def epoch_of(value: Any) -> float:
    """``@timestamp`` as Elasticsearch returns it: epoch milliseconds or an ISO 8601 string."""
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value) / 1000.0
    if isinstance(value, str):
        return datetime.fromisoformat(value).timestamp()  # '...Z' and offsets alike
    raise ValueError(f"not a timestamp: {value!r}")


def export_logs(es: Elasticsearch, index: str, start: float, end: float, path: Path) -> int:
    """Every document of ``index`` in [start, end) to ``path``, oldest first; returns how many. The file
    appears whole or not at all (written aside, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    count = 0
    with gzip.open(partial, "wt", encoding="utf-8") as out:
        for doc in read_documents(es, index, start, end, fields=(TIMESTAMP, *SOURCE_FIELDS)):
            out.write(json.dumps(doc, separators=(",", ":")) + "\n")
            count += 1
    partial.replace(path)
    return count


class RecordedLogs:
    """The documents of an exported file, read by window as ``LogCollector`` reads Elasticsearch."""

    def __init__(self, documents: list[tuple[float, Mapping[str, Any]]]) -> None:
        documents = sorted(documents, key=lambda d: d[0])
        self.times = [t for t, _ in documents]
        self.documents = [d for _, d in documents]

    @classmethod
    def load(cls, path: Path) -> RecordedLogs:
        documents = []
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    doc = json.loads(line)
                    documents.append((epoch_of(doc[TIMESTAMP]), doc))
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(f"{path}:{number}: not an exported log document ({exc})") from exc
        return cls(documents)

    def __len__(self) -> int:
        return len(self.documents)

    def __call__(self, start: float, end: float) -> list[Mapping[str, Any]]:
        """The documents with ``start <= @timestamp < end``, oldest first."""
        return self.documents[bisect.bisect_left(self.times, start) : bisect.bisect_left(self.times, end)]
