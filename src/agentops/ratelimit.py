"""Sliding-window rate limits whose events live in the state file.

``4/hour`` means at most four events in any 60 minutes, however the runs fall
on the clock. The window is kept as the list of event times, pruned as it goes.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentops.config import Rate

__all__ = ["prune", "wait_s"]


def prune(times: list[datetime], rate: Rate, now: datetime) -> list[datetime]:
    """The event times still inside the window ending at ``now``, oldest first."""
    start = now - timedelta(seconds=rate.period_s)
    return sorted(t for t in times if t > start)


def wait_s(times: list[datetime], rate: Rate, now: datetime) -> float:
    """Seconds until one more event fits in the window: 0 if it fits now.

    ``times`` must already be pruned. A rate of ``0/...`` never has room.
    """
    if rate.count == 0:
        return math.inf
    if len(times) < rate.count:
        return 0.0
    # The event that has to leave the window before another one fits.
    blocking = times[len(times) - rate.count]
    return max(0.0, (blocking + timedelta(seconds=rate.period_s) - now).total_seconds())
