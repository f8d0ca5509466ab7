"""Recording a finished run in the agent's state: ``last_run``, metrics, errors, the breaker.

One function for every run that executed, whether it ended in this process
or died and was recovered by the next one, so both are counted alike: a run
killed by its hard deadline trips the breaker like one that timed out here.
The run is its :class:`~agentops.model.outcome.Outcome`: ``last_run`` is
made from it here, and nowhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentops.guards import breaker
from agentops.model.state import ErrorRecord, LastRun

if TYPE_CHECKING:
    from agentops.guards.failure import Failure
    from agentops.model.outcome import CircuitChange, Outcome
    from agentops.model.state import AgentState
    from agentops.project.config import CircuitConfig

__all__ = ["record_run"]


def record_run(
    state: AgentState,
    run: Outcome,
    circuit: CircuitConfig,
    *,
    failure: Failure | None = None,
) -> CircuitChange | None:
    """Record ``run`` in ``state``; return what it did to the circuit breaker.

    ``run`` executed, so it has its start and end; its message is its error
    unless it succeeded. ``failure`` is the classified failure the breaker
    compares (a failed run's).
    """
    if run.started_at is None or run.finished_at is None:
        raise ValueError(f"{run.run_id} never started: only a run that executed is recorded")
    error = None if run.status.ok else run.message
    state.last_run = LastRun(
        run_id=run.run_id,
        started_at=run.started_at,
        finished_at=run.finished_at,
        status=run.status,
        duration_s=max(0.0, run.duration_s or 0.0),
        error=error,
        degraded=run.degraded,
    )
    state.metrics.count(run.status)
    state.metrics.degraded += run.degraded
    if run.status.ok:
        state.consecutive_failures = 0
        state.last_success_at = run.finished_at
        state.record_duration(state.last_run.duration_s)  # what a slow run is judged by
    else:
        if run.status.failed:
            state.consecutive_failures += 1
        if error is not None:
            state.record_error(
                ErrorRecord(
                    at=run.finished_at, run_id=run.run_id, category=run.status, message=error
                )
            )
    return breaker.record_end(
        state.circuit, circuit, status=run.status, failure=failure, at=run.finished_at
    )
