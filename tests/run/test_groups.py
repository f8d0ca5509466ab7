"""A group's limit: a run of a grouped agent holds one of its slots, waits for one, or is skipped.

In process, on the file store, with a fake clock whose waits are the run's
own sleeps: slots are held by the test as another run would hold them, and
given back from inside a wait to let the run through. The tick's share of
groups (several agents of a group due at once, an agent whose group is not
configured) is in tests/run/test_tick.py; across hosts, in
tests/processes/test_tick_hosts.py.
"""

from __future__ import annotations

import contextlib

import pytest

from agentops.project.home import Project as AgentopsProject
from agentops.run.groups import POLL_S
from agentops.store import open_store
from suite import FakeClock

GROUPED = 'group = "llm"\ntimeout = "30s"\n'


def grouped(project, limit: int) -> None:
    """An agent of group llm, whose limit is ``limit``."""
    (project.home / "agentops.toml").write_text(f"[groups]\nllm = {limit}\n")
    project.add_agent("agent", toml=GROUPED)


def test_a_free_slot_is_taken_without_a_wait_and_given_back(project):
    """Nothing held: the run goes at once, says nothing of the group, and frees its slot."""
    grouped(project, 1)
    clock = FakeClock()
    waits: list[float] = []
    outcome = project.run(clock=clock, sleep=waits.append)
    assert outcome.exit_code == 0, outcome.message
    assert waits == []
    assert not {"group.waiting", "group.slot_taken"} & set(project.event_names("agent"))
    with open_store(AgentopsProject(project.home)).group_slot("llm", 1) as held:
        assert held, "the run gave its slot back"


def test_a_run_waits_for_a_slot_and_takes_it_when_one_is_given_back(project):
    """Every slot held: group.waiting, polls; a slot freed: group.slot_taken, and the run runs."""
    grouped(project, 2)
    clock = FakeClock()
    store = open_store(AgentopsProject(project.home))
    waits: list[float] = []
    with contextlib.ExitStack() as elsewhere:
        for _ in range(2):
            assert elsewhere.enter_context(store.group_slot("llm", 2))

        def wait(seconds: float) -> None:
            waits.append(seconds)
            clock.advance(seconds=seconds)
            if len(waits) == 3:
                elsewhere.close()  # the other runs end

        outcome = project.run(clock=clock, sleep=wait)
    assert outcome.exit_code == 0, outcome.message
    assert waits == [POLL_S] * 3
    events = [e for e in project.events("agent") if e["event"].startswith("group.")]
    assert [(e["event"], e["group"], e["limit"]) for e in events] == [
        ("group.waiting", "llm", 2),
        ("group.slot_taken", "llm", 2),
    ]
    assert project.state("agent")["last_run"]["status"] == "succeeded"


def test_a_run_whose_group_stays_full_is_skipped_with_75_saying_why(project):
    """Both slots held for the whole timeout: 75 group_full, naming the group and its limit."""
    grouped(project, 2)
    clock = FakeClock()
    store = open_store(AgentopsProject(project.home))
    with store.group_slot("llm", 2) as first, store.group_slot("llm", 2) as second:
        assert first
        assert second
        outcome = project.run(clock=clock)
    assert (outcome.exit_code, outcome.reason) == (75, "group_full")
    assert outcome.message == "agent: every slot of group 'llm' (2) stayed taken for 30s"


def test_a_wait_ends_at_the_timeout_with_a_last_try_not_a_poll_past_it(project):
    """A timeout not a whole number of polls: the last wait is what is left, then one try."""
    (project.home / "agentops.toml").write_text("[groups]\nllm = 1\n")
    project.add_agent("agent", toml='group = "llm"\ntimeout = "1.2s"\n')
    clock = FakeClock()
    store = open_store(AgentopsProject(project.home))
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds=seconds)

    with store.group_slot("llm", 1) as held:
        assert held
        outcome = project.run(clock=clock, sleep=wait)
    assert (outcome.exit_code, outcome.reason) == (75, "group_full")
    assert waits == pytest.approx([POLL_S, POLL_S, 0.2])


def test_a_group_missing_from_agentops_toml_is_a_configuration_error(project):
    """78 before any wait, naming the file and the line to add."""
    project.add_agent("agent", toml=GROUPED)
    outcome = project.run(clock=FakeClock(), sleep=lambda _s: None)
    assert outcome.exit_code == 78
    assert "agent.toml:1: group 'llm' is not in agentops.toml's [groups]" in outcome.message
    assert "(add: llm = N, how many of its agents may run at once)" in outcome.message
