"""The infrastructure dashboard: every watched component's health from its exporter, and vigil's view of it.

One row per component with a selector (components without one have no series to draw): whether it answers
its exporter, the health series vigil watches for its kind (``vigil.system.components.HEALTH``), a broker's
queues, and vigil's scores for its signals, which carry the label ``component``.
"""

from __future__ import annotations

from typing import Any

from vigil.dashboards import exporters as x
from vigil.dashboards import panels as p
from vigil.dashboards import promql as q
from vigil.dashboards.common import (
    INFRASTRUCTURE_UID,
    OVERVIEW_UID,
    dashboard,
    dashboard_link,
    datasource_variables,
    incident_annotation,
    query_variable,
    service_uid,
)
from vigil.dashboards.sections import band, open_incidents
from vigil.system import Component, Queue, System

COMPONENT_SIGNALS = 'component!=""'


def _incidents(system: System) -> str:
    # An incident about a component names it where a service would be (vigil_incident_open's `service`).
    return q.selector("vigil_incident_open", q.one_of("service", [c.name for c in x.watched(system)]))


def _summary(system: System) -> p.Section:
    return p.Section(
        "vigil",
        [
            open_incidents(
                _incidents(system), "vigil incidents about a component that are still open.", width=4
            ),
            p.timeseries(
                title="Highest anomaly score by component",
                description="vigil's highest score over each component's health and queue signals: "
                "0-1 normal, above 1 anomalous.",
                unit="none",
                targets=[
                    p.prom(
                        f"max by (component) (vigil_anomaly_score{{{COMPONENT_SIGNALS}}})", "{{component}}"
                    )
                ],
                threshold=1,
                width=20,
            ),
        ],
    )


def _component(system: System, component: Component) -> p.Section:
    health = x.up(component)
    panels = [
        p.stat(
            title=f"{component.name} up",
            description=f"1 while {component.name} answers its exporter ({health.metric}), 0 when down.",
            unit="none",
            targets=[p.prom(x.health_expr(component, health), "up")],
            thresholds=(("red", None), ("green", 1)),
            height=8,
        ),
        p.timeseries(
            title=f"{component.name}: anomaly score by signal",
            description=f"vigil's score per signal of {component.name}: 0-1 normal, above 1 anomalous.",
            unit="none",
            targets=[
                p.prom(
                    f"max by (signal) ({q.selector('vigil_anomaly_score', {'component': component.name})})",
                    "{{signal}}",
                )
            ],
            threshold=1,
            width=20,
        ),
    ]
    for other in x.HEALTH[component.kind]:
        if other is not health:
            panels.append(
                p.timeseries(
                    title=x.health_title(component, other),
                    description=x.health_description(component, other),
                    unit=x.health_unit(other),
                    targets=[p.prom(x.health_expr(component, other), x.health_words(other))],
                )
            )
    held = [queue for queue in system.queues if queue.component == component.name]
    if component.kind == "rabbitmq" and held:
        panels += _queues(component, held)
    users = system.users_of(component.name)
    about = f" used by {', '.join(users)}" if users else ""
    return p.Section(f"{component.name} ({component.kind}){about}", panels)


def _queues(broker: Component, queues: list[Queue]) -> list[p.Sized]:
    depth = x.queue_series(x.QUEUE_MESSAGES, broker, queues)
    consumers = x.queue_series(x.QUEUE_CONSUMERS, broker, queues)
    return [
        p.timeseries(
            title=f"{broker.name}: queue depth",
            description="Messages ready or unacknowledged per queue: a growing backlog means its "
            "consumers are not keeping up.",
            unit="short",
            targets=[p.prom(f"sum by (queue) ({depth})", "{{queue}}")],
            width=12,
        ),
        p.timeseries(
            title=f"{broker.name}: consumers per queue",
            description="Consumers attached to each queue: zero means nothing processes it.",
            unit="short",
            targets=[p.prom(f"sum by (queue) ({consumers})", "{{queue}}")],
            width=12,
        ),
    ]


def infrastructure_dashboard(system: System) -> dict[str, Any]:
    components = x.watched(system)
    if not components:
        raise ValueError(f"{system.name}: no component has a selector, so there is no infrastructure to show")
    users = sorted({name for c in components for name in system.users_of(c.name)})
    signals = query_variable(
        "signal", f"vigil_expected{{{COMPONENT_SIGNALS}}}", "signal", label="Component signal"
    )
    bands = band("signal", f'{COMPONENT_SIGNALS}, signal="$signal"', "{{component}} {{queue}}")
    return dashboard(
        uid=INFRASTRUCTURE_UID,
        title=f"{system.name} infrastructure",
        description=f"The components {system.name} runs on, from their exporters, and vigil's view of them.",
        tags=["vigil", system.name, "infrastructure"],
        panels=p.layout(
            [
                _summary(system),
                *(_component(system, c) for c in components),
                p.Section("vigil: observed vs expected", [bands]),
            ]
        ),
        variables=[*datasource_variables(), signals],
        annotations=[incident_annotation(_incidents(system))],
        links=[
            dashboard_link("Overview", OVERVIEW_UID),
            *(dashboard_link(name, service_uid(name)) for name in users),
        ],
    )
