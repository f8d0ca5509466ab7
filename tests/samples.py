"""Values the store tests share: a state with every kind of field filled in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agentops.model.state import MAX_ERRORS, AgentState, ErrorRecord, LastRun, Metrics
from agentops.model.status import RunStatus

__all__ = ["T0", "full_state"]

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def full_state(name: str = "pub") -> AgentState:
    """A state with every kind of field filled in."""
    state = AgentState(
        agent=name,
        last_run=LastRun(
            run_id="run-7",
            started_at=T0,
            finished_at=T0 + timedelta(seconds=3.25),
            status=RunStatus.FAILED,
            duration_s=3.25,
            error="feed timed out",
        ),
        last_success_at=T0 - timedelta(hours=1),
        metrics=Metrics(runs=7, succeeded=5, failed=1, rejected=1),
        rate_limits={"publish": [T0, T0 + timedelta(minutes=5)]},
        data={"seen": ["a", "b"], "cursor": 42, "nested": {"ok": True, "ratio": 0.5}},
    )
    state.budget.record(at=T0, run_id="run-7", usd=0.25, tokens=100)
    for n in range(MAX_ERRORS + 2):
        state.record_error(
            ErrorRecord(at=T0, run_id=f"run-{n}", category=RunStatus.TIMEOUT, message="slow")
        )
    return state
