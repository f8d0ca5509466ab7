"""The cost policy: ``cost_usd_per_hour`` and ``cost_usd_per_day`` as windows over the spends.

The spends themselves are durable data (:mod:`agentops.model.money`); this
module is how ``[limits]`` reads them: how much a window holds, whether a
cost fits, and when a full window has room again.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, NamedTuple

from agentops._infra.timestamps import at_most
from agentops.model.money import EPSILON_USD, LONGEST_WINDOW_S

if TYPE_CHECKING:
    from datetime import datetime

    from agentops.model.money import Budget
    from agentops.project.config import Limits

__all__ = ["Window", "windows"]


class Window(NamedTuple):
    """A cap on the dollars spent in any window of ``seconds``."""

    name: str
    seconds: float
    cap_usd: float

    def spent(self, budget: Budget, now: datetime) -> float:
        """Dollars spent in the window ending at ``now``."""
        return budget.spent(self.seconds, now)

    def allows(self, budget: Budget, now: datetime, usd: float) -> bool:
        """Whether spending ``usd`` more now keeps the window at or under its cap."""
        return self.spent(budget, now) + usd <= self.cap_usd + EPSILON_USD

    def room_in_s(self, budget: Budget, now: datetime, *, need_usd: float = 0.0) -> float:
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

        total = self.spent(budget, now)
        if fits(total):
            return 0.0
        start = now - timedelta(seconds=self.seconds)
        recent = budget.spends[budget.first_after(start) :]
        for spend in recent:  # the oldest spends leave the window first
            total -= spend.usd
            if fits(total):
                leaves = at_most(spend.at, now) + timedelta(seconds=self.seconds)
                return max(0.0, (leaves - now).total_seconds())
        return self.seconds


def windows(limits: Limits) -> list[Window]:
    """The cost windows ``[limits]`` sets, shortest first."""
    found = []
    if limits.cost_usd_per_hour is not None:
        found.append(Window("cost_usd_per_hour", 3600.0, limits.cost_usd_per_hour))
    if limits.cost_usd_per_day is not None:
        found.append(Window("cost_usd_per_day", LONGEST_WINDOW_S, limits.cost_usd_per_day))
    return found
