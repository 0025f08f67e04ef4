"""The watched system as data: its services, calls, backing components, shared resources, queues and SLOs.

Everything vigil generates for a system (default signals, Prometheus rules, Alertmanager routing,
dashboards, incident suspects) is derived from one validated file; see ``vigil system check``.
"""

from vigil.system.load import SystemFileError, load_system, parse_system
from vigil.system.model import SLO, Component, Queue, Resource, Service, System, Telemetry

__all__ = [
    "SLO",
    "Component",
    "Queue",
    "Resource",
    "Service",
    "System",
    "SystemFileError",
    "Telemetry",
    "load_system",
    "parse_system",
]
