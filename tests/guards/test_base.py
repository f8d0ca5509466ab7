"""The guard seam: a policy written here, registered from here, guards real runs.

Nothing of agentops is changed for it: a Policy subclass with its config, its
share of the state, its check and its record is enough.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import pytest

from agentops.errors import (
    ActionRateLimited,
    RateLimited,
)
from agentops.guards import policies
from agentops.guards.base import Policy
from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import run_agent
from suite import agent_source

if TYPE_CHECKING:
    from datetime import datetime

    from agentops.guards.base import GuardedRun
    from agentops.model.state import AgentState
    from agentops.project.config import AgentConfig


class _OneEffectARun(Policy):
    """A test-only guard: one effect a run, and no run at all while ``closed``."""

    name = "one_effect"
    closed: ClassVar[bool] = False
    pruned: ClassVar[list[str]] = []

    def __init__(self, run: GuardedRun) -> None:
        super().__init__(run)
        self.effects = 0

    @staticmethod
    def admit_run(config: AgentConfig, state: AgentState, now: datetime) -> None:
        del config, now
        if _OneEffectARun.closed:
            raise RateLimited(
                f"{state.agent}: closed by a test guard", agent=state.agent, retry_after_s=60
            )

    @staticmethod
    def prune_state(config: AgentConfig, state: AgentState, now: datetime) -> None:
        del config, now
        _OneEffectARun.pruned.append(state.agent)

    def admit_effect(self, name: str, in_flight: int) -> None:
        del name  # every action counts
        if self.effects + in_flight >= 1:
            self.run.stop(
                ActionRateLimited(f"{self.run.agent}: one effect a run", agent=self.run.agent)
            )
        self.effects += 1


@pytest.fixture
def one_effect_a_run(monkeypatch):
    """``_OneEffectARun`` registered after every built-in policy, for this test only."""
    monkeypatch.setattr(policies, "POLICIES", (*policies.POLICIES, _OneEffectARun))
    monkeypatch.setattr(_OneEffectARun, "closed", False)
    monkeypatch.setattr(_OneEffectARun, "pruned", [])
    return _OneEffectARun


POSTER = agent_source(
    """
    posted = []
    for key in ("a", "b"):
        ctx.action("post", key=key, do=lambda key=key: posted.append(key))
    return Result(posted=posted)
    """,
    result="posted: list[str]",
)


def test_a_registered_guard_checks_real_runs(project, clock, one_effect_a_run):
    """Its hooks run in a real run: the second effect stops it, gate 2 refuses, prune is called."""
    project.add_agent("poster", POSTER)
    home = AgentopsProject(project.home)
    stopped = run_agent(home, "poster", clock=clock, environ={})
    assert (stopped.exit_code, stopped.message) == (75, "poster: one effect a run")
    assert list(project.ledger("poster")["post"]) == ["a"], "the first effect is committed"
    assert one_effect_a_run.pruned == ["poster"]
    one_effect_a_run.closed = True
    skipped = run_agent(home, "poster", clock=clock, environ={})
    assert (skipped.exit_code, skipped.message) == (75, "poster: closed by a test guard")
