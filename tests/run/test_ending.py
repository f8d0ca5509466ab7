"""A finished run recorded in the state: last_run, the metrics, the errors, the breaker.

One function for every run that executed, ended here or recovered by the next
run, so both are counted alike.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from agentops.guards.failure import Failure
from agentops.model.outcome import Outcome
from agentops.model.state import AgentState
from agentops.model.status import RunStatus
from agentops.project.config import CircuitConfig
from agentops.run.ending import record_run
from suite import T0

CIRCUIT = CircuitConfig(failures=2, cooldown="1h")
FEED_DOWN = Failure("timeout", "TimeoutError: feed timed out", transient=True)


def ended(status: RunStatus, run_id: str = "run-1", **facts) -> Outcome:
    """An outcome of a run that executed: started at T0, ran three seconds."""
    return Outcome(
        "agent",
        run_id,
        status,
        status.exit_code,
        "agent: run() raised TimeoutError: feed timed out",
        Path("/srv/agentops/logs/agent.jsonl"),
        started_at=T0,
        finished_at=T0 + timedelta(seconds=3),
        duration_s=3.0,
        **facts,
    )


def test_a_success_is_the_last_run_and_the_last_success():
    """last_run holds the run without an error; the failures in a row start again."""
    state = AgentState(agent="agent", consecutive_failures=2)
    assert record_run(state, ended(RunStatus.SUCCEEDED), CIRCUIT) is None
    assert state.last_run is not None
    assert (state.last_run.run_id, state.last_run.status, state.last_run.error) == (
        "run-1",
        RunStatus.SUCCEEDED,
        None,
    )
    assert state.last_run.duration_s == 3.0
    assert state.last_success_at == T0 + timedelta(seconds=3)
    assert (state.consecutive_failures, state.metrics.runs, state.metrics.succeeded) == (0, 1, 1)
    assert state.errors == []


def test_a_failure_is_counted_kept_as_an_error_and_told_to_the_breaker():
    """The message is the error; the second identical failure opens the circuit."""
    state = AgentState(agent="agent")
    assert record_run(state, ended(RunStatus.FAILED), CIRCUIT, failure=FEED_DOWN) is None
    change = record_run(state, ended(RunStatus.FAILED, "run-2"), CIRCUIT, failure=FEED_DOWN)
    assert change == "opened"
    assert state.circuit.state == "open"
    assert (state.consecutive_failures, state.metrics.failed) == (2, 2)
    assert [e.run_id for e in state.errors] == ["run-1", "run-2"]
    assert state.errors[-1].category is RunStatus.FAILED
    assert state.last_success_at is None


def test_a_stop_by_policy_is_recorded_but_is_no_failure_in_a_row():
    """A budget stop: last_run and an error say why; the failures in a row do not grow."""
    state = AgentState(agent="agent")
    record_run(state, ended(RunStatus.BUDGET_EXCEEDED), CIRCUIT)
    assert state.last_run is not None
    assert state.last_run.status is RunStatus.BUDGET_EXCEEDED
    assert state.consecutive_failures == 0
    assert state.metrics.stopped == 1


def test_a_degraded_success_is_counted_as_such():
    """A fallback's result succeeded, and the metrics say it was degraded."""
    state = AgentState(agent="agent")
    record_run(state, ended(RunStatus.SUCCEEDED, degraded=True), CIRCUIT)
    assert state.last_run is not None
    assert state.last_run.degraded
    assert state.metrics.degraded == 1


def test_a_run_that_never_started_cannot_be_recorded():
    """Only a run that executed has a last_run: a skip is refused, loudly."""
    state = AgentState(agent="agent")
    skipped = ended(RunStatus.SKIPPED)._replace(started_at=None)
    with pytest.raises(ValueError, match="never started"):
        record_run(state, skipped, CIRCUIT)
    assert state.last_run is None
