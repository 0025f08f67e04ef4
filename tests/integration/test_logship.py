"""The log shipper against the real Elasticsearch: lines written by ecs-logging end up searchable, once."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ecs_logging
import pytest
from elasticsearch import Elasticsearch
from prometheus_client import CollectorRegistry

from vigil.demo_marketplace.logship import LogShipper
from vigil.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture
def es(stack: Stack) -> Iterator[Elasticsearch]:
    client = Elasticsearch(stack.settings.elasticsearch_url)
    yield client
    client.close()


@pytest.fixture
def prefix(es: Elasticsearch) -> Iterator[str]:
    """A per-test index prefix outside `logs-marketplace-*`, so the demo's searches never see test data."""
    name = f"logship-test-{uuid.uuid4().hex[:10]}"
    yield name
    # Wildcard deletes are refused by default (action.destructive_requires_name), so name each index.
    indices = list(es.indices.get(index=f"{name}-*"))
    if indices:
        es.indices.delete(index=",".join(indices))
    es.options(ignore_status=404).indices.delete_index_template(name=name)


@pytest.fixture
def ecs_logger(tmp_path: Path) -> Iterator[Callable[[str, str], logging.Logger]]:
    """A stdlib logger writing real ecs-logging JSON lines to ``tmp_path/<file>``, as the services do."""
    handlers: list[logging.Handler] = []

    def make(file_name: str, service: str) -> logging.Logger:
        def add_service(record: logging.LogRecord) -> bool:
            setattr(record, "service.name", service)  # dotted attributes become nested ECS fields
            return True

        handler = logging.FileHandler(tmp_path / file_name)
        handler.setFormatter(ecs_logging.StdlibFormatter(exclude_fields=["process", "log.origin"]))
        handler.addFilter(add_service)
        handlers.append(handler)
        logger = logging.getLogger(f"logship-test.{uuid.uuid4().hex}")
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        return logger

    yield make
    for handler in handlers:
        handler.close()


def shipper(tmp_path: Path, es: Elasticsearch, prefix: str, **kwargs: Any) -> LogShipper:
    return LogShipper(
        tmp_path, es, registry_path=tmp_path / "state" / "registry.json", index_prefix=prefix, **kwargs
    )


def hits(es: Elasticsearch, prefix: str, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Documents of every index under ``prefix``, in file order."""
    es.indices.refresh(index=f"{prefix}-*")
    found = es.search(index=f"{prefix}-*", query=query or {"match_all": {}}, size=1000, sort=["log.offset"])
    return list(found["hits"]["hits"])


def count(es: Elasticsearch, index: str, query: dict[str, Any] | None = None) -> int:
    es.indices.refresh(index=index)
    return int(es.count(index=index, query=query or {"match_all": {}})["count"])


def day(line: str) -> str:
    return datetime.fromisoformat(json.loads(line)["@timestamp"]).astimezone(UTC).strftime("%Y.%m.%d")


def test_ecs_lines_land_in_the_daily_service_index_with_searchable_fields(
    tmp_path: Path, es: Elasticsearch, prefix: str, ecs_logger: Callable[[str, str], logging.Logger]
) -> None:
    logger = ecs_logger("catalog-0.log", "catalog")
    logger.info("product %s viewed", "p-42", extra={"http.request.id": "req-1", "labels.order_id": "o-7"})
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        logger.exception("pricing failed", extra={"http.request.id": "req-2"})
    metrics = CollectorRegistry()

    assert shipper(tmp_path, es, prefix, registry=metrics).ship_once() == 2

    first_line = (tmp_path / "catalog-0.log").read_text().splitlines()[0]
    index = f"{prefix}-catalog-{day(first_line)}"
    assert es.indices.exists(index=index)
    properties = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert properties["service"]["properties"]["name"]["type"] == "keyword"
    assert properties["http"]["properties"]["request"]["properties"]["id"]["type"] == "keyword"
    assert count(es, f"{prefix}-*", {"term": {"http.request.id": "req-1"}}) == 1
    assert count(es, f"{prefix}-*", {"term": {"labels.order_id": "o-7"}}) == 1
    assert count(es, f"{prefix}-*", {"match": {"message": "viewed"}}) == 1
    [error] = hits(es, prefix, {"term": {"log.level": "error"}})
    assert error["_source"]["error"]["type"] == "ZeroDivisionError"
    assert count(es, f"{prefix}-*", {"match": {"error.message": "division"}}) == 1
    assert count(es, f"{prefix}-*", {"term": {"service.name": "catalog"}}) == 2
    assert metrics.get_sample_value("logship_documents_shipped_total", {"service": "catalog"}) == 2
    assert metrics.get_sample_value("logship_lag_bytes", {"service": "catalog"}) == 0


def test_index_follows_the_event_timestamp_and_falls_back_to_the_file_name(
    tmp_path: Path, es: Elasticsearch, prefix: str
) -> None:
    lines = [
        {"@timestamp": "2024-03-05T23:59:59.000Z", "log.level": "info", "message": "late"},
        {"@timestamp": "2024-03-06T01:30:00+02:00", "log.level": "info", "message": "utc is still the 5th"},
        {"@timestamp": "2024-03-06T00:00:01.000Z", "log.level": "info", "message": "next day"},
    ]
    (tmp_path / "payment-gateway-1.log").write_text("".join(json.dumps(line) + "\n" for line in lines))

    assert shipper(tmp_path, es, prefix).ship_once() == 3

    assert count(es, f"{prefix}-payment-gateway-2024.03.05") == 2
    assert count(es, f"{prefix}-payment-gateway-2024.03.06") == 1
    assert (
        count(es, f"{prefix}-payment-gateway-2024.03.05", {"term": {"service.name": "payment-gateway"}}) == 2
    )


def test_a_partial_last_line_waits_for_its_newline(tmp_path: Path, es: Elasticsearch, prefix: str) -> None:
    log_file = tmp_path / "cart-0.log"
    done = json.dumps({"@timestamp": "2024-01-01T00:00:00Z", "message": "done", "service.name": "cart"})
    half = json.dumps({"@timestamp": "2024-01-01T00:00:01Z", "message": "written in two parts"})
    log_file.write_text(done + "\n" + half[:20])
    ship = shipper(tmp_path, es, prefix)

    assert ship.ship_once() == 1
    assert ship.ship_once() == 0
    with log_file.open("a") as f:
        f.write(half[20:] + "\n")
    assert ship.ship_once() == 1

    assert [h["_source"]["message"] for h in hits(es, prefix)] == ["done", "written in two parts"]


def test_a_restarted_shipper_ships_only_new_lines_and_a_replay_adds_no_duplicates(
    tmp_path: Path, es: Elasticsearch, prefix: str, ecs_logger: Callable[[str, str], logging.Logger]
) -> None:
    logger = ecs_logger("orders-0.log", "orders")
    for i in range(3):
        logger.info("order %d placed", i)
    assert shipper(tmp_path, es, prefix).ship_once() == 3
    registry_file = tmp_path / "state" / "registry.json"
    before = registry_file.read_bytes()

    restarted = shipper(tmp_path, es, prefix)
    assert restarted.ship_once() == 0
    logger.info("order 3 placed")
    logger.info("order 4 placed")
    assert restarted.ship_once() == 2
    assert count(es, f"{prefix}-*") == 5

    # A crash after the bulk but before the registry write: the next shipper re-sends the last two lines,
    # which overwrite their own documents instead of adding copies.
    registry_file.write_bytes(before)
    assert shipper(tmp_path, es, prefix).ship_once() == 2
    assert count(es, f"{prefix}-*") == 5
    assert sorted(h["_source"]["message"] for h in hits(es, prefix)) == [
        f"order {i} placed" for i in range(5)
    ]


def test_truncated_and_replaced_files_are_read_again_from_the_start(
    tmp_path: Path, es: Elasticsearch, prefix: str, ecs_logger: Callable[[str, str], logging.Logger]
) -> None:
    logger = ecs_logger("warehouse-0.log", "warehouse")
    for i in range(3):
        logger.info("reserved stock for order %d", i)
    ship = shipper(tmp_path, es, prefix)
    assert ship.ship_once() == 3

    # copytruncate-style rotation: same inode, smaller size; the new line at offset 0 is a new document.
    log_file = tmp_path / "warehouse-0.log"
    log_file.write_bytes(b"")
    logger.info("after truncate")
    assert ship.ship_once() == 1
    assert count(es, f"{prefix}-*") == 4

    # rename-style rotation: a new file (new inode) under the old name.
    log_file.rename(tmp_path / "warehouse-0.log.1")
    fresh = ecs_logger("warehouse-0.log", "warehouse")
    fresh.info("new file one")
    fresh.info("new file two")
    assert ship.ship_once() == 2
    assert count(es, f"{prefix}-*") == 6
    assert count(es, f"{prefix}-*", {"match_phrase": {"message": "after truncate"}}) == 1


def test_a_line_that_is_not_json_is_kept_with_a_tag(tmp_path: Path, es: Elasticsearch, prefix: str) -> None:
    (tmp_path / "recommendations-0.log").write_text('Traceback (most recent call last): {"oops"\n[1, 2]\n')

    assert shipper(tmp_path, es, prefix).ship_once() == 2

    unparsed = hits(es, prefix, {"term": {"tags": "unparsed"}})
    assert [h["_source"]["message"] for h in unparsed] == [
        'Traceback (most recent call last): {"oops"',
        "[1, 2]",
    ]
    assert count(es, f"{prefix}-*", {"term": {"log.level": "unknown"}}) == 2
    assert count(es, f"{prefix}-*", {"term": {"service.name": "recommendations"}}) == 2


def test_a_document_the_mapping_rejects_is_kept_as_unparsed(
    tmp_path: Path, es: Elasticsearch, prefix: str
) -> None:
    # labels.order_id is a keyword in the template; an object there is refused with a mapping error.
    bad = {"@timestamp": "2024-01-01T00:00:00Z", "message": "odd", "labels": {"order_id": {"id": 1}}}
    (tmp_path / "orders-0.log").write_text(json.dumps(bad) + "\n")

    assert shipper(tmp_path, es, prefix).ship_once() == 1

    [doc] = hits(es, prefix)
    assert doc["_source"]["tags"] == ["unparsed"]
    assert json.loads(doc["_source"]["message"]) == bad


def test_elasticsearch_down_keeps_offsets_and_a_later_round_catches_up(
    tmp_path: Path, es: Elasticsearch, prefix: str, ecs_logger: Callable[[str, str], logging.Logger]
) -> None:
    logger = ecs_logger("payments-0.log", "payments")
    for i in range(4):
        logger.warning("charge %d declined", i)
    registry_file = tmp_path / "state" / "registry.json"
    down = Elasticsearch("http://127.0.0.1:1", max_retries=0)
    metrics = CollectorRegistry()

    assert shipper(tmp_path, down, prefix, registry=metrics).ship_once() == 0
    assert not registry_file.exists()
    assert metrics.get_sample_value("logship_bulk_failures_total") == 1
    size = (tmp_path / "payments-0.log").stat().st_size
    assert metrics.get_sample_value("logship_lag_bytes", {"service": "payments"}) == size
    down.close()

    assert shipper(tmp_path, es, prefix).ship_once() == 4
    assert count(es, f"{prefix}-*") == 4
    [state] = json.loads(registry_file.read_text()).values()
    assert state == {"inode": os.stat(tmp_path / "payments-0.log").st_ino, "offset": size}


@pytest.mark.slow
def test_the_command_line_ships_until_sigterm(
    tmp_path: Path,
    stack: Stack,
    es: Elasticsearch,
    prefix: str,
    ecs_logger: Callable[[str, str], logging.Logger],
) -> None:
    ecs_logger("gateway-0.log", "gateway").info("hello from the gateway")
    command = [sys.executable, "-m", "vigil.demo_marketplace.logship", "--log-dir", str(tmp_path)]
    command += ["--es-url", stack.settings.elasticsearch_url, "--index-prefix", prefix, "--interval", "0.2"]
    command += ["--registry-file", str(tmp_path / "registry.json")]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60  # start-up and a refresh; room for a busy machine
        while time.monotonic() < deadline and not count(es, f"{prefix}-*"):
            time.sleep(0.2)
        assert count(es, f"{prefix}-*") == 1
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
