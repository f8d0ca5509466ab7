"""Recording a finished run in the agent's state: ``last_run``, metrics, errors, the breaker.

One function for every run that executed, whether it ended in this process
or died and was recovered by the next one, so both are counted alike: a run
killed by its hard deadline trips the breaker like one that timed out here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from agentops.guards import breaker
from agentops.model.state import ErrorRecord, LastRun

if TYPE_CHECKING:
    from datetime import datetime

    from agentops.guards.failure import Failure
    from agentops.model.outcome import CircuitChange
    from agentops.model.state import AgentState
    from agentops.model.status import RunStatus
    from agentops.project.config import Circuit as CircuitConfig

__all__ = ["FinishedRun", "record_run"]


class FinishedRun(NamedTuple):
    """What is recorded of a run that executed."""

    run_id: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime
    duration_s: float
    message: str | None = None
    """The one-line error (None for a success)."""
    failure: Failure | None = None
    """The classified failure the breaker compares (a failed run's)."""
    degraded: bool = False


def record_run(state: AgentState, run: FinishedRun, circuit: CircuitConfig) -> CircuitChange | None:
    """Record ``run`` in ``state``; return what it did to the circuit breaker."""
    state.last_run = LastRun(
        run_id=run.run_id,
        started_at=run.started_at,
        finished_at=run.finished_at,
        status=run.status,
        duration_s=max(0.0, run.duration_s),
        error=run.message,
        degraded=run.degraded,
    )
    state.metrics.count(run.status)
    state.metrics.degraded += run.degraded
    if run.status.ok:
        state.consecutive_failures = 0
        state.last_success_at = run.finished_at
    else:
        if run.status.failed:
            state.consecutive_failures += 1
        if run.message is not None:
            state.record_error(
                ErrorRecord(
                    at=run.finished_at, run_id=run.run_id, category=run.status, message=run.message
                )
            )
    return breaker.record_end(
        state.circuit, circuit, status=run.status, failure=run.failure, at=run.finished_at
    )
