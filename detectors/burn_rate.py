"""Error-budget burn rate with multi-window, multi-burn-rate rules (Google SRE Workbook, ch. 5).

An SLO ``objective`` of 0.99 allows 1% of the events to be bad: that 1% is the error budget.
The burn rate over a window is the window's bad ratio divided by that allowance, so burn 1
spends exactly the budget over the SLO period and burn 14.4 spends 2% of a 30-day budget in one
hour. A rule fires when both its long window (is the burn significant?) and its short window
(is it still going on?) burn faster than the rule's factor; the short window is what lets the
alert stop minutes after the errors stop instead of an hour later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from vigil.detectors.base import Band

DAY = 86400.0


@dataclass(frozen=True)
class BurnRule:
    """Fire when both windows (seconds) burn the budget faster than ``factor``."""

    name: str
    severity: str  # "page" or "ticket"
    factor: float
    long_window: float
    short_window: float


# The workbook's recommended set for a 30-day SLO: 2% of the budget in 1 h or 5% in 6 h pages,
# 10% in 3 days opens a ticket; each short window is 1/12 of its long one.
DEFAULT_RULES: tuple[BurnRule, ...] = (
    BurnRule("page-1h", "page", 14.4, 3600.0, 300.0),
    BurnRule("page-6h", "page", 6.0, 6 * 3600.0, 1800.0),
    BurnRule("ticket-3d", "ticket", 1.0, 3 * DAY, 6 * 3600.0),
)


class TimeBinnedSums:
    """Sums of (bad, total) over the last ``window`` seconds, in ``bins`` ring-buffer bins.

    Bin ``k`` holds the events with ``floor(t / width) == k``; the window at ``t`` is the bin of
    ``t`` and the ``bins - 1`` before it, so it is exact up to one bin (exact when steps fall on
    bin edges) and its memory does not grow with the stream.
    """

    def __init__(self, window: float, bins: int) -> None:
        self.width = window / bins
        self.bin_ = np.full(bins, -1, dtype=np.int64)  # which absolute bin each slot holds
        self.bad_ = np.zeros(bins)
        self.total_ = np.zeros(bins)

    def _index(self, t: float) -> int:
        return math.floor(t / self.width)

    def add(self, bad: float, total: float, t: float) -> None:
        k = self._index(t)
        slot = k % len(self.bin_)
        if self.bin_[slot] > k:  # the slot already holds a newer bin: the event fell out of the window
            return
        if self.bin_[slot] < k:
            self.bin_[slot], self.bad_[slot], self.total_[slot] = k, 0.0, 0.0
        self.bad_[slot] += bad
        self.total_[slot] += total

    def sums(self, t: float) -> tuple[float, float]:
        k = self._index(t)
        inside = (self.bin_ > k - len(self.bin_)) & (self.bin_ <= k)
        return float(self.bad_[inside].sum()), float(self.total_[inside].sum())


@dataclass(frozen=True)
class RuleState:
    rule: BurnRule
    long_burn: float
    short_burn: float
    long_total: float
    score: float

    @property
    def firing(self) -> bool:
        return self.score > 1.0


class BurnRate:
    """Scores (bad, total) events per step by the SRE multi-window burn-rate rules.

    ``score = max over rules of min(long_burn, short_burn) / factor``, so the score is above 1
    exactly when a rule fires: calibrated by construction, do not wrap it. A rule whose long
    window holds fewer than ``min_events`` events scores 0 (a few requests make any ratio
    meaningless; with per-second rates for ``x``, it counts the sum of the rates instead). Windows
    are in seconds of ``t``, whatever the step; each keeps ``bins`` bins, so it is exact to
    ``1 / bins`` of its length. The first point, with nothing learned yet, scores 0.
    :meth:`rules_at` says which rule fires with which severity, ``firing_`` holds the rules
    firing after the last learned point, and :meth:`time_to_exhaustion` is for alert annotations.

    >>> detector = BurnRate(objective=0.99)
    >>> for i in range(3 * 1440):  # three healthy days, one step a minute, 0.5% errors
    ...     detector.learn_one((0.5, 100.0), t=60.0 * i)
    >>> detector.score_one((0.5, 100.0), t=60.0 * 4320) < 1
    True
    >>> for i in range(4320, 4320 + 60):  # an hour at 30% errors
    ...     detector.learn_one((30.0, 100.0), t=60.0 * i)
    >>> detector.firing_  # (rule, severity): 30x burn over the hour, not yet 6x over 6 hours
    (('page-1h', 'page'),)
    >>> round(detector.time_to_exhaustion(t=60.0 * 4379) / 3600, 2)  # hours a 30-day budget lasts at burn 30
    24.0
    """

    input_kind: ClassVar[str] = "events"

    def __init__(
        self,
        objective: float = 0.99,
        rules: Sequence[BurnRule | Mapping[str, Any]] = DEFAULT_RULES,
        min_events: float = 100.0,
        bins: int = 360,
        period: float = 30 * DAY,
    ) -> None:
        if not 0.0 < objective < 1.0:
            raise ValueError(f"objective must be in (0, 1), got {objective}")
        self.objective = objective
        self.rules = rules
        self.min_events = min_events
        self.bins = bins
        self.period = period
        self.rules_ = tuple(rule if isinstance(rule, BurnRule) else BurnRule(**rule) for rule in rules)
        if not self.rules_:
            raise ValueError("at least one rule is needed")
        windows = sorted({w for rule in self.rules_ for w in (rule.long_window, rule.short_window)})
        self.windows_ = {window: TimeBinnedSums(window, bins) for window in windows}
        self.n_ = 0
        self.firing_: tuple[tuple[str, str], ...] = ()

    @property
    def budget(self) -> float:
        """The bad ratio the objective allows."""
        return 1.0 - self.objective

    def _burn(self, bad: float, total: float) -> float:
        return bad / total / self.budget if total > 0 else 0.0

    def rules_at(self, t: float, x: tuple[float, float] = (0.0, 0.0)) -> list[RuleState]:
        """Every rule's state at ``t`` as if ``x`` were added, most urgent first."""
        extra_bad, extra_total = _events(x)
        sums = {}
        for window, binned in self.windows_.items():
            bad, total = binned.sums(t)
            sums[window] = (bad + extra_bad, total + extra_total)
        states = []
        for rule in self.rules_:
            long_bad, long_total = sums[rule.long_window]
            long_burn = self._burn(long_bad, long_total)
            short_burn = self._burn(*sums[rule.short_window])
            enough = long_total >= self.min_events
            score = min(long_burn, short_burn) / rule.factor if enough else 0.0
            states.append(RuleState(rule, long_burn, short_burn, long_total, score))
        return sorted(states, key=lambda state: -state.score)

    def score_one(self, x: tuple[float, float], t: float) -> float:
        if self.n_ == 0:  # warm-up: nothing learned yet, however bad the first step
            return 0.0
        return self.rules_at(t, x)[0].score

    def learn_one(self, x: tuple[float, float], t: float) -> None:
        bad, total = _events(x)
        for binned in self.windows_.values():
            binned.add(bad, total, t)
        self.n_ += 1
        self.firing_ = tuple((s.rule.name, s.rule.severity) for s in self.rules_at(t) if s.firing)

    def time_to_exhaustion(self, t: float) -> float:
        """Seconds a whole ``period``'s budget lasts at the long-window burn of the most urgent rule."""
        burn = self.rules_at(t)[0].long_burn
        return self.period / burn if burn > 0 else math.inf

    def expected(self, t: float) -> Band | None:
        """The bad ratio: the budget's allowance, up to what the fastest rule tolerates."""
        if self.n_ == 0:
            return None
        fastest = max(rule.factor for rule in self.rules_)
        return Band(self.budget, 0.0, min(1.0, fastest * self.budget))


def _events(x: tuple[float, float]) -> tuple[float, float]:
    """(bad, total) made safe to sum: a missing or broken step counts as no events."""
    bad, total = float(x[0]), float(x[1])
    if not (math.isfinite(bad) and math.isfinite(total)) or total <= 0:
        return 0.0, 0.0
    # Rates summed from several series can put bad a hair above total.
    return min(max(bad, 0.0), total), total
