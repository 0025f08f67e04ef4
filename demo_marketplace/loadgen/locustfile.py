"""Marketplace storefront load: browsers >> shoppers > buyers, driven by a vigil load shape.

Run through :mod:`vigil.demo_marketplace.loadgen.runner` (or ``locust -f`` this file). Configuration
comes from the environment: ``VIGIL_LOAD_SHAPE`` (steady | diurnal | black_friday),
``VIGIL_LOAD_BASE_USERS``, ``VIGIL_LOAD_DURATION`` (real seconds), ``VIGIL_LOAD_TIME_SCALE`` and
``VIGIL_LOAD_SEED``. Each user draws from its own ``random.Random`` seeded from the base seed and a
user counter, so a run's request mix is repeatable.
"""

from __future__ import annotations

import itertools
import os
import random
from typing import Any

from locust import FastHttpUser, task

from vigil.demo_marketplace.loadgen.shapes import locust_shape, shape_from_env, wait_bounds
from vigil.demo_marketplace.schema import ADJECTIVES, CATEGORIES, NOUNS, PRODUCT_COUNT

SHAPE = shape_from_env()
SEED = int(os.environ.get("VIGIL_LOAD_SEED", "").strip() or "42")
WAIT_LOW, WAIT_HIGH = wait_bounds(SHAPE.time_scale)
SEARCH_TERMS = (*ADJECTIVES, *NOUNS, "gift", "sale", "unicorn")  # the last three find little or nothing
_user_numbers = itertools.count()

VigilShape = locust_shape(SHAPE)


class MarketplaceUser(FastHttpUser):
    abstract = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        worker = getattr(self.environment.runner, "worker_index", 0)
        self.number = worker * 1_000_000 + next(_user_numbers)
        self.rng = random.Random(SEED * 1_000_003 + self.number)
        self.carts = 0

    def wait_time(self) -> float:
        return self.rng.uniform(WAIT_LOW, WAIT_HIGH)

    def product_id(self) -> int:
        # Skewed popularity: low ids are the bestsellers, so caches see a realistic hit ratio.
        return 1 + int(PRODUCT_COUNT * self.rng.random() ** 3)

    def new_cart_id(self) -> str:
        self.carts += 1
        return f"load-{SEED}-{self.number}-{self.carts}"

    def browse(self) -> None:
        category = self.rng.choice(CATEGORIES)
        page = 1 + int(5 * self.rng.random() ** 2)
        self.client.get(f"/api/products?category={category}&page={page}", name="/api/products")

    def search(self) -> None:
        term = self.rng.choice(SEARCH_TERMS)
        self.client.get(f"/api/search?q={term.replace(' ', '+')}", name="/api/search")

    def view_product(self, product_id: int | None = None) -> int:
        product_id = product_id or self.product_id()
        self.client.get(f"/api/products/{product_id}", name="/api/products/{product_id}")
        return product_id

    def add_to_cart(self, cart_id: str, product_id: int) -> None:
        self.client.post(
            f"/api/cart/{cart_id}/items",
            json={"product_id": product_id, "quantity": self.rng.randint(1, 3)},
            name="/api/cart/{cart_id}/items",
        )

    def view_cart(self, cart_id: str) -> None:
        self.client.get(f"/api/cart/{cart_id}", name="/api/cart/{cart_id}")


class Browser(MarketplaceUser):
    """Looks around: category pages, searches and product pages."""

    weight = 70

    @task(4)
    def list_products(self) -> None:
        self.browse()

    @task(2)
    def search_products(self) -> None:
        self.search()

    @task(4)
    def product_page(self) -> None:
        self.view_product()


class Shopper(MarketplaceUser):
    """Browses, puts something in a cart and looks at the cart, but does not buy."""

    weight = 22

    @task
    def shop(self) -> None:
        self.browse()
        self.wait()
        product_id = self.view_product()
        self.wait()
        cart_id = self.new_cart_id()
        self.add_to_cart(cart_id, product_id)
        self.view_cart(cart_id)


class Buyer(MarketplaceUser):
    """Adds one to three products to a cart, checks out and polls the order once."""

    weight = 8

    @task
    def buy(self) -> None:
        cart_id = self.new_cart_id()
        for _ in range(self.rng.randint(1, 3)):
            self.add_to_cart(cart_id, self.view_product())
            self.wait()
        order_id = self.checkout(cart_id)
        if order_id:
            self.wait()
            self.client.get(f"/api/orders/{order_id}", name="/api/orders/{order_id}")

    def checkout(self, cart_id: str) -> str | None:
        with self.client.post(
            "/api/checkout", json={"cart_id": cart_id}, name="/api/checkout", catch_response=True
        ) as response:
            if response.status_code != 201:
                response.failure(f"checkout returned {response.status_code}")
                return None
            try:
                order_id = (response.json() or {}).get("order_id")
            except ValueError:
                order_id = None
            if not isinstance(order_id, str) or not order_id:
                response.failure("checkout response has no order_id")
                return None
            response.success()
            return order_id
