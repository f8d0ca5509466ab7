"""What a run keeps, in order: ``ctx.state`` as JSON, the ledger pruned, then the notes."""

from __future__ import annotations

import os

import pytest

from agentops._infra.redact import REDACTED
from suite import agent_source

KEEPER = agent_source(
    """
    ctx.state["runs"] = ctx.state.get("runs", 0) + 1
    ctx.state["token"] = os.environ["FAKE_OPENAI_KEY"]
    if params.act:
        ctx.action("publish", key=ctx.run_id, do=lambda: "sent")
    if params.note:
        ctx.memory.note(params.note)
    if params.fail:
        raise RuntimeError("the feed is down")
    return Result()
    """,
    params='act: bool = False\nnote: str = ""\nfail: bool = False',
    imports="import os",
)


def test_a_successful_run_keeps_its_state_redacted(project, clock):
    """ctx.state is committed as the next run will see it, with the secrets it held replaced."""
    project.add_agent("agent", KEEPER)
    assert project.run(clock=clock).exit_code == 0
    assert project.run(clock=clock).exit_code == 0
    data = project.state("agent")["data"]
    assert data == {"runs": 2, "token": REDACTED}
    assert os.environ["FAKE_OPENAI_KEY"] not in project.state_path("agent").read_text()


@pytest.mark.parametrize(("how", "options"), [("failed", {"fail": True}), ("dry run", {})])
def test_a_failed_or_dry_run_keeps_no_state(project, clock, how, options):
    """What a failed run or a dry run did to ctx.state is dropped: the state holds the last kept."""
    project.add_agent("agent", KEEPER)
    assert project.run(clock=clock).exit_code == 0
    before = project.state("agent")["data"]
    project.run(clock=clock, overrides=options, dry_run=how == "dry run")
    assert project.state("agent")["data"] == before


def test_the_journal_is_dropped_as_the_state_is_committed(project, clock):
    """A run that acted leaves no journal, and its state names the run whose journal it folded."""
    project.add_agent("agent", KEEPER)
    outcome = project.run(clock=clock, overrides={"act": True})
    assert outcome.exit_code == 0
    assert not list((project.home / "state").glob("agent.journal*"))
    assert project.state("agent")["journal_folded"] == outcome.run_id
    assert list(project.ledger("agent")["publish"]) == [outcome.run_id]


def test_the_ledger_forgets_actions_older_than_keep_when_it_is_committed(project, clock):
    """[ledger] keep = "1d": an action two days old is pruned by the next run that acts."""
    project.add_agent("agent", KEEPER, '[ledger]\nkeep = "1d"\n')
    first = project.run(clock=clock, overrides={"act": True})
    clock.advance(days=2)
    second = project.run(clock=clock, overrides={"act": True})
    assert list(project.ledger("agent")["publish"]) == [second.run_id]
    assert first.run_id != second.run_id


def test_notes_are_written_after_the_state(project, clock):
    """memory.saved is logged after the state was committed, and only by a run that kept it."""
    project.add_agent("agent", KEEPER)
    project.run(clock=clock, overrides={"note": "kept", "fail": False})
    project.run(clock=clock, overrides={"note": "dropped", "fail": True})
    saved = [e for e in project.events("agent") if e["event"] == "memory.saved"]
    assert [e["notes"] for e in saved] == [1]
    assert project.state("agent")["metrics"]["notes"] == 1


UNSAVABLE_STATE = agent_source(
    """
    if params.deep:
        nested = []
        for _ in range(100_000):
            nested = [nested]
        ctx.state["x"] = nested
    else:
        loop = {}
        loop["self"] = loop
        ctx.state["x"] = loop
    return Result(ok=True)
    """,
    params="deep: bool = False",
    result="ok: bool",
)


@pytest.mark.parametrize("deep", ["false", "true"])
def test_a_state_that_cannot_be_json_fails_the_run_in_one_line(project, invoke, deep):
    """A cycle, or nesting past any parser, in ctx.state: the task failed (1), not agentops (70)."""
    project.add_agent("cyc", UNSAVABLE_STATE)
    result = invoke("run", "cyc", "-p", f"deep={deep}")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert "ctx.state holds a value that is not JSON" in line
    assert project.state("cyc")["data"] == {}  # the failed run's state is not kept
