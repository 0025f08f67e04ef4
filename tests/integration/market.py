"""Reading the marketplace's metrics and driving its API from tests."""

from __future__ import annotations

import random
import threading
import uuid
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from vigil.demo_marketplace.runner import Marketplace


def metric_sum(market: Marketplace, service: str, sample: str, **labels: str) -> float:
    """Sum of ``sample`` over every replica of ``service`` whose labels include ``labels``."""
    total = 0.0
    for replica in market.replica_list(service):
        text = requests.get(f"http://{market.stack.host}:{replica.port}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                    total += s.value
    return total


def api(market: Marketplace, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{market.url('gateway')}{path}", timeout=10, **kwargs)


def checkout(market: Marketplace, product_id: int = 7, quantity: int = 1) -> str:
    """Put a product in a fresh cart and check out; returns the order id."""
    cart = f"test-{uuid.uuid4().hex[:12]}"
    added = api(
        market, "POST", f"/api/cart/{cart}/items", json={"product_id": product_id, "quantity": quantity}
    )
    assert added.status_code == 201, added.text
    placed = api(market, "POST", "/api/checkout", json={"cart_id": cart})
    assert placed.status_code == 201, placed.text
    order_id: str = placed.json()["order_id"]
    return order_id


class Traffic:
    """Light concurrent traffic: product pages, searches that miss the cache, and checkouts.

    Several workers with random pauses, like real users: one sequential loop would fall into
    lock-step with periodic faults (each request released by a lock lands in the next gap).
    """

    def __init__(self, market: Marketplace, workers: int = 4) -> None:
        self.market, self.stop = market, threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]

    def _run(self) -> None:
        rng = random.Random()  # unseeded: searches must miss the cache of earlier runs
        while not self.stop.is_set():
            try:
                action = rng.random()
                if action < 0.45:
                    api(self.market, "GET", f"/api/products/{rng.randint(1, 5000)}")
                elif action < 0.9:
                    api(self.market, "GET", "/api/search", params={"q": f"{rng.randint(10, 99999)}"})
                else:
                    checkout(self.market)
            except (requests.RequestException, AssertionError):
                pass  # some faults make requests fail: that is the point
            self.stop.wait(rng.uniform(0, 0.2))

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()
