"""``ctx``: what an agent's code is handed, and nothing of the runner's."""

from __future__ import annotations

import re

import pytest

from agentops.context import Context
from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import run_agent
from suite import agent_source

# An agent that says what it can see on ctx and on ctx.memory.
LOOKER = agent_source(
    """
    return Result(
        ctx=[name for name in dir(ctx) if not name.startswith("_")],
        memory=[name for name in dir(ctx.memory) if not name.startswith("_")],
    )
    """,
    result="""
    ctx: list[str]
    memory: list[str]
    """,
)

DOCUMENTED = set(re.findall(r"``ctx\.(\w+)", Context.__doc__ or ""))
"""What Context's docstring offers agents: ``ctx.state``, ``ctx.action(...)``..."""


@pytest.fixture
def seen(project, clock) -> dict[str, list[str]]:
    """The public names a running agent sees on ctx and on ctx.memory."""
    project.add_agent("looker", LOOKER)
    outcome = run_agent(AgentopsProject(project.home), "looker", environ={}, clock=clock)
    assert outcome.exit_code == 0, outcome.message
    return project.events("looker")[-1]["result"]


def test_ctx_shows_agents_exactly_what_its_docstring_offers(seen):
    """dir(ctx) is the documented API: no close(), restart() or memory_used of the runner's."""
    assert set(seen["ctx"]) == DOCUMENTED
    assert {"action", "spend", "step", "http", "llm", "memory", "state"} <= DOCUMENTED


def test_ctx_memory_shows_agents_only_its_five_methods(seen):
    """dir(ctx.memory) is remember, recall, forget, note, relevant: the run keeps the rest."""
    assert sorted(seen["memory"]) == ["forget", "note", "recall", "relevant", "remember"]


def test_a_context_of_no_run_says_what_needs_a_run(tmp_path):
    """Made by hand (a helper's test), ctx refuses what only a run can give, in words."""
    ctx = Context(agent="a", run_id="r", now=None, home=tmp_path, state={}, log=None)
    for touch, what in [
        (lambda: ctx.action("post", 1, lambda: None), "ctx.action"),
        (lambda: ctx.llm, "ctx.llm"),
        (lambda: ctx.memory, "ctx.memory"),
    ]:
        with pytest.raises(RuntimeError, match=f"belongs to no run: {re.escape(what)} needs"):
            touch()
