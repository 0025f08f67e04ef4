"""The stories ``vigil demo`` and ``bench/leadtime.py`` act out on the marketplace.

Every scenario is one Black Friday, time-compressed: steady traffic while vigil learns what normal
looks like, a ramp to 5x the users, a hold at the peak during which a fault from the catalogue
(``vigil.demo_marketplace.faults``) develops the way real ones do (gradually), and a decay back to
normal. All times are real seconds from the start of the load. The ``surge`` scenario has no fault:
whatever vigil alerts on there is a false alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil.demo_marketplace.faults import fault as fault_spec


@dataclass(frozen=True)
class Phases:
    """The Black Friday load shape, in real seconds (its ``time_scale`` is 1: users think at human speed)."""

    baseline_s: float = 150.0  # steady: vigil's detectors warm up and learn normal
    ramp_s: float = 60.0  # to ``peak`` x the users
    hold_s: float = 330.0
    decay_s: float = 45.0
    tail_s: float = 15.0
    peak: float = 5.0

    @property
    def hold_start(self) -> float:
        return self.baseline_s + self.ramp_s

    @property
    def length_s(self) -> float:
        return self.baseline_s + self.ramp_s + self.hold_s + self.decay_s + self.tail_s

    def shape_params(self) -> dict[str, float]:
        return {
            "peak": self.peak,
            "baseline_s": self.baseline_s,
            "ramp_s": self.ramp_s,
            "hold_s": self.hold_s,
            "decay_s": self.decay_s,
            "tail_s": self.tail_s,
        }

    def phase_at(self, t: float) -> str:
        for name, end in (
            ("steady", self.baseline_s),
            ("surge ramp", self.hold_start),
            ("5x peak", self.hold_start + self.hold_s),
            ("decay", self.hold_start + self.hold_s + self.decay_s),
        ):
            if t < end:
                return name
        return "steady"


@dataclass(frozen=True)
class Scenario:
    name: str
    story: str
    slo: str  # the SLO (demo_marketplace/system.yaml) through which customers would feel the fault
    fault: str | None = None
    target: str | None = None  # for faults that can hit any service (a bad release)
    params: dict[str, float] = field(default_factory=dict)
    fault_at: float = 0.0  # seconds after the peak is reached
    fault_for: float = 0.0
    phases: Phases = field(default_factory=Phases)

    @property
    def culprit(self) -> str | None:
        """The service a good alert names: where the fault is."""
        if self.fault is None:
            return None
        return self.target or fault_spec(self.fault).service

    @property
    def fault_start(self) -> float | None:
        return None if self.fault is None else self.phases.hold_start + self.fault_at

    def check(self) -> None:
        if self.fault is None:
            return
        spec = fault_spec(self.fault)
        if unknown := set(self.params) - set(spec.params):
            raise ValueError(f"scenario {self.name}: fault {self.fault} has no parameters {sorted(unknown)}")
        if self.fault_at + self.fault_for > self.phases.hold_s:
            raise ValueError(f"scenario {self.name}: the fault must end before the peak does")


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "latency",
            "lock contention on the products table grows at the peak of the sale: the catalog slows "
            "down, and with it every product page of the storefront",
            slo="browse-latency",
            fault="catalog-slow-sql",
            params={"max_hold_ms": 400, "gap_ms": 200},
            fault_at=30,
            fault_for=300,
        ),
        Scenario(
            "backlog",
            "the warehouse's label printer gets slower and slower at the peak: paid orders pile up in "
            "RabbitMQ and take longer and longer to ship",
            slo="fulfilment-delay",
            fault="warehouse-stall",
            params={"seconds_per_message": 45.0, "ramp": 1.0},
            fault_at=30,
            fault_for=300,
        ),
        Scenario(
            "payment-latency",
            "the external payment provider degrades at the peak: charges take seconds, the payments "
            "consumer falls behind and orders wait to be paid",
            slo="fulfilment-delay",
            fault="payment-gateway-slow",
            params={"delay_ms": 12000},
            fault_at=30,
            fault_for=300,
        ),
        Scenario(
            "errors",
            "a bad catalog build is rolled out at the peak of the sale: as more replicas run it, a "
            "growing share of product requests fail",
            slo="error-ratio",
            fault="bad-release",
            target="catalog",
            params={"error_rate": 0.1, "ramp": 0.8},
            fault_at=30,
            fault_for=300,
        ),
        Scenario(
            "cache-outage",
            "Redis stops answering at the peak of the sale: the product cache and the carts fail at "
            "once, and the storefront answers errors (an abrupt fault: no early sign to catch)",
            slo="error-ratio",
            fault="cache-outage",
            fault_at=30,
            fault_for=120,
        ),
        Scenario(
            "surge",
            "Black Friday with nothing broken: five times the users, and nothing for vigil to page about",
            slo="browse-latency",
        ),
    )
}


def scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
