"""The marketplace database: schema and deterministic seed data (run once before the services start)."""

from __future__ import annotations

import random

import psycopg

CATEGORIES = ("books", "electronics", "home", "toys", "garden", "sports", "fashion", "beauty")
PRODUCT_COUNT = 5000
ADJECTIVES = (
    "classic",
    "compact",
    "deluxe",
    "eco",
    "smart",
    "vintage",
    "rugged",
    "premium",
    "travel",
    "mini",
)
NOUNS = (
    "lamp",
    "kettle",
    "backpack",
    "novel",
    "drone",
    "puzzle",
    "planter",
    "racket",
    "jacket",
    "serum",
    "speaker",
    "mug",
    "blanket",
    "helmet",
    "notebook",
    "headphones",
    "board game",
    "trowel",
    "scarf",
    "brush",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id integer PRIMARY KEY, sku text UNIQUE NOT NULL, name text NOT NULL, category text NOT NULL,
    price_cents integer NOT NULL CHECK (price_cents > 0), description text NOT NULL
);
CREATE INDEX IF NOT EXISTS products_by_category ON products (category, id);
CREATE TABLE IF NOT EXISTS stock (
    product_id integer PRIMARY KEY REFERENCES products,
    available integer NOT NULL, reserved integer NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS co_purchases (
    product_id integer REFERENCES products, other_id integer REFERENCES products, weight integer NOT NULL,
    PRIMARY KEY (product_id, other_id)
);
CREATE TABLE IF NOT EXISTS orders (
    id uuid PRIMARY KEY, cart_id text NOT NULL, items jsonb NOT NULL, total_cents integer NOT NULL,
    status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
    paid_at timestamptz, fulfilled_at timestamptz
);
CREATE INDEX IF NOT EXISTS orders_by_status ON orders (status);
-- A client's key for one checkout: its retries find the order instead of placing another.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS idempotency_key text;
CREATE UNIQUE INDEX IF NOT EXISTS orders_by_idempotency_key ON orders (idempotency_key);
-- The transactional outbox: messages committed with the change they announce, until confirmed.
CREATE TABLE IF NOT EXISTS outbox (
    id bigserial PRIMARY KEY, message_id text NOT NULL, routing_key text NOT NULL, body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS outbox_by_message ON outbox (message_id);
-- One row per order: the primary key is what makes charging idempotent.
CREATE TABLE IF NOT EXISTS payments (
    order_id uuid PRIMARY KEY REFERENCES orders, amount_cents integer NOT NULL, provider_ref text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS reservations (
    order_id uuid REFERENCES orders, product_id integer REFERENCES products, quantity integer NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
"""


def ensure_database(admin_dsn: str, name: str) -> None:
    """Create database ``name`` through ``admin_dsn`` (any database of the same server) if missing."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def migrate(dsn: str, *, seed: int = 7) -> None:
    """Create the tables and, on an empty database, the products, stock and co-purchase graph."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(4242)")  # replicas starting together migrate once
        conn.execute(SCHEMA)
        if conn.execute("SELECT count(*) FROM products").fetchone() != (0,):
            return
        rng = random.Random(seed)
        products = [
            (
                i,
                f"SKU-{i:05d}",
                f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {i}",
                CATEGORIES[i % len(CATEGORIES)],
                rng.randint(199, 49_999),
                f"A {rng.choice(ADJECTIVES)} choice for every day.",
            )
            for i in range(1, PRODUCT_COUNT + 1)
        ]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO products VALUES (%s, %s, %s, %s, %s, %s)", products)
            cur.executemany(
                "INSERT INTO stock (product_id, available) VALUES (%s, %s)",
                [(i, 1_000_000) for i in range(1, PRODUCT_COUNT + 1)],
            )
            pairs = {
                (i, rng.randint(1, PRODUCT_COUNT)) for i in range(1, PRODUCT_COUNT + 1) for _ in range(6)
            }
            cur.executemany(
                "INSERT INTO co_purchases VALUES (%s, %s, %s)",
                [(a, b, rng.randint(1, 100)) for a, b in sorted(pairs) if a != b],
            )
