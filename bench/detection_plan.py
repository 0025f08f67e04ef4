"""The fault matrix ``bench/detection.py`` acts out: which fault, how bad, in which phase of the sale.

One *case* is one time-compressed Black Friday (steady, a ramp to 5x, a hold at the peak, a decay)
with at most one fault from the marketplace's catalogue. A seed draws, for every fault of the
catalogue, its severity, the phase it starts in and, for a bad release, the service it hits; several
seeds cover the combinations. Every seed also plays one fault-free surge, the yardstick of false
alerts at 5x. Nothing here reads a clock or the stack: the plan is a pure function of its seeds.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from vigil.demo.scenarios import Phases
from vigil.demo_marketplace.faults import FAULTS

# The sale one case plays. The steady phase is long enough for detectors to learn normal (as in the
# demo); the hold leaves room for a fault of FAULT_FOR seconds that starts in the peak.
PHASES = Phases(baseline_s=150.0, ramp_s=60.0, hold_s=180.0, decay_s=30.0, tail_s=10.0)
FAULT_FOR = 120.0
# Seconds into the case at which a fault starts, per phase.
START_IN = {
    "steady": PHASES.baseline_s - 60.0,
    "ramp": PHASES.baseline_s + 15.0,
    "peak": PHASES.hold_start + 20.0,
}
BAD_RELEASE_TARGETS = ("catalog", "orders", "payments", "cart")

# Two severities per fault: "mild" is a fault a team would want to hear about before customers do,
# "severe" one that breaks an SLO quickly. Faults without parameters have one severity.
SEVERITIES: dict[str, dict[str, dict[str, float]]] = {
    "payment-gateway-slow": {"mild": {"delay_ms": 3000}, "severe": {"delay_ms": 12000}},
    "payment-errors": {"mild": {"error_rate": 0.1}, "severe": {"error_rate": 0.5}},
    "catalog-slow-sql": {
        "mild": {"max_hold_ms": 200, "gap_ms": 300},
        "severe": {"max_hold_ms": 600, "gap_ms": 200},
    },
    "warehouse-stall": {
        "mild": {"seconds_per_message": 5.0, "ramp": 1.0},
        "severe": {"seconds_per_message": 45.0, "ramp": 0.5},
    },
    "memory-leak": {"mild": {"kb_per_request": 64}, "severe": {"kb_per_request": 512}},
    "bad-release": {
        "mild": {"error_rate": 0.05, "ramp": 0.8},
        "severe": {"error_rate": 0.4, "ramp": 0.0},
    },
    "warehouse-crash": {"severe": {}},
    "cache-outage": {"severe": {}},
    "recommendations-crash": {"severe": {}},
}


@dataclass(frozen=True)
class Case:
    seed: int
    fault: str | None  # None: the fault-free surge
    severity: str = ""
    phase: str = ""
    target: str | None = None  # a bad release's service
    params: dict[str, float] = field(default_factory=dict)

    @property
    def id(self) -> str:
        if self.fault is None:
            return f"s{self.seed}-surge"
        where = f"@{self.target}" if self.target else ""
        return f"s{self.seed}-{self.fault}{where}-{self.severity}-{self.phase}"

    @property
    def fault_at(self) -> float | None:
        """Seconds after the case's start at which the fault begins."""
        return None if self.fault is None else START_IN[self.phase]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, **asdict(self)}

    @staticmethod
    def from_json(raw: dict[str, Any]) -> Case:
        fields_ = ("seed", "fault", "severity", "phase", "target", "params")
        return Case(**{k: raw[k] for k in fields_})


def check_catalogue() -> None:
    """Every fault of the marketplace has severities here, with parameters it takes."""
    missing = sorted(set(FAULTS) - set(SEVERITIES))
    if missing:
        raise ValueError(f"faults without severities in the matrix: {', '.join(missing)}")
    for name, levels in SEVERITIES.items():
        for level, params in levels.items():
            if unknown := set(params) - set(FAULTS[name].params):
                raise ValueError(f"{name} ({level}) has no parameters {sorted(unknown)}")


def plan(seeds: Sequence[int], faults: Sequence[str] | None = None, surge: bool = True) -> list[Case]:
    """Per seed: one case per fault (severity, phase and target drawn from the seed), then a surge.

    Cases of one seed are shuffled by it, so no fault always follows the same other one.
    """
    check_catalogue()
    names = list(faults) if faults else sorted(SEVERITIES)
    if unknown := [n for n in names if n not in SEVERITIES]:
        raise ValueError(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(sorted(SEVERITIES))}")
    cases: list[Case] = []
    for seed in seeds:
        rng = random.Random(seed)
        drawn = []
        for name in names:
            severity = rng.choice(sorted(SEVERITIES[name]))
            phase = rng.choice(sorted(START_IN))
            target = rng.choice(BAD_RELEASE_TARGETS) if FAULTS[name].any_service else None
            drawn.append(Case(seed, name, severity, phase, target, dict(SEVERITIES[name][severity])))
        rng.shuffle(drawn)
        cases.extend(drawn)
        if surge:
            cases.append(Case(seed, None))
    return cases
