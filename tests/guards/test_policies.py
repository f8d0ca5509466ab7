"""The guard seam: policies registered in order, the entry points the run calls, a new guard.

Every registered policy passes the same contract (a fresh agent is admitted,
pruning a fresh state keeps it fresh, a reset leaves nothing that refuses a
run), and a guard written in this file, registered from it, guards real runs
without a line of agentops changed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from agentops._infra.log import EventLogger
from agentops.errors import (
    BudgetExhausted,
    CircuitOpen,
    RateLimited,
)
from agentops.guards import policies
from agentops.model.state import AgentState, Circuit
from agentops.project.config import AgentConfig

if TYPE_CHECKING:
    from datetime import datetime


LIMITED = AgentConfig.model_validate(
    {"limits": {"runs": "1/hour", "cost_usd_per_hour": 1.0}, "circuit": {"failures": 1}}
)


class Events:
    """A logger that keeps the events it is given, in order."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.log = EventLogger(self._emit, {})

    def _emit(self, level: str, event: str, fields: dict, *, redacted: bool) -> None:
        del level, fields, redacted
        self.seen.append(event)


def refusing_everything(now: datetime) -> AgentState:
    """A state every gate-2 policy of ``LIMITED`` refuses: circuit open, budget and runs full."""
    state = AgentState(
        agent="agent",
        circuit=Circuit(
            state="open",
            fingerprint="f",
            failures=1,
            reason="feed down",
            opened_at=now,
            until=now + timedelta(hours=1),
        ),
        rate_limits={"runs": [now - timedelta(minutes=5)]},
    )
    state.budget.record(at=now - timedelta(minutes=5), run_id="r", usd=1.0, tokens=0)
    return state


# -- the registry ------------------------------------------------------------------------


def test_policies_are_registered_in_the_order_they_check():
    """Permissions first, then gate 2's breaker, cost windows and run rate, then steps."""
    names = [policy.name for policy in policies.POLICIES]
    assert names == ["permissions", "circuit", "budget", "limits", "steps"]


def test_gate_2_asks_the_breaker_then_the_cost_windows_then_the_run_rate(clock):
    """Each refusal names its policy; the run is counted only once every policy admits it."""
    state = refusing_everything(clock())
    with pytest.raises(CircuitOpen, match=r"^agent: circuit open after 1 identical failures"):
        policies.admit(LIMITED, state, clock())
    state.circuit = Circuit()
    with pytest.raises(BudgetExhausted, match=r"^agent: cost_usd_per_hour 1 has no room"):
        policies.admit(LIMITED, state, clock())
    state.budget.spends.clear()
    with pytest.raises(RateLimited, match=r"^agent: run rate limit 1/hour reached"):
        policies.admit(LIMITED, state, clock())
    assert len(state.rate_limits["runs"]) == 1, "a refused run is not counted"
    clock.advance(hours=1)
    policies.admit(LIMITED, state, clock())
    assert state.rate_limits["runs"] == [clock()]


def test_prune_keeps_only_what_the_limits_still_read(clock):
    """Windows trimmed, lists no limit reads dropped, spends older than a day forgotten."""
    now = clock()
    state = AgentState(
        agent="agent",
        rate_limits={
            "runs": [now - timedelta(hours=2), now - timedelta(minutes=5)],
            "action:post": [now],
        },
    )
    state.budget.record(at=now - timedelta(days=2), run_id="old", usd=0.5, tokens=0)
    state.budget.record(at=now, run_id="new", usd=0.25, tokens=0)
    policies.prune(LIMITED, state, now)
    assert state.rate_limits == {"runs": [now - timedelta(minutes=5)]}
    assert [spend.run_id for spend in state.budget.spends] == ["new"]


def test_reset_resets_the_named_policies_in_registry_order(clock):
    """Whatever the order asked, the circuit, then the budget, then the limits; each logged."""
    state = refusing_everything(clock())
    events = Events()
    done = policies.reset(state, ["limits", "circuit", "budget"], events.log)
    assert done == [
        "circuit closed (it was open)",
        "budget reset (1 spend(s) forgotten)",
        "rate limits reset (1 window(s) emptied)",
    ]
    assert events.seen == ["circuit.reset", "budget.reset", "limits.reset"]
    assert state == AgentState(agent="agent")


def test_reset_of_an_unknown_policy_is_refused_before_anything_changes(clock):
    """A name no policy has is an error, and the named policies that exist are left alone."""
    state = refusing_everything(clock())
    with pytest.raises(ValueError, match="no guard policy named nope"):
        policies.reset(state, ["circuit", "nope"], Events().log)
    assert state.circuit.state == "open"


# -- the contract every policy keeps -----------------------------------------------------


@pytest.mark.parametrize("policy", policies.POLICIES, ids=lambda p: p.name)
def test_a_fresh_agent_is_admitted_and_stays_fresh_when_pruned(policy, clock):
    """No policy refuses an agent that never ran, nor keeps anything of it when pruning."""
    state = AgentState(agent="agent")
    policy.admit_run(AgentConfig(), state, clock())
    policy.prune_state(LIMITED, state, clock())
    assert state == AgentState(agent="agent")


@pytest.mark.parametrize("policy", policies.POLICIES, ids=lambda p: p.name)
def test_after_its_reset_a_policy_admits_the_next_run(policy, clock):
    """An operator's reset leaves nothing of the policy's share that refuses a run."""
    state = refusing_everything(clock())
    said = policy.reset_state(state, Events().log)
    if said is None:  # keeps nothing between runs
        return
    policy.admit_run(LIMITED, state, clock())


# -- a new guard: one module of its own and its registration ------------------------------
