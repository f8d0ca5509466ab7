"""Rate limits: ``runs``, ``requests_per_minute`` and ``[limits.actions]``, as sliding windows.

``4/hour`` means at most four events in any 60 minutes, however the runs fall
on the clock. The window is kept in the state file (``rate_limits``, one
list of event times per key) as the sorted list of event times, trimmed
from the front as it goes, so each check is a binary search: a run may add
thousands of events (``[limits.actions]``) and stay linear.

Times later than now (the clock was stepped back) count as now: they leave
the window one window from now, so a clock going back never blocks for longer
than the window itself.

What is counted, and where: a run's start by gate 2 (:class:`RatePolicy`,
and :func:`count_run` for a run that died), a request as it is admitted,
an action's commit by the journal fold (:func:`agentops.model.journal.fold_state`,
under :func:`~agentops.model.state.action_key`).
"""

from __future__ import annotations

import bisect
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from agentops._infra.timestamps import at_most
from agentops.errors import ActionRateLimited, RateLimited, RunTimeout
from agentops.guards.base import Policy
from agentops.model.state import REQUESTS, RUNS, action_key
from agentops.project.units import Rate

if TYPE_CHECKING:
    from agentops._infra.log import EventLogger
    from agentops.model.state import AgentState
    from agentops.project.config import AgentConfig, Limits

__all__ = [
    "RatePolicy",
    "count_run",
    "prune",
    "rate_limits",
    "request_rate",
    "trim",
    "wait_s",
]


def request_rate(limits: Limits) -> Rate | None:
    """``requests_per_minute`` as a :class:`~agentops.project.units.Rate`."""
    per_minute = limits.requests_per_minute
    return None if per_minute is None else Rate(per_minute, 60.0, f"{per_minute}/minute")


def rate_limits(limits: Limits) -> dict[str, Rate]:
    """Every rate limit set, by the ``rate_limits`` key its events are counted under."""
    found = {action_key(name): rate for name, rate in limits.actions.items()}
    if limits.runs is not None:
        found[RUNS] = limits.runs
    requests = request_rate(limits)
    if requests is not None:
        found[REQUESTS] = requests
    return found


def count_run(state: AgentState, started_at: datetime) -> None:
    """Count a run that started at ``started_at`` (a dead run's, found by recovery)."""
    state.rate_limits.setdefault(RUNS, []).append(started_at)


class RatePolicy(Policy):
    """Rate limits: runs refused at gate 2, actions stopped, requests made to wait."""

    name = "limits"

    # -- between runs ------------------------------------------------------------------

    @staticmethod
    def admit_run(config: AgentConfig, state: AgentState, now: datetime) -> None:
        """Refuse the run (:class:`~agentops.errors.RateLimited`) past ``runs``, or count it."""
        rate = config.limits.runs
        if rate is None:
            return
        recent = state.rate_limits.setdefault(RUNS, [])
        trim(recent, rate, now)
        wait = wait_s(recent, rate, now)
        if wait > 0:
            when = "it allows no runs" if math.isinf(wait) else f"room again in {wait:.0f}s"
            raise RateLimited(
                f"{state.agent}: run rate limit {rate} reached; {when}",
                agent=state.agent,
                retry_after_s=wait,
            )
        recent.append(now)

    @staticmethod
    def prune_state(config: AgentConfig, state: AgentState, now: datetime) -> None:
        """Keep each list to its window, and drop the lists no limit reads any more."""
        # An action commits often: without a limit, its list would grow forever.
        limits = rate_limits(config.limits)
        for key in list(state.rate_limits):
            rate = limits.get(key)
            if rate is None:
                del state.rate_limits[key]
            else:
                state.rate_limits[key] = prune(state.rate_limits[key], rate, now)

    @staticmethod
    def reset_state(state: AgentState, log: EventLogger) -> str:
        """Empty every window: runs, requests and actions."""
        emptied = sorted(state.rate_limits)
        state.rate_limits = {}
        log.info("limits.reset", windows=emptied)
        return f"rate limits reset ({len(emptied)} window(s) emptied)"

    # -- during a run ------------------------------------------------------------------

    def admit_effect(self, name: str, in_flight: int) -> None:
        """Stop the run (:class:`~agentops.errors.ActionRateLimited`) at the action's limit."""
        run = self.run
        rate = run.limits.actions.get(name)
        if rate is None:
            return
        now = run.clock()
        times = run.state.rate_limits.setdefault(action_key(name), [])
        trim(times, rate, now)
        # Actions of this name under way in other threads count: their commits will.
        if wait_s([*times, *[now] * in_flight], rate, now) > 0:
            run.stop(
                ActionRateLimited(
                    f"{run.agent}: action {name} reached its rate limit {rate}; "
                    "committed work is kept, the rest waits for a later run",
                    agent=run.agent,
                )
            )

    def admit_request(self, host: str) -> None:
        """Wait for ``requests_per_minute``, then count the request.

        A wait longer than the time the run has left fails at once: sleeping
        into the timeout would only end the run later, the same way.
        """
        del host
        run = self.run
        rate = request_rate(run.limits)
        if rate is None:
            return
        while True:  # another thread may take the slot this one waited for: ask again
            with run.lock:
                wait = self._request_wait(rate, record=False)
                if wait <= 0:
                    self._request_wait(rate, record=True)
                    return
            left = run.interrupts.remaining_s()
            if wait > left:
                run.stop(
                    RunTimeout(
                        f"{run.agent}: requests_per_minute {rate.count} would wait "
                        f"{wait:.0f}s for the next request, but the run has {left:.0f}s left",
                        agent=run.agent,
                    )
                )
            run.log.info("requests.waiting", wait_s=round(wait, 3), limit=str(rate))
            run.sleep(wait)

    def _request_wait(self, rate: Rate, *, record: bool) -> float:
        """Seconds until ``rate`` allows one more request; count it if ``record``."""
        now = self.run.clock()
        times = self.run.state.rate_limits.setdefault(REQUESTS, [])
        trim(times, rate, now)
        if record:
            times.append(now)
            return 0.0
        return wait_s(times, rate, now)


# -- the sliding window ------------------------------------------------------------------


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
