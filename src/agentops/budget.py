"""Cost budgets over sliding windows: ``cost_usd_per_hour`` and ``cost_usd_per_day``.

Spends live in the state file (the last day of them), so a cap holds across
cron runs. A spend is checked before it is recorded: a spend that would pass
a cap is refused, so the recorded total never exceeds the cap.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from agentops.config import Limits

__all__ = ["EPSILON_USD", "LONGEST_WINDOW_S", "SpendLike", "Window", "windows"]

LONGEST_WINDOW_S = 86400.0
"""Spends older than this matter to no window and are dropped from the state file."""

EPSILON_USD = 1e-9
"""Float rounding tolerance when a spend lands exactly on a cap."""


class SpendLike(Protocol):
    """What a window needs of a recorded spend: when, and how much."""

    at: datetime
    usd: float


class Window(NamedTuple):
    """A cap on the dollars spent in any window of ``seconds``."""

    name: str
    seconds: float
    cap_usd: float

    def spent(self, spends: Sequence[SpendLike], now: datetime) -> float:
        """Dollars spent in the window ending at ``now``."""
        start = now - timedelta(seconds=self.seconds)
        return sum(s.usd for s in spends if s.at > start)

    def allows(self, spends: Sequence[SpendLike], now: datetime, usd: float) -> bool:
        """Whether spending ``usd`` more now keeps the window at or under its cap."""
        return self.spent(spends, now) + usd <= self.cap_usd + EPSILON_USD

    def room_in_s(
        self, spends: Sequence[SpendLike], now: datetime, *, need_usd: float = 0.0
    ) -> float:
        """Seconds until the window has room again; 0 if it has now.

        Room is for ``need_usd`` more (the spend a run was refused), or, with no
        need, any spend at all: the total below the cap.
        """
        if self.cap_usd <= 0 or need_usd > self.cap_usd + EPSILON_USD:
            return math.inf
        if need_usd > 0:
            limit = self.cap_usd + EPSILON_USD - need_usd

            def fits(total: float) -> bool:
                return total <= limit
        else:
            # Below the cap by more than rounding, however small the cap.
            below = self.cap_usd - min(EPSILON_USD, self.cap_usd / 2)

            def fits(total: float) -> bool:
                return total < below

        start = now - timedelta(seconds=self.seconds)
        recent = sorted((s for s in spends if s.at > start), key=lambda s: s.at)
        total = sum(s.usd for s in recent)
        if fits(total):
            return 0.0
        for spend in recent:  # the oldest spends leave the window first
            total -= spend.usd
            if fits(total):
                leaves = spend.at + timedelta(seconds=self.seconds)
                return max(0.0, (leaves - now).total_seconds())
        return (recent[-1].at + timedelta(seconds=self.seconds) - now).total_seconds()


def windows(limits: Limits) -> list[Window]:
    """The cost windows ``[limits]`` sets, shortest first."""
    found = []
    if limits.cost_usd_per_hour is not None:
        found.append(Window("cost_usd_per_hour", 3600.0, limits.cost_usd_per_hour))
    if limits.cost_usd_per_day is not None:
        found.append(Window("cost_usd_per_day", LONGEST_WINDOW_S, limits.cost_usd_per_day))
    return found
