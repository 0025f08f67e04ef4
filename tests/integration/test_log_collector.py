"""The log collector against the real Elasticsearch: exact counts per closed window, however it is paged."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk

from vigil.collectors.log_templates import LogTemplates
from vigil.collectors.logs import LogCollector
from vigil.collectors.model import Collection, SeriesKey, labels_of
from vigil.stack import Stack

pytestmark = pytest.mark.integration

BASE = datetime(2026, 11, 24, 10, 0, tzinfo=UTC).timestamp()  # a multiple of the 60 s window
# The shipper's explicit types (demo_marketplace/logship.py), so test indices look like the real ones.
MAPPINGS = {
    "properties": {
        "@timestamp": {"type": "date"},
        "message": {"type": "text"},
        "error.message": {"type": "text"},
        "log.level": {"type": "keyword"},
        "service.name": {"type": "keyword"},
        "labels.order_id": {"type": "keyword"},
        "error.type": {"type": "keyword"},
    }
}


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def es(stack: Stack) -> Iterator[Elasticsearch]:
    client = Elasticsearch(stack.settings.elasticsearch_url, request_timeout=30)
    yield client
    client.close()


@pytest.fixture
def prefix(es: Elasticsearch) -> Iterator[str]:
    """A per-test index prefix outside `logs-marketplace-*`, so the demo's collectors never see test data."""
    name = f"logs-vigiltest-{uuid.uuid4().hex[:10]}"
    yield name
    delete_indices(es, name)


def delete_indices(es: Elasticsearch, prefix: str) -> None:
    # Wildcard deletes are refused by default (action.destructive_requires_name), so name each index.
    indices = list(es.indices.get(index=f"{prefix}-*"))
    if indices:
        es.indices.delete(index=",".join(indices))


def doc(service: str, at: float, message: str, level: str = "info", **extra: Any) -> dict[str, Any]:
    """A document shaped like the shipper's: flat ``log.level``, nested ``service.name``."""
    stamp = datetime.fromtimestamp(BASE + at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "@timestamp": stamp,
        "log.level": level,
        "message": message,
        "service": {"name": service},
        **extra,
    }


def index_docs(es: Elasticsearch, prefix: str, docs: list[dict[str, Any]]) -> None:
    actions = []
    for source in docs:
        day = datetime.fromisoformat(source["@timestamp"]).strftime("%Y.%m.%d")
        name = f"{prefix}-{source['service']['name']}-{day}"
        if not es.indices.exists(index=name):
            es.indices.create(index=name, mappings=MAPPINGS, settings={"number_of_replicas": 0})
        actions.append({"_index": name, "_source": source})
    bulk(es, actions)
    es.indices.refresh(index=f"{prefix}-*")  # searchable now, not after the next periodic refresh


def values(collection: Collection, signal: str, **labels: str) -> dict[float, float]:
    """One series as {seconds after BASE: value}."""
    points = collection.series.get(SeriesKey(signal, labels_of(labels)), [])
    return {point.timestamp - BASE: point.value for point in points}


def template_id(templates: LogTemplates, text: str) -> str:
    matches = [tid for tid, template in templates.templates().items() if template == text]
    assert len(matches) == 1, templates.templates()
    return matches[0]


def collector(es: Elasticsearch, prefix: str, clock: FakeClock, **kwargs: Any) -> LogCollector:
    return LogCollector("logs", es, index=f"{prefix}-*", clock=clock, **kwargs)


def unreachable() -> Elasticsearch:
    return Elasticsearch("http://127.0.0.1:1", request_timeout=1, max_retries=0, retry_on_timeout=False)


def test_counts_lines_errors_and_templates_per_service_and_window(es: Elasticsearch, prefix: str) -> None:
    oid = "6f80c8fa-9c75-4f45-8b12-c8f4e43c9eee"
    index_docs(
        es,
        prefix,
        [
            *(doc("catalog", 1 + i, f"product {i} served in {10 + i}ms") for i in range(3)),
            doc("catalog", 30, "cache read failed, using the database", "warning"),
            doc("catalog", 60.0, "product 5 served in 3ms"),  # exactly on a boundary: the later window
            doc("catalog", 150, "cache read failed, using the database", "warning"),
            doc("catalog", 151, "cache read failed, using the database", "warning"),
            doc("catalog", 152, "query timed out after 5.0s", "error", error={"type": "TimeoutError"}),
            doc("orders", 2, f"order {oid} placed", labels={"order_id": oid}),
            doc("orders", 3, "order 47590a32-e616-4d7d-81b0-a68ca8c08e75 placed"),
            doc("orders", 4, "request failed", "error", error={"message": "boom", "type": "RuntimeError"}),
            doc("orders", 59.999, "lost connection to 10.0.0.5:5432", "CRITICAL"),
            doc("orders", -1, "order 1 placed"),  # before the first window
            doc("orders", 601, "order 2 placed"),  # after the last closed window
        ],
    )
    clock = FakeClock(BASE + 600 + 6)  # the window ending at BASE + 600 closed more than `settle` ago
    logs = collector(es, prefix, clock)
    result = logs.collect()

    assert result.up, result.error
    assert result.error is None
    ends = [60.0 * k for k in range(1, 11)]
    zeros = dict.fromkeys(ends, 0.0)
    assert values(result, "log_lines", service="catalog") == {**zeros, 60: 4, 120: 1, 180: 3}
    assert values(result, "log_errors", service="catalog") == {**zeros, 180: 1}
    # A silent service keeps reporting zeros: that it stopped logging is a signal.
    assert values(result, "log_lines", service="orders") == {**zeros, 60: 4}
    assert values(result, "log_errors", service="orders") == {**zeros, 60: 2}  # "CRITICAL" counts too

    served = template_id(logs.templates, "product <NUM> served in <DURATION>")
    cache = template_id(logs.templates, "cache read failed, using the database")
    placed = template_id(logs.templates, "order <UUID> placed")
    lost = template_id(logs.templates, "lost connection to <IP>")
    assert len({served, cache, placed, lost}) == 4
    assert values(result, "log_template_lines", service="catalog", template_id=served) == {
        **zeros,
        60: 3,
        120: 1,
    }
    assert values(result, "log_template_lines", service="catalog", template_id=cache) == {
        **zeros,
        60: 1,
        180: 2,
    }
    assert values(result, "log_template_lines", service="orders", template_id=placed) == {**zeros, 60: 2}
    assert values(result, "log_template_lines", service="orders", template_id=lost) == {**zeros, 60: 1}
    assert {key.label_dict()["service"] for key in result.series} == {"catalog", "orders"}
    assert logs.templates.template(served) == "product <NUM> served in <DURATION>"


def test_pagination_is_exact_across_page_boundaries_and_equal_timestamps(
    es: Elasticsearch, prefix: str
) -> None:
    # 2,500, exactly 1,000 and 1,001 documents: pages of 1,000 end inside, on and just before a window's
    # end. Only 7 distinct milliseconds per window, so page boundaries fall between equal timestamps
    # and only the _shard_doc tie-breaker keeps lines from being skipped or read twice.
    docs = []
    for window, count in enumerate([2500, 1000, 1001]):
        for i in range(count):
            service = "catalog" if i % 2 else "warehouse"
            level = "error" if i % 10 == 0 else "info"
            docs.append(doc(service, 60 * window + 5 + (i % 7) / 1000, f"item {i} reserved", level))
    index_docs(es, prefix, docs)
    clock = FakeClock(BASE + 180 + 5)
    result = collector(es, prefix, clock, page_size=1000, initial_lookback=180).collect()

    assert result.up, result.error
    assert values(result, "log_lines", service="catalog") == {60: 1250, 120: 500, 180: 500}
    assert values(result, "log_lines", service="warehouse") == {60: 1250, 120: 500, 180: 501}
    assert values(result, "log_errors", service="warehouse") == {60: 250, 120: 100, 180: 101}
    assert values(result, "log_errors", service="catalog") == {60: 0, 120: 0, 180: 0}
    template_series = {k: v for k, v in result.series.items() if k.signal == "log_template_lines"}
    assert sum(p.value for points in template_series.values() for p in points) == 2500 + 1000 + 1001


def test_second_round_reads_only_new_windows(es: Elasticsearch, prefix: str) -> None:
    index_docs(es, prefix, [doc("cart", 10, "cart 1 updated"), doc("cart", 70, "cart 2 updated")])
    clock = FakeClock(BASE + 180 + 6)
    logs = collector(es, prefix, clock, initial_lookback=180)
    first = logs.collect()
    assert values(first, "log_lines", service="cart") == {60: 1, 120: 1, 180: 0}

    assert logs.collect().samples == 0  # nothing closed since

    index_docs(es, prefix, [doc("cart", 200, "cart 3 updated"), doc("cart", 250, "cart 4 updated")])
    index_docs(es, prefix, [doc("cart", 260, "cart 5 updated"), doc("cart", 301, "cart 6 updated")])
    clock.now = BASE + 300 + 4  # the window ending at 300 closed less than `settle` (5 s) ago
    second = logs.collect()
    assert second.up, second.error
    assert values(second, "log_lines", service="cart") == {240: 1}

    clock.now = BASE + 300 + 5
    third = logs.collect()
    assert values(third, "log_lines", service="cart") == {300: 2}
    (cart_template,) = {
        k.label_dict()["template_id"] for k in third.series if k.signal == "log_template_lines"
    }
    assert logs.templates.template(cart_template) == "cart <NUM> updated"


def test_catch_up_after_a_long_pause_is_capped(es: Elasticsearch, prefix: str) -> None:
    index_docs(es, prefix, [doc("cart", 10, "cart 1 updated"), doc("cart", 7190, "cart 2 updated")])
    clock = FakeClock(BASE + 60 + 5)
    logs = collector(es, prefix, clock, initial_lookback=60, max_lookback=600)
    assert values(logs.collect(), "log_lines", service="cart") == {60: 1}

    clock.now = BASE + 7200 + 5
    result = logs.collect()
    assert sorted(values(result, "log_lines", service="cart")) == [6600.0 + 60 * k for k in range(1, 11)]
    assert values(result, "log_lines", service="cart")[7200] == 1


def test_missing_indices_are_empty_not_errors(es: Elasticsearch, prefix: str) -> None:
    clock = FakeClock(BASE + 600 + 5)
    for index in (f"{prefix}-nothing-*", f"{prefix}-catalog-2026.11.24"):
        result = LogCollector("logs", es, index=index, clock=clock).collect()
        assert result.up, result.error
        assert result.error is None
        assert result.samples == 0  # no service was ever seen, so there is nothing to report as zero

    index_docs(es, prefix, [doc("catalog", 610, "service started")])
    logs = collector(es, prefix, clock)
    clock.now = BASE + 660 + 5
    # Before its first line a service is unknown: no zeros for the windows before it.
    assert values(logs.collect(), "log_lines", service="catalog") == {660: 1}

    delete_indices(es, prefix)  # e.g. retention removed the index
    clock.now = BASE + 720 + 5
    result = logs.collect()
    assert result.up, result.error
    assert values(result, "log_lines", service="catalog") == {720: 0}
    assert values(result, "log_errors", service="catalog") == {720: 0}


def test_unreachable_elasticsearch_is_reported_and_the_windows_read_later(
    es: Elasticsearch, prefix: str
) -> None:
    index_docs(
        es, prefix, [doc("payments", 30, "order 7 paid"), doc("payments", 90, "charge failed", "error")]
    )
    clock = FakeClock(BASE + 120 + 5)
    logs = LogCollector("logs", unreachable(), index=f"{prefix}-*", clock=clock, initial_lookback=120)

    down = logs.collect()
    assert not down.up
    assert down.error
    assert prefix in down.error
    assert down.samples == 0

    logs.es = es
    back = logs.collect()
    assert back.up, back.error
    assert values(back, "log_lines", service="payments") == {60: 1, 120: 1}
    assert values(back, "log_errors", service="payments") == {60: 0, 120: 1}

    # An outage after the first round: the windows it covered are read once it is over.
    index_docs(es, prefix, [doc("payments", 130, "order 8 paid"), doc("payments", 250, "order 9 paid")])
    logs.es = unreachable()
    clock.now = BASE + 240 + 5
    assert not logs.collect().up
    logs.es = es
    clock.now = BASE + 300 + 5
    caught_up = logs.collect()
    assert caught_up.up, caught_up.error
    assert values(caught_up, "log_lines", service="payments") == {180: 1, 240: 0, 300: 1}


def test_elasticsearch_too_slow_to_answer_is_down(es: Elasticsearch, prefix: str) -> None:
    # A socket that accepts connections (the kernel's backlog) but never answers: a hung Elasticsearch.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        client = Elasticsearch(f"http://127.0.0.1:{hung.getsockname()[1]}", max_retries=0)
        clock = FakeClock(BASE + 60 + 5)
        logs = LogCollector(
            "logs", client, index=f"{prefix}-*", clock=clock, initial_lookback=60, request_timeout=0.5
        )
        result = logs.collect()
    assert not result.up
    assert result.error
    assert "Timeout" in result.error
    assert logs.next_start is None  # nothing was marked processed
