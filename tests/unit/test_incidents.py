"""Incidents: storms become one incident, unrelated services their own; lifecycle; likely cause."""

from __future__ import annotations

from vigil.alerts.incidents import IncidentTracker, rank_suspects, reachable
from vigil.alerts.model import PAGE, TICKET, Alert
from vigil.demo_marketplace.catalog import SYSTEM
from vigil.runtime.alerting import holdings

DEPS = SYSTEM.dependencies()  # the demo marketplace's: who calls whom, whose tables, which components
HOLDINGS = holdings(SYSTEM)  # catalog's products and stock tables, orders' orders table, in PostgreSQL


def alert(service: str, signal: str, at: float, severity: str = TICKET, **labels: str) -> Alert:
    base = {"alertname": "VigilAnomaly", "signal": signal, "severity": severity, **labels}
    if service:
        base["service"] = service
    return Alert(base, starts_at=at)


def catalog_outage(start: float = 1000.0) -> list[Alert]:
    """20 alerts of one outage: catalog's database slows down, and everyone calling it suffers."""
    routes = ["/products", "/products/{product_id}", "/search"]
    alerts = [alert("catalog", "db_p99_seconds", start + 15, PAGE)]
    alerts += [alert("catalog", "http_p99_latency_seconds", start + 30, route=r) for r in routes]
    alerts += [
        alert("catalog", s, start + 45) for s in ("http_error_ratio", "service_red", "cache_hit_ratio")
    ]
    gateway_routes = ["/api/products", "/api/products/{product_id}", "/api/search", "/api/cart/{cart_id}"]
    alerts += [alert("gateway", "http_p99_latency_seconds", start, route=r) for r in gateway_routes]
    alerts += [
        alert("gateway", s, start + 60) for s in ("http_error_ratio", "http_request_rate", "service_red")
    ]
    alerts += [alert("cart", "http_p99_latency_seconds", start + 75, route=r) for r in ("/carts/{cart_id}",)]
    alerts += [alert("cart", s, start + 90) for s in ("http_error_ratio", "service_red")]
    alerts += [alert("orders", s, start + 120) for s in ("http_error_ratio", "http_p99_latency_seconds")]
    alerts += [alert("gateway", "http_error_budget_burn", start + 150, PAGE)]
    assert len(alerts) == 20
    return alerts


def test_twenty_alerts_of_one_outage_make_one_incident_and_another_service_its_own() -> None:
    tracker = IncidentTracker(grouping_window=120, dependencies=DEPS)
    provider = alert("payment-gateway", "http_p99_latency_seconds", 1100.0, route="/v1/charges")
    incidents = tracker.update([*catalog_outage(), provider], now=1200.0)
    assert len(incidents) == 2
    outage, elsewhere = sorted(incidents, key=lambda i: len(i.alerts), reverse=True)
    assert len(outage.alerts) == 20
    assert set(outage.services) == {"catalog", "gateway", "cart", "orders"}
    assert list(elsewhere.alerts.values()) == [provider]
    assert outage.id != elsewhere.id


def test_services_using_the_catalogs_tables_suffer_with_it_and_point_at_it() -> None:
    """Locks on products and stock slow recommendations' and warehouse's own queries: one incident, and the
    catalog (whose tables they are) is the likely cause, although recommendations' latency fired first."""
    tracker = IncidentTracker(grouping_window=120, dependencies=DEPS)
    alerts = [
        alert("recommendations", "http_p99_latency_seconds", 1000.0, route="/recommendations/{product_id}"),
        alert("warehouse", "db_p99_seconds", 1005.0),
        alert("catalog", "db_p99_seconds", 1010.0),
    ]
    (incident,) = tracker.update(alerts, now=1020.0)
    assert incident.likely_cause == "catalog"
    assert set(incident.services) == {"catalog", "recommendations", "warehouse"}


def test_the_storm_stays_one_incident_when_it_arrives_over_several_evaluations() -> None:
    tracker = IncidentTracker(grouping_window=120, dependencies=DEPS)
    seen: list[Alert] = []
    for a in sorted(catalog_outage(), key=lambda a: a.starts_at):  # the evaluator re-sends all firing alerts
        seen.append(a)
        incidents = tracker.update(seen, now=a.starts_at)
    assert len(incidents) == 1
    assert len(incidents[0].alerts) == 20


def test_the_likely_cause_is_the_callee_even_when_a_caller_fired_first() -> None:
    tracker = IncidentTracker(grouping_window=120, dependencies=DEPS)
    (incident,) = tracker.update(catalog_outage(), now=1200.0)
    assert incident.likely_cause == "catalog"
    ranked = [s.service for s in incident.suspects]
    # From the bottom of the call graph up; Redis, which both catalog and cart use, is named after
    # catalog on the pattern alone (it raised nothing itself).
    assert ranked == ["catalog", "redis", "cart", "orders", "gateway"]
    by_name = {s.service: s for s in incident.suspects}
    assert by_name["catalog"].first_fired_at == 1015.0
    assert by_name["catalog"].affected_dependencies == ()
    assert by_name["gateway"].affected_dependencies == (
        "catalog",
        "cart",
        "orders",
    )  # in the order they fired


def test_among_independent_suspects_the_one_that_fired_first_leads() -> None:
    deps = {"gateway": {"catalog", "recommendations"}}
    alerts = [alert("gateway", "x", 0.0), alert("recommendations", "y", 40.0), alert("catalog", "z", 20.0)]
    assert [s.service for s in rank_suspects(alerts, deps)] == ["catalog", "recommendations", "gateway"]


def test_a_dependency_that_alerts_long_after_a_service_does_not_take_the_blame() -> None:
    # The warehouse consumes what orders publish (it depends on orders). The warehouse stalls: its queue
    # alerts at once; minutes later the backlog's drain slows orders' database. Orders followed.
    deps = {"warehouse": {"orders"}, "orders": set()}
    stall = [alert("warehouse", "queue_depth_messages", 30.0), alert("orders", "db_p99_seconds", 225.0)]
    assert [s.service for s in rank_suspects(stall, deps)] == ["warehouse", "orders"]
    assert rank_suspects(stall, deps)[0].affected_dependencies == ()
    # Within the detection spread, a dependency's later alert still explains the caller's earlier one:
    # the caller's latency window fills before the callee's database signal does.
    close = [alert("warehouse", "queue_depth_messages", 30.0), alert("orders", "db_p99_seconds", 90.0)]
    assert [s.service for s in rank_suspects(close, deps)] == ["orders", "warehouse"]
    assert rank_suspects(stall, deps, spread=300.0)[0].service == "orders"


def test_alerts_keep_the_incident_they_first_joined_when_incidents_merge() -> None:
    # Recommendations and warehouse share no dependency: two incidents, until catalog links them.
    tracker = IncidentTracker(grouping_window=120, dependencies=DEPS)
    recs, warehouse = alert("recommendations", "x", 0.0), alert("warehouse", "y", 10.0)
    first = {i.id: i for i in tracker.update([recs, warehouse], now=20.0)}
    assert len(first) == 2
    labels = {a.fingerprint: i.id for i in first.values() for a in i.alerts.values()}
    catalog = alert("catalog", "z", 30.0)
    (merged,) = tracker.update([recs, warehouse, catalog], now=40.0)
    assert merged.id == labels[recs.fingerprint]  # the oldest takes in the others
    assert merged.label_of(warehouse.fingerprint) == labels[warehouse.fingerprint]  # unchanged label
    assert merged.label_of(catalog.fingerprint) == merged.id
    restored = IncidentTracker(dependencies=DEPS)
    restored.restore(*tracker.state())
    assert (
        restored.by_alert()[warehouse.fingerprint].label_of(warehouse.fingerprint)
        == labels[warehouse.fingerprint]
    )


def cache_outage(start: float = 1000.0, *, exporter_alerts: bool) -> list[Alert]:
    """Redis stops answering: everything that reads the cache or the carts fails, the database is fine."""
    alerts = [
        alert("catalog", "http_error_ratio", start + 10, PAGE),
        alert("cart", "http_error_ratio", start + 12),
    ]
    alerts += [
        alert("gateway", "http_error_ratio", start + 5, PAGE),
        alert("orders", "http_error_ratio", start + 20),
    ]
    if exporter_alerts:  # its exporter stops answering too (vigil's redis_exporter_up signal)
        alerts.append(alert("", "redis_exporter_up", start + 30, PAGE, component="redis"))
    return alerts


def test_a_component_alerting_itself_is_the_likely_cause_of_its_users_failures() -> None:
    tracker = IncidentTracker(grouping_window=120, dependencies=DEPS, holdings=HOLDINGS)
    (incident,) = tracker.update(cache_outage(exporter_alerts=True), now=1100.0)
    assert incident.likely_cause == "redis"
    assert incident.suspects[0].affected_dependencies == ()


def test_a_silent_component_whose_users_degrade_together_is_named_but_not_first() -> None:
    ranked = rank_suspects(cache_outage(exporter_alerts=False), DEPS)
    assert [s.service for s in ranked] == ["catalog", "redis", "cart", "orders", "gateway"]
    assert ranked[1].shared_by == ("catalog", "cart")  # in the order they fired
    # PostgreSQL is used by catalog and orders too, but by three more services that are fine.
    assert "postgresql" not in {s.service for s in ranked}


def test_a_lock_on_one_services_tables_is_that_services_trouble_not_the_databases() -> None:
    # catalog-slow-sql: PostgreSQL reports exclusive locks; catalog and the readers of its tables slow.
    alerts = [alert("catalog", "db_p99_seconds", 36.0), alert("recommendations", "db_p99_seconds", 36.0)]
    alerts += [alert("warehouse", "message_process_p99_seconds", 76.0), alert("gateway", "http_p99", 56.0)]
    alerts.append(alert("", "postgresql_exclusive_locks", 126.0, component="postgresql"))
    ranked = rank_suspects(alerts, DEPS, HOLDINGS)
    assert [s.service for s in ranked][:2] == ["catalog", "postgresql"]
    assert ranked[1].affected_dependencies == ("catalog",)
    # Without the declared tables nothing says whose trouble it is: the database, which alerts itself.
    assert rank_suspects(alerts, DEPS)[0].service == "postgresql"
    # PostgreSQL itself failing: orders, which touches none of catalog's tables, alerts too.
    down = [*alerts, alert("orders", "http_error_ratio", 40.0)]
    assert rank_suspects(down, DEPS, HOLDINGS)[0].service == "postgresql"


def test_one_user_alone_makes_no_component_a_suspect() -> None:
    deps = {"a": {"db"}, "b": {"db"}, "c": {"db"}}
    assert [s.service for s in rank_suspects([alert("a", "x", 0.0)], deps)] == ["a"]
    two = rank_suspects([alert("a", "x", 0.0), alert("b", "x", 1.0)], deps)
    assert [s.service for s in two] == ["a", "b", "db"]  # two of its three users: a suspect
    assert two[2].first_fired_at == 0.0


def test_reachable_follows_calls_transitively_and_survives_cycles() -> None:
    services = {"catalog", "cart", "orders", "recommendations"}
    assert reachable("gateway", DEPS) == services | {
        "postgresql",
        "redis",
        "rabbitmq",
    }  # and their components
    assert reachable("a", {"a": {"b"}, "b": {"a", "c"}}) == {"b", "c"}


def test_related_services_join_only_within_the_sliding_grouping_window() -> None:
    tracker = IncidentTracker(grouping_window=60, dependencies=DEPS)
    first = alert("catalog", "db_p99_seconds", 0.0)
    chain = [first, alert("cart", "http_error_ratio", 50.0), alert("orders", "http_error_ratio", 100.0)]
    assert len(tracker.update(chain, now=100.0)) == 1  # orders joins through cart, 50 s after it
    late = alert("gateway", "http_request_rate", 400.0)
    incidents = tracker.update([*chain, late], now=400.0)
    assert len(incidents) == 2
    assert [a.service for a in incidents[1].alerts.values()] == ["gateway"]


def test_the_same_service_hours_later_is_a_new_problem() -> None:
    tracker = IncidentTracker(grouping_window=300, dependencies=DEPS)
    memory = alert("catalog", "process_memory_bytes", 0.0)
    tracker.update([memory], now=0.0)
    incidents = tracker.update([memory, alert("catalog", "db_p99_seconds", 7200.0)], now=7200.0)
    assert len(incidents) == 2


def test_unrelated_services_are_never_grouped_even_at_the_same_moment() -> None:
    tracker = IncidentTracker(grouping_window=300, dependencies=DEPS)
    incidents = tracker.update([alert("payments", "a", 0.0), alert("catalog", "a", 0.0)], now=0.0)
    assert len(incidents) == 2


def test_lifecycle_severity_headline_and_a_stable_id() -> None:
    tracker = IncidentTracker(dependencies=DEPS)
    db = alert("catalog", "db_p99_seconds", 10.0)
    errors = alert("catalog", "http_error_ratio", 20.0, PAGE)
    (incident,) = tracker.update([errors, db], now=20.0)
    assert (incident.status, incident.opened_at, incident.headline) == ("firing", 10.0, "db_p99_seconds")
    assert incident.severity == PAGE
    (same,) = IncidentTracker(dependencies=DEPS).update([db, errors], now=20.0)
    assert same.id == incident.id  # another process, the same alerts: the same id
    (still,) = tracker.update([db.resolve(30.0), errors], now=30.0)
    assert still.status == "firing"
    (over,) = tracker.update([db.resolve(30.0), errors.resolve(45.0)], now=45.0)
    assert (over.status, over.resolved_at) == ("resolved", 45.0)
    assert tracker.open == []
    assert list(tracker.resolved) == [over]


def test_a_resolved_incident_stays_resolved_and_a_new_firing_opens_a_new_one() -> None:
    tracker = IncidentTracker(dependencies=DEPS)
    db = alert("catalog", "db_p99_seconds", 10.0)
    (first,) = tracker.update([db], now=10.0)
    tracker.update([db.resolve(20.0)], now=20.0)
    assert tracker.update([db.resolve(20.0)], now=35.0) == []  # the resolution re-sent opens nothing
    refired = alert("catalog", "db_p99_seconds", 50.0)
    (second,) = tracker.update([refired], now=50.0)
    assert second.id != first.id
    assert first.status == "resolved"


def test_alerts_without_a_service_group_by_queue_or_signal() -> None:
    tracker = IncidentTracker(dependencies=DEPS)
    queue = alert("", "queue_depth_messages", 0.0, queue="audit.events")
    fulfilment = alert("", "fulfilment_delay_p99_seconds", 0.0)
    incidents = tracker.update([queue, fulfilment], now=0.0)
    assert sorted(i.services[0] for i in incidents) == ["audit.events", "fulfilment_delay_p99_seconds"]
