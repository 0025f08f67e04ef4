"""The marketplace's service catalog: the one source of truth for what runs where.

The local runner, HAProxy, Prometheus targets, deployment files and dashboards are all
generated from this list, so adding a service here is all it takes to run, scrape and chart it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Queue:
    """A durable RabbitMQ queue bound to the ``orders`` topic exchange."""

    name: str
    routing_key: str
    consumer: str  # the service that consumes it


@dataclass(frozen=True)
class Service:
    name: str
    port: int  # the load-balanced address on 127.0.0.1 (and the container port)
    description: str
    uses: tuple[str, ...] = ()  # backing services: postgresql, redis, rabbitmq
    calls: tuple[str, ...] = ()  # other marketplace services it calls over HTTP
    # Services whose PostgreSQL tables it reads or writes itself: their locks and slow queries reach it.
    shares_tables_of: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()  # queue names
    publishes: tuple[str, ...] = ()  # routing keys it publishes to the ``orders`` exchange
    caches: tuple[str, ...] = ()  # cache-aside caches in Redis (the ``cache`` label of cache_requests_total)
    external: bool = False  # a simulated third party, not one of the marketplace's own services
    default_replicas: int = 1
    routes: tuple[str, ...] = field(default=())  # route templates, as they appear in metric labels

    def replica_port(self, index: int) -> int:
        """Where replica ``index`` (0-based) listens; HAProxy balances ``port`` over these."""
        return 20000 + (self.port - 8000) * 100 + index


EXCHANGE = "orders"
DEAD_LETTER_EXCHANGE = "orders.dlx"

QUEUES: tuple[Queue, ...] = (
    Queue("payments.order-placed", "order.placed", consumer="payments"),
    Queue("warehouse.order-paid", "order.paid", consumer="warehouse"),
)

SERVICES: tuple[Service, ...] = (
    Service(
        "gateway",
        8000,
        "storefront API: the entry point for users",
        calls=("catalog", "cart", "orders", "recommendations"),
        routes=(
            "/api/products",
            "/api/products/{product_id}",
            "/api/search",
            "/api/cart/{cart_id}",
            "/api/cart/{cart_id}/items",
            "/api/checkout",
            "/api/orders/{order_id}",
        ),
        default_replicas=2,
    ),
    Service(
        "catalog",
        8001,
        "products and search on PostgreSQL with a Redis cache-aside layer",
        uses=("postgresql", "redis"),
        caches=("product_list", "product", "search"),
        routes=("/products", "/products/{product_id}", "/search"),
        default_replicas=2,
    ),
    Service(
        "cart",
        8002,
        "shopping carts in Redis",
        uses=("redis",),
        calls=("catalog",),
        routes=("/carts/{cart_id}", "/carts/{cart_id}/items"),
    ),
    Service(
        "orders",
        8003,
        "checkout: writes the order and publishes order.placed",
        uses=("postgresql", "rabbitmq"),
        calls=("cart",),
        publishes=("order.placed",),
        routes=("/orders", "/orders/{order_id}"),
    ),
    Service(
        "payments",
        8004,
        "charges orders through the external payment gateway, publishes order.paid",
        uses=("postgresql", "rabbitmq"),
        calls=("payment-gateway",),
        shares_tables_of=("orders",),  # marks orders paid
        consumes=("payments.order-placed",),
        publishes=("order.paid",),
    ),
    Service(
        "warehouse",
        8005,
        "reserves stock for paid orders and fulfils them",
        uses=("postgresql", "rabbitmq"),
        shares_tables_of=("catalog", "orders"),  # takes stock, marks orders fulfilled
        consumes=("warehouse.order-paid",),
    ),
    Service(
        "recommendations",
        8006,
        "products bought together",
        uses=("postgresql",),
        shares_tables_of=("catalog",),  # joins the products table
        routes=("/recommendations/{product_id}",),
    ),
    Service(
        "payment-gateway",
        8009,
        "simulated external payment provider with realistic latency",
        external=True,
        routes=("/v1/charges",),
    ),
)

BY_NAME = {s.name: s for s in SERVICES}


def service(name: str) -> Service:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(BY_NAME)}") from None
