"""A run much longer than it should be: the ``slow`` rule, as a run and ``status`` judge it.

A run that did its job is slow when it took longer than its limit:

- ``expected_duration`` in agent.toml, when it is set;
- else :data:`FACTOR` times the 95th percentile of the agent's recent
  successful runs (the state keeps the last
  :data:`~agentops.model.state.MAX_DURATIONS`), once there are
  :data:`MIN_RUNS` of them, and never less than :data:`FLOOR_S`: the jitter
  of a run of a few seconds is not news.

A run that failed is not slow: its failure is what people are told.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Sequence

    from agentops.model.state import AgentState

__all__ = ["FACTOR", "FLOOR_S", "MIN_RUNS", "Slow", "describe", "slow_run"]

FACTOR = 3.0
"""How many times its recent p95 a run may take before it is slow."""

MIN_RUNS = 5
"""How many earlier successful runs the p95 needs before it judges anything."""

FLOOR_S = 60.0
"""The shortest limit the p95 rule sets, in seconds."""


class Slow(NamedTuple):
    """A successful run that took longer than its limit."""

    run_id: str
    duration_s: float
    limit_s: float
    by: Literal["expected_duration", "p95"]
    """Which rule set the limit."""


def slow_run(
    state: AgentState, expected_s: float | None, *, run_id: str | None = None
) -> Slow | None:
    """The agent's last run, if it succeeded but was slow (and is ``run_id``, when given)."""
    last = state.last_run
    if last is None or not last.status.ok or run_id not in (None, last.run_id):
        return None
    # A success's own duration is the newest kept: it is judged by those before it.
    earlier = state.durations[:-1]
    by: Literal["expected_duration", "p95"]
    if expected_s is not None:
        limit, by = expected_s, "expected_duration"
    elif len(earlier) >= MIN_RUNS:
        limit, by = max(FLOOR_S, FACTOR * p95(earlier)), "p95"
    else:
        return None
    if last.duration_s <= limit:
        return None
    return Slow(last.run_id, last.duration_s, limit, by)


def p95(durations: Sequence[float]) -> float:
    """The 95th percentile of ``durations`` (nearest rank: one of them, never interpolated)."""
    ordered = sorted(durations)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def describe(slow: Slow) -> str:
    """One line for people: ``took 12m3s, longer than 5m (expected_duration)``."""
    rule = "expected_duration" if slow.by == "expected_duration" else f"{FACTOR:g} x the recent p95"
    return f"took {_span(slow.duration_s)}, longer than {_span(slow.limit_s)} ({rule})"


def _span(seconds: float) -> str:
    if seconds < 60:  # noqa: PLR2004 - a minute
        return f"{seconds:.3g}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"
