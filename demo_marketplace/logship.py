"""Ship the marketplace's ECS JSON log files into Elasticsearch: a small Filebeat written by us.

Each replica appends one JSON object per line to ``<log_dir>/<service>-<replica>.log``. Every round reads
the complete new lines of every file, bulk-indexes them into ``<prefix>-<service>-YYYY.MM.DD`` and only then
advances the file's offset in a JSON registry. Documents get deterministic ids, so re-shipping after a
crash (between the bulk and the registry write) overwrites instead of duplicating: at-least-once delivery
without duplicates.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import logging
import os
import re
import signal
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch.helpers import bulk
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

log = logging.getLogger(__name__)

# Explicit types for what dashboards and detectors query; any other field is mapped dynamically.
_FIELD_TYPES = [
    ("date", ["@timestamp"]),
    ("long", ["log.offset"]),
    ("text", ["message", "error.message", "error.stack_trace"]),
    ("keyword", ["log.level", "log.logger", "log.file.path", "service.name", "service.node.name", "tags"]),
    ("keyword", ["http.request.id", "labels.order_id", "error.type", "ecs.version"]),
]
_MAPPINGS = {"properties": {field: {"type": kind} for kind, fields in _FIELD_TYPES for field in fields}}


class _RetryableBulkError(Exception):
    """Elasticsearch refused part of a batch for a transient reason (429, 5xx): keep the offset."""


def _service_from_file(path: Path) -> str:
    # "payment-gateway-0.log" -> "payment-gateway": only a trailing numeric part is the replica.
    name, _, replica = path.stem.rpartition("-")
    return name if name and replica.isdigit() else path.stem


def _index_safe(name: str) -> str:
    # Index names must be lowercase and free of characters such as spaces, '/', '*' or ','.
    return re.sub(r"[^a-z0-9_.-]+", "-", name.lower()).strip("-_.") or "unknown"


def _timestamp(doc: dict[str, Any]) -> datetime:
    try:
        ts = datetime.fromisoformat(str(doc["@timestamp"]))
    except (KeyError, ValueError):
        return datetime.now(UTC)
    return ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)


def _unparsed(raw: str, service: str) -> dict[str, Any]:
    # Keep the line rather than lose it: a stack trace printed to the file is exactly what on-call needs.
    return {
        "@timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "message": raw,
        "log.level": "unknown",
        "service.name": service,
        "tags": ["unparsed"],
    }


class LogShipper:
    def __init__(
        self,
        log_dir: Path,
        es: Elasticsearch,
        *,
        registry_path: Path,
        index_prefix: str = "logs-marketplace",
        batch_size: int = 500,
        registry: CollectorRegistry | None = None,
        request_timeout: float = 30.0,
    ) -> None:
        self.log_dir, self.registry_path, self.index_prefix = log_dir, registry_path, index_prefix
        self.batch_size = batch_size
        # A slow Elasticsearch must not stall the shipper forever; the next round retries.
        self.es = es.options(request_timeout=request_timeout)
        self._template_ready = False
        self._offsets: dict[str, dict[str, int]] = self._load_registry()
        metrics = registry if registry is not None else CollectorRegistry()
        self._shipped = Counter("logship_documents_shipped", "Lines indexed", ["service"], registry=metrics)
        self._failures = Counter("logship_bulk_failures", "Failed shipping rounds", registry=metrics)
        self._lag = Gauge("logship_lag_bytes", "Bytes not shipped yet", ["service"], registry=metrics)

    # -- registry -------------------------------------------------------------------------------------
    def _load_registry(self) -> dict[str, dict[str, int]]:
        try:
            data = json.loads(self.registry_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            # Starting over re-ships everything, which the deterministic ids make harmless.
            log.warning("ignoring unreadable registry %s: %s", self.registry_path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def _save_registry(self) -> None:
        # Temp file + fsync + rename: a crash leaves either the old or the new registry, never half of one.
        self.registry_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.registry_path.parent, prefix=self.registry_path.name + ".")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self._offsets, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.registry_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _start_offset(self, key: str, st: os.stat_result) -> int:
        state = self._offsets.get(key)
        # A new inode (file replaced) or a shrunken file (truncated) is a rotation: read the new file whole.
        if state is None or state.get("inode") != st.st_ino or st.st_size < state.get("offset", 0):
            return 0
        return int(state["offset"])

    # -- shipping -------------------------------------------------------------------------------------
    def _ensure_template(self) -> None:
        if self._template_ready:
            return
        # Put lazily (not in __init__) so a shipper started while Elasticsearch is down still comes up,
        # but always before the first bulk, so no daily index is ever created with dynamic mappings.
        # Priority above 100 beats the stock `logs-*-*` data-stream template of full distributions; the
        # prefix length keeps a more specific prefix (e.g. per test) from clashing with the default one.
        self.es.indices.put_index_template(
            name=self.index_prefix,
            index_patterns=[f"{self.index_prefix}-*"],
            priority=200 + len(self.index_prefix),
            template={"settings": {"auto_expand_replicas": "0-1"}, "mappings": _MAPPINGS},
            meta={"managed_by": "vigil.demo_marketplace.logship"},
        )
        self._template_ready = True

    def _action(self, path: Path, inode: int, offset: int, line: bytes) -> dict[str, Any]:
        raw = line.decode("utf-8", errors="replace").rstrip("\r\n")
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        doc = parsed if isinstance(parsed, dict) else _unparsed(raw, _service_from_file(path))
        nested = doc.get("service")
        service = doc.get("service.name") or (nested.get("name") if isinstance(nested, dict) else None)
        if not isinstance(service, str):  # the file name says whose line it is; searches filter on the field
            service = doc["service.name"] = _service_from_file(path)
        service = _index_safe(service)
        doc.update({"log.file.path": str(path), "log.offset": offset})
        # Name, inode and offset identify the line; its content tells a truncated file's new line at the
        # same offset apart from the old one it must not overwrite.
        key = f"{path.name}\0{inode}\0{offset}\0".encode() + line
        return {
            "_index": f"{self.index_prefix}-{service}-{_timestamp(doc):%Y.%m.%d}",
            "_id": hashlib.blake2b(key, digest_size=16).hexdigest(),
            "_source": doc,
            "_service": service,  # these two are popped before sending: for the counter and a fallback
            "_raw": raw,
        }

    def _bulk(self, actions: list[dict[str, Any]]) -> None:
        origin = {a["_id"]: (a.pop("_raw"), a.pop("_service")) for a in actions}  # for _unparsed()
        _, errors = bulk(self.es, actions, raise_on_error=False, chunk_size=self.batch_size)
        failed = [item.get("index", {}) for item in errors] if isinstance(errors, list) else []
        if any(f.get("status", 500) == 429 or f.get("status", 500) >= 500 for f in failed):
            raise _RetryableBulkError(f"{len(failed)}/{len(actions)} refused, e.g. {failed[0].get('error')}")
        if failed:
            # A document ES will never accept (e.g. a field whose type clashes with the mapping) is
            # indexed as unparsed text instead, so one odd line cannot block its file forever.
            log.warning(
                "re-indexing %d rejected docs as unparsed, e.g. %s", len(failed), failed[0].get("error")
            )
            retry = [
                {"_index": f["_index"], "_id": f["_id"], "_source": _unparsed(*origin[f["_id"]])}
                for f in failed
            ]
            _, errors = bulk(self.es, retry, raise_on_error=False)
            if errors:
                raise _RetryableBulkError(f"rejected documents refused again, e.g. {errors}")
        for service, count in collections.Counter(service for _, service in origin.values()).items():
            self._shipped.labels(service=service).inc(count)

    def _ship_file(self, path: Path) -> int:
        key = str(path.resolve())
        st = path.stat()
        offset = self._start_offset(key, st)
        shipped = 0
        with path.open("rb") as f:
            f.seek(offset)
            while True:
                actions: list[dict[str, Any]] = []
                pos, complete = offset, True
                while len(actions) < self.batch_size:
                    line = f.readline()
                    if not line.endswith(b"\n"):  # EOF, or a line still being written: next round
                        complete = False
                        break
                    actions.append(self._action(path, st.st_ino, pos, line))
                    pos += len(line)
                if actions:
                    self._bulk(actions)
                    # Only now, after Elasticsearch confirmed every document, may the offset move.
                    offset, shipped = pos, shipped + len(actions)
                # Also records a rotation seen with nothing new to ship yet, so a truncated file that grows
                # past its old offset before the next line arrives is not mistaken for the old one.
                state = {"inode": st.st_ino, "offset": offset}
                if self._offsets.get(key) != state:
                    self._offsets[key] = state
                    self._save_registry()
                if not complete:
                    return shipped

    def _files(self) -> list[Path]:
        return sorted(p for p in self.log_dir.glob("*.log") if p.is_file())

    def _update_lag(self) -> None:
        lag: dict[str, int] = {}
        for path in self._files():
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            service = _index_safe(_service_from_file(path))
            lag[service] = lag.get(service, 0) + st.st_size - self._start_offset(str(path.resolve()), st)
        for service, value in lag.items():
            self._lag.labels(service=service).set(value)

    def ship_once(self) -> int:
        """Ship every complete new line of every file; return how many documents were indexed."""
        shipped = 0
        try:
            self._ensure_template()
            for path in self._files():
                try:
                    shipped += self._ship_file(path)
                except FileNotFoundError:  # removed between listing and opening: nothing left to read
                    continue
        except (ApiError, TransportError, _RetryableBulkError) as exc:
            # Offsets stay where they are; the next round picks up from there.
            self._failures.inc()
            log.warning("shipping logs to Elasticsearch failed, will retry: %s", exc)
        finally:
            self._update_lag()
        return shipped

    def run(self, stop_event: threading.Event, interval: float = 1.0) -> None:
        while not stop_event.is_set():
            try:
                self.ship_once()
            except Exception:  # a shipper that dies silently loses logs; keep going and say why
                log.exception("log shipping round failed")
            stop_event.wait(interval)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Ship marketplace ECS JSON logs into Elasticsearch.")
    parser.add_argument("--log-dir", type=Path, required=True)
    parser.add_argument("--es-url", default="http://127.0.0.1:9200")
    parser.add_argument("--registry-file", type=Path, required=True)
    parser.add_argument("--index-prefix", default="logs-marketplace")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus metrics (0: off)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    registry = CollectorRegistry()
    if args.metrics_port:
        start_http_server(args.metrics_port, addr="127.0.0.1", registry=registry)
    shipper = LogShipper(
        args.log_dir,
        Elasticsearch(args.es_url),
        registry_path=args.registry_file,
        index_prefix=args.index_prefix,
        batch_size=args.batch_size,
        registry=registry,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    shipper.run(stop, args.interval)


if __name__ == "__main__":
    main()
