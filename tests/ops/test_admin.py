"""An operator's edits of an agent's state, as the library makes them: each one a logged edit.

The commands that call these (``pause``, ``reset``, ``state``, ``ledger``) are
tests/cli/test_admin.py's; here each edit is checked for what it changes,
what it leaves, and what it logs, on the fake clock.
"""

from __future__ import annotations

from agentops.model.ledger import Entry
from agentops.ops import admin
from agentops.project.home import Project as Home
from agentops.run.options import RunOptions
from suite import DEAD_BEGIN, RECONCILED, agent_source, dead_intent, logged, write_journal

FLAKY = agent_source(
    """
    ctx.spend(usd=0.1)
    ctx.state["runs"] = ctx.state.get("runs", 0) + 1
    if params.fail:
        raise RuntimeError("the feed is down")
    return Result()
    """,
    params="fail: bool = False",
)
TOML = '[limits]\nruns = "10/hour"\ncost_usd_per_day = 5.0\n[circuit]\nfailures = 1\n'


def options(clock) -> RunOptions:
    return RunOptions(clock=clock, environ={})


def test_reset_guards_clears_what_it_names_and_logs_it(project, clock):
    """The circuit alone is closed and the spends kept; then the spends and windows go, logged."""
    project.add_agent("agent", FLAKY, TOML)
    project.run(clock=clock, overrides={"fail": True})
    assert project.state("agent")["circuit"]["state"] == "open"
    closed = admin.reset_circuit(Home(project.home), "agent", options=options(clock))
    assert closed.exit_code == 0
    assert "circuit closed" in closed.message
    state = project.state("agent")
    assert state["circuit"]["state"] == "closed"
    assert len(state["budget"]["spends"]) == 1
    admin.reset_guards(
        Home(project.home), "agent", budget=True, limits=True, options=options(clock)
    )
    state = project.state("agent")
    assert (state["budget"]["spends"], state["rate_limits"]) == ([], {})
    assert state["data"] == {}, "the failed run kept no data, and a reset adds none"
    assert [e["spends"] for e in logged(project, "agent", "budget.reset")] == [1]
    assert len(logged(project, "agent", "limits.reset")) == 1


def test_restore_swaps_the_state_and_its_backup(project, clock):
    """After two runs, restore makes the first run's state current; a second restore undoes it."""
    project.add_agent("agent", FLAKY)
    project.run(clock=clock)
    project.run(clock=clock)
    assert project.state("agent")["data"] == {"runs": 2}
    admin.restore_state(Home(project.home), "agent", options=options(clock))
    assert project.state("agent")["data"] == {"runs": 1}
    admin.restore_state(Home(project.home), "agent", options=options(clock))
    assert project.state("agent")["data"] == {"runs": 2}


def test_pause_and_resume_need_no_state_and_say_what_they_did(project, clock):
    """A pause is kept beside the state; the runs after it are skipped; resume says if it was."""
    project.add_agent("agent", FLAKY)
    paused = admin.pause(Home(project.home), "agent", reason="upgrade", options=options(clock))
    assert paused.message == "agent: paused (upgrade)"
    skipped = project.run(clock=clock)
    assert (skipped.exit_code, skipped.reason) == (75, "paused")
    assert admin.resume(Home(project.home), "agent", options=options(clock)).message == (
        "agent: resumed"
    )
    again = admin.resume(Home(project.home), "agent", options=options(clock))
    assert again.message == "agent: was not paused"
    assert project.run(clock=clock).exit_code == 0


def test_resolving_an_unresolved_action_settles_it_and_the_next_run_goes_on(project, clock):
    """A crash left 'b' unresolved: marked done it is committed, never run again."""
    project.add_agent("agent", RECONCILED)
    write_journal(project, "agent", DEAD_BEGIN, dead_intent("b"))
    current = admin.current_ledger(Home(project.home), "agent")
    assert current.unresolved() == [("effect", "b")], "the journal is folded in, in memory"
    resolved = admin.resolve_action(
        Home(project.home), "agent", "b", done=True, options=options(clock)
    )
    assert resolved.exit_code == 0, resolved.message
    assert Entry.parse(project.ledger("agent")["effect"]["b"]).status == "committed"


def test_the_diff_shows_what_the_last_save_changed(project, clock):
    """state_diff is a unified diff of the backup and the state, nothing else."""
    project.add_agent("agent", FLAKY)
    project.run(clock=clock)
    clock.advance(minutes=1)
    project.run(clock=clock)
    diff = admin.state_diff(Home(project.home), "agent")
    assert '-    "runs": 1' in diff
    assert '+    "runs": 2' in diff
