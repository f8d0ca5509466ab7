"""Sliding-window rate limits whose events live in the state file.

``4/hour`` means at most four events in any 60 minutes, however the runs fall
on the clock. The window is kept as the sorted list of event times, trimmed
from the front as it goes, so each check is a binary search: a run may add
thousands of events (``[limits.actions]``) and stay linear.

Times later than now (the clock was stepped back) count as now: they leave
the window one window from now, so a clock going back never blocks for longer
than the window itself.
"""

from __future__ import annotations

import bisect
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from agentops._infra.timestamps import at_most

if TYPE_CHECKING:
    from agentops.project.units import Rate

__all__ = ["prune", "trim", "wait_s"]


def trim(times: list[datetime], rate: Rate, now: datetime) -> None:
    """Drop, in place, the times the window ending at ``now`` no longer holds."""
    if times and times[-1] > now:
        times[:] = [at_most(t, now) for t in times]
    start = bisect.bisect_right(times, now - timedelta(seconds=rate.period_s))
    if start:
        del times[:start]


def prune(times: list[datetime], rate: Rate, now: datetime) -> list[datetime]:
    """The times still inside the window ending at ``now``, sorted (a new list)."""
    kept = sorted(times)
    trim(kept, rate, now)
    return kept


def wait_s(times: list[datetime], rate: Rate, now: datetime) -> float:
    """Seconds until one more event fits in the window: 0 if it fits now.

    ``times`` must already be trimmed. A rate of ``0/...`` never has room.
    """
    if rate.count == 0:
        return math.inf
    if len(times) < rate.count:
        return 0.0
    # The event that has to leave the window before another one fits.
    blocking = times[len(times) - rate.count]
    return max(0.0, (blocking + timedelta(seconds=rate.period_s) - now).total_seconds())
