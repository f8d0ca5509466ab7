"""Copying agents between stores: under both leases, checked before anything is written.

Two file stores on tmp_path stand for the two ends; the command that uses
this (``agentops store copy``) is in tests/cli/test_store.py.
"""

from __future__ import annotations

import pytest

from agentops.errors import StateError, UsageError
from agentops.model.ledger import Ledger
from agentops.model.state import AgentState
from agentops.store.copy import copy_agents
from agentops.store.file import FileStore
from samples import full_state
from suite import DEAD_BEGIN, Project, dead_intent, write_journal


@pytest.fixture
def source(tmp_path):
    return FileStore(tmp_path / "source" / "state")


@pytest.fixture
def target(tmp_path):
    return FileStore(tmp_path / "target" / "state")


def commit(store: FileStore, state: AgentState, ledger: Ledger | None = None) -> None:
    with store.lease(state.agent, run_id="seed") as lease:
        store.commit(lease, state, ledger=ledger)


LINE = "2026-11-22T12:00:00Z committed run-1 null"


def ledger() -> Ledger:
    """A ledger with one committed action, changed (so a commit writes it)."""
    made = Ledger()
    made.put_line("publish", "k1", LINE)
    return made


def held(store: FileStore, name: str) -> list[object]:
    """What the store holds of the agent, comparable (a ledger by its entries)."""
    return [part.entries if isinstance(part, Ledger) else part for part in store.snapshot(name)]


def holds_nothing(store: FileStore, name: str) -> bool:
    return all(part is None for part in store.snapshot(name)[1:])


def test_an_agent_is_copied_whole_and_a_copy_there_and_back_changes_nothing(source, target):
    """State and ledger arrive as they were; copied back, the source holds what it held."""
    commit(source, full_state("pub"), ledger())
    before = held(source, "pub")
    assert copy_agents(["pub"], source, target, run_id="copy-1", overwrite=False) == ["pub"]
    assert target.load("pub") == source.load("pub")
    assert target.load_ledger("pub").entries == {"publish": {"k1": LINE}}
    copy_agents(["pub"], target, source, run_id="copy-2", overwrite=True)
    assert held(source, "pub") == before


def test_an_agent_that_never_ran_is_left_out(source, target):
    """Nothing to move: the list of copied agents does not name it, the target holds nothing."""
    assert copy_agents(["idle"], source, target, run_id="copy", overwrite=False) == []
    assert holds_nothing(target, "idle")


def test_a_journal_left_by_a_dead_run_refuses_the_copy_before_anything_is_written(
    tmp_path, source, target
):
    """Its commits are not in the state yet: copied without them they would repeat."""
    commit(source, full_state("ok"))
    commit(source, full_state("pub"))
    write_journal(Project(tmp_path / "source"), "pub", DEAD_BEGIN, dead_intent("k2"))
    with pytest.raises(StateError, match="left a journal"):
        copy_agents(["ok", "pub"], source, target, run_id="copy", overwrite=False)
    assert holds_nothing(target, "ok"), "not even the agent that could be copied"


def test_an_agent_the_target_holds_is_replaced_only_when_asked(source, target):
    """Without --overwrite: a usage error and the target as it was; with it, replaced."""
    commit(source, full_state("pub"))
    commit(target, AgentState(agent="pub", data={"mine": True}))
    with pytest.raises(UsageError, match="--overwrite"):
        copy_agents(["pub"], source, target, run_id="copy", overwrite=False)
    assert target.load("pub").data == {"mine": True}
    copy_agents(["pub"], source, target, run_id="copy", overwrite=True)
    assert target.load("pub") == source.load("pub")
