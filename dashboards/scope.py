"""What one service's dashboard is drawn from: the system, the service, and the names its telemetry uses."""

from __future__ import annotations

from dataclasses import dataclass

from vigil.system import Component, Queue, Service, System, Telemetry


def legend(*labels: str) -> str:
    """A legendFormat naming each label's value: ``{{route}} {{status}}``."""
    return " ".join(f"{{{{{label}}}}}" for label in labels)


@dataclass(frozen=True)
class Scope:
    system: System
    service: Service

    @property
    def name(self) -> str:
        return self.service.name

    @property
    def telemetry(self) -> Telemetry:
        return self.system.telemetry

    @property
    def own(self) -> dict[str, str]:
        """Matchers of the service's own series: the system's selector and the service label."""
        t = self.telemetry
        return {**t.selector, t.service_label: self.name}

    @property
    def vigil(self) -> dict[str, str]:
        """Matchers of vigil's series about the service: they carry the service label, not the selector
        (vigil exports only the labels a signal groups by)."""
        return {self.telemetry.service_label: self.name}

    @property
    def consumes(self) -> list[Queue]:
        return self.system.consumes(self.name)

    @property
    def publishes(self) -> list[Queue]:
        return self.system.publishes(self.name)

    @property
    def components(self) -> list[Component]:
        """The components it uses, in the order the service lists them."""
        by_name = {c.name: c for c in self.system.components}
        return [by_name[name] for name in self.service.uses]

    def uses_kind(self, kind: str) -> list[Component]:
        return [c for c in self.components if c.kind == kind]
