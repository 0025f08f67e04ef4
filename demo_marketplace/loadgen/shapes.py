"""Load profiles for the marketplace: how many users should run at a given moment.

``Shape.at(t)`` is pure: ``t`` is real seconds since the start of the run and the answer is a
:class:`Target` (users and spawn rate) or ``None`` once the run is over, so every shape stops by itself.
Phases are given in simulated seconds; ``time_scale`` compresses them (60: one simulated hour per
real minute), so a phase lasts ``phase / time_scale`` real seconds. ``duration_s`` is real seconds.

:func:`locust_shape` adapts a shape to Locust's ``LoadTestShape``; it imports Locust lazily, so
importing this module never monkey-patches the caller with gevent.
"""

from __future__ import annotations

import json
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

MINUTE = 60.0
HOUR = 3600.0


@dataclass(frozen=True)
class Target:
    users: int
    spawn_rate: float  # users started (or stopped) per second


@dataclass(frozen=True)
class Shape(ABC):
    base_users: int = 10
    duration_s: float | None = None  # real seconds; None: the shape's natural length
    time_scale: float = 1.0

    name: ClassVar[str]

    def __post_init__(self) -> None:
        if self.base_users < 1:
            raise ValueError(f"base_users must be at least 1, got {self.base_users}")
        if not self.time_scale > 0:
            raise ValueError(f"time_scale must be positive, got {self.time_scale}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"duration_s must be positive, got {self.duration_s}")

    @abstractmethod
    def factor(self, simulated_s: float) -> float:
        """Target users as a multiple of ``base_users`` at a simulated time."""

    @abstractmethod
    def natural_length_s(self) -> float:
        """Simulated seconds the profile runs for when no duration is given."""

    @property
    def stop_after_s(self) -> float:
        """Real seconds after which :meth:`at` returns ``None``."""
        if self.duration_s is not None:
            return self.duration_s
        return self.natural_length_s() / self.time_scale

    def spawn_rate(self) -> float:
        return max(1.0, self.base_users / 5)

    def users_at(self, t: float) -> int:
        return max(1, round(self.base_users * self.factor(t * self.time_scale)))

    def at(self, t: float) -> Target | None:
        if t < 0:
            raise ValueError(f"elapsed time must not be negative, got {t}")
        if t >= self.stop_after_s:
            return None
        return Target(self.users_at(t), self.spawn_rate())


@dataclass(frozen=True)
class Steady(Shape):
    """Constant ``base_users`` for ``length_s`` simulated seconds (10 min) or ``duration_s``."""

    name: ClassVar[str] = "steady"
    length_s: float = 10 * MINUTE

    def factor(self, simulated_s: float) -> float:
        return 1.0

    def natural_length_s(self) -> float:
        return self.length_s


@dataclass(frozen=True)
class Diurnal(Shape):
    """A sinusoidal day: ``trough`` x base at midnight, ``peak`` x base at midday."""

    name: ClassVar[str] = "diurnal"
    trough: float = 0.3
    peak: float = 1.0
    period_s: float = 24 * HOUR
    start_hour: float = 0.0  # the simulated time of day the run starts at

    def factor(self, simulated_s: float) -> float:
        phase = 2 * math.pi * (simulated_s / self.period_s + self.start_hour / 24)
        return self.trough + (self.peak - self.trough) * (1 - math.cos(phase)) / 2

    def natural_length_s(self) -> float:
        return self.period_s


@dataclass(frozen=True)
class BlackFriday(Shape):
    """Baseline, linear ramp to ``peak`` x base, hold, linear decay back to base, then base again."""

    name: ClassVar[str] = "black_friday"
    peak: float = 5.0
    baseline_s: float = 10 * MINUTE
    ramp_s: float = 20 * MINUTE
    hold_s: float = 60 * MINUTE
    decay_s: float = 30 * MINUTE
    tail_s: float = 10 * MINUTE  # back at base after the decay

    def factor(self, simulated_s: float) -> float:
        s = simulated_s - self.baseline_s
        if s < 0:
            return 1.0
        if s < self.ramp_s:
            return 1.0 + (self.peak - 1.0) * s / self.ramp_s
        s -= self.ramp_s
        if s < self.hold_s:
            return self.peak
        s -= self.hold_s
        if s < self.decay_s:
            return self.peak - (self.peak - 1.0) * s / self.decay_s
        return 1.0

    def natural_length_s(self) -> float:
        return self.baseline_s + self.ramp_s + self.hold_s + self.decay_s + self.tail_s

    def spawn_rate(self) -> float:
        # Fast enough to follow the steeper of ramp and decay (in real seconds) with room to spare.
        steepest = min(self.ramp_s, self.decay_s) / self.time_scale
        slope = self.base_users * (self.peak - 1.0) / steepest if steepest > 0 else float(self.base_users)
        return max(super().spawn_rate(), 2 * slope)


SHAPES: dict[str, type[Shape]] = {cls.name: cls for cls in (Steady, Diurnal, BlackFriday)}


def shape_parameters(name: str) -> list[str]:
    """The profile's own parameters (phase lengths, peak, ...) that ``make_shape`` accepts as ``params``."""
    common = {f.name for f in fields(Shape)}
    return [f.name for f in fields(SHAPES[name]) if f.name not in common]


def make_shape(
    name: str,
    *,
    base_users: int,
    duration_s: float | None = None,
    time_scale: float = 1.0,
    params: Mapping[str, float] | None = None,
) -> Shape:
    """Shape ``name``; ``params`` overrides its own parameters, e.g. ``{"ramp_s": 60}`` for black_friday."""
    if name not in SHAPES:
        raise ValueError(f"unknown load shape {name!r}; known: {', '.join(SHAPES)}")
    params = dict(params or {})
    if unknown := sorted(set(params) - set(shape_parameters(name))):
        raise ValueError(
            f"load shape {name} takes {', '.join(shape_parameters(name)) or 'no parameters'}; "
            f"got {', '.join(unknown)}"
        )
    for key, value in params.items():
        if not (isinstance(value, int | float) and value >= 0):
            raise ValueError(f"load shape parameter {key} must be a number >= 0, got {value!r}")
    return SHAPES[name](base_users=base_users, duration_s=duration_s, time_scale=time_scale, **params)


def _number(env: Mapping[str, str], key: str, default: str, kind: type[float] | type[int]) -> Any:
    raw = env.get(key, "").strip() or default
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{key} must be a number, got {raw!r}") from None


def shape_from_env(env: Mapping[str, str] | None = None) -> Shape:
    """The shape configured by ``VIGIL_LOAD_SHAPE``, ``_BASE_USERS``, ``_DURATION``, ``_TIME_SCALE`` and
    ``_PARAMS`` (a JSON object of the shape's own parameters)."""
    env = os.environ if env is None else env
    duration = env.get("VIGIL_LOAD_DURATION", "").strip()
    raw_params = env.get("VIGIL_LOAD_PARAMS", "").strip() or "{}"
    try:
        params = json.loads(raw_params)
    except ValueError:
        raise ValueError(f"VIGIL_LOAD_PARAMS must be a JSON object, got {raw_params!r}") from None
    if not isinstance(params, dict):
        raise ValueError(f"VIGIL_LOAD_PARAMS must be a JSON object, got {raw_params!r}")
    return make_shape(
        env.get("VIGIL_LOAD_SHAPE", "").strip() or "steady",
        base_users=_number(env, "VIGIL_LOAD_BASE_USERS", "10", int),
        duration_s=_number(env, "VIGIL_LOAD_DURATION", duration, float) if duration else None,
        time_scale=_number(env, "VIGIL_LOAD_TIME_SCALE", "1", float),
        params=params,
    )


def wait_bounds(time_scale: float, low: float = 1.0, high: float = 3.0) -> tuple[float, float]:
    """A user's think time (seconds) between tasks, compressed like the rest of the simulated day."""
    return max(low / time_scale, 0.01), max(high / time_scale, 0.01)


def locust_shape(shape: Shape) -> type:
    """A Locust ``LoadTestShape`` class driven by ``shape`` (define it at module level in a locustfile)."""
    from locust import LoadTestShape  # lazy: importing Locust monkey-patches the process with gevent

    class VigilShape(LoadTestShape):
        profile = shape

        def tick(self) -> tuple[int, float] | None:
            target = shape.at(self.get_run_time())
            return None if target is None else (target.users, target.spawn_rate)

    return VigilShape
