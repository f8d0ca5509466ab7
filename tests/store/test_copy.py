"""Copying agents between stores: under both leases, checked before anything is written.

Two file stores on tmp_path stand for the two ends, each with its notes
files beside its state; the command that uses this (``agentops store copy``),
and PostgreSQL at one end, are in tests/cli/test_store.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from agentops.errors import StateError, UsageError
from agentops.memory.notes import Note, NoteFile
from agentops.memory.shelf import Shelf
from agentops.model.ledger import Ledger
from agentops.model.state import AgentState
from agentops.store.base import Marker
from agentops.store.copy import copy_agents
from agentops.store.file import FileStore
from memstore import registered
from samples import full_state
from suite import DEAD_BEGIN, T0, Project, dead_intent, write_journal

if TYPE_CHECKING:
    from agentops.model.noterows import NoteShelf


@pytest.fixture
def source(tmp_path):
    return FileStore(tmp_path / "source" / "state")


@pytest.fixture
def target(tmp_path):
    return FileStore(tmp_path / "target" / "state")


def notes_of(source: FileStore, target: FileStore) -> tuple[NoteShelf, NoteShelf]:
    """Each store's notes: files beside its state."""
    return Shelf(source.note_rows, source.directory), Shelf(target.note_rows, target.directory)


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
    assert copy_agents(
        ["pub"], source, target, run_id="copy-1", overwrite=False, notes=notes_of(source, target)
    ) == ["pub"]
    assert target.load("pub") == source.load("pub")
    assert target.load_ledger("pub").entries == {"publish": {"k1": LINE}}
    copy_agents(
        ["pub"], target, source, run_id="copy-2", overwrite=True, notes=notes_of(target, source)
    )
    assert held(source, "pub") == before


def test_an_agent_that_never_ran_is_left_out(source, target):
    """Nothing to move: the list of copied agents does not name it, the target holds nothing."""
    assert (
        copy_agents(
            ["idle"], source, target, run_id="copy", overwrite=False, notes=notes_of(source, target)
        )
        == []
    )
    assert holds_nothing(target, "idle")


def test_a_journal_left_by_a_dead_run_refuses_the_copy_before_anything_is_written(
    tmp_path, source, target
):
    """Its commits are not in the state yet: copied without them they would repeat."""
    commit(source, full_state("ok"))
    commit(source, full_state("pub"))
    write_journal(Project(tmp_path / "source"), "pub", DEAD_BEGIN, dead_intent("k2"))
    with pytest.raises(StateError, match="left a journal"):
        copy_agents(
            ["ok", "pub"],
            source,
            target,
            run_id="copy",
            overwrite=False,
            notes=notes_of(source, target),
        )
    assert holds_nothing(target, "ok"), "not even the agent that could be copied"


def test_a_deadline_marker_not_yet_recorded_refuses_the_copy(tmp_path, target):
    """A shared store's marker of an ended run would be lost: its next run records it."""
    with registered() as memory:
        shared = memory.open("shared", options=None)  # type: ignore[arg-type]
        for name in ("ok", "pub"):
            with shared.lease(name, run_id="seed", ttl_s=60) as lease:
                shared.commit(lease, full_state(name))
        assert shared.publish_marker("pub", Marker("run-1", T0, ended=True, last_words="Timeout"))
        with pytest.raises(StateError, match="left the marker of a run its deadline ended"):
            copy_agents(
                ["ok", "pub"],
                shared,
                target,
                run_id="copy",
                overwrite=False,
                notes=(Shelf(shared.note_rows, tmp_path / "notes"), notes_of(target, target)[1]),
            )
    assert holds_nothing(target, "ok"), "not even the agent that could be copied"


def test_a_target_holding_a_dead_runs_marker_is_refused_even_with_overwrite(tmp_path, source):
    """Replaced, the marker would be recorded against the copied state, of a run it never had."""
    commit(source, full_state("pub"))
    with registered() as memory:
        shared = memory.open("target", options=None)  # type: ignore[arg-type]
        assert shared.publish_marker("pub", Marker("run-1", T0, ended=True, last_words="Timeout"))
        with pytest.raises(UsageError, match="left a journal or a deadline marker in the target"):
            copy_agents(
                ["pub"],
                source,
                shared,
                run_id="copy",
                overwrite=True,
                notes=(notes_of(source, source)[0], Shelf(shared.note_rows, tmp_path / "notes")),
            )
        assert shared.load("pub") == AgentState(agent="pub"), "nothing written"
        assert shared.remains("pub").markers != ()


def test_an_agent_the_target_holds_is_replaced_only_when_asked(source, target):
    """Without --overwrite: a usage error and the target as it was; with it, replaced."""
    commit(source, full_state("pub"))
    commit(target, AgentState(agent="pub", data={"mine": True}))
    with pytest.raises(UsageError, match="--overwrite"):
        copy_agents(
            ["pub"], source, target, run_id="copy", overwrite=False, notes=notes_of(source, target)
        )
    assert target.load("pub").data == {"mine": True}
    copy_agents(
        ["pub"], source, target, run_id="copy", overwrite=True, notes=notes_of(source, target)
    )
    assert target.load("pub") == source.load("pub")


# -- notes -----------------------------------------------------------------------------------


def note(text: str, *, hours_ago: float = 0.0, importance: int = 5) -> Note:
    return Note(text, ("ops",), T0 - timedelta(hours=hours_ago), importance, "run-1")


def add_notes(store: FileStore, name: str, *notes: Note) -> None:
    file = NoteFile.open(store.path(name, ".memory.sqlite"), agent=name, writable=True)
    assert file is not None
    try:
        file.add(notes)
    finally:
        file.close()


def notes_in(store: FileStore, name: str) -> list[tuple[str, str, str, str, str]]:
    """Every note's text, tags, time and importance, in the order written."""
    return [
        (text, tags, str(at), str(importance), run_id)
        for text, tags, at, importance, run_id in Shelf(store.note_rows, store.directory).read(name)
    ]


def copy(source: FileStore, target: FileStore, *names: str, overwrite: bool = False) -> list[str]:
    return copy_agents(
        names, source, target, run_id="copy", overwrite=overwrite, notes=notes_of(source, target)
    )


def test_notes_are_copied_whole_and_there_and_back_changes_nothing(source, target):
    """Text, tags, time, importance and order arrive as they were; copied back, the same."""
    commit(source, full_state("memo"))
    add_notes(source, "memo", note("disk full", hours_ago=2, importance=9), note("disk ok"))
    before = notes_in(source, "memo")
    assert copy(source, target, "memo") == ["memo"]
    assert notes_in(target, "memo") == before
    assert copy(target, source, "memo", overwrite=True) == ["memo"]
    assert notes_in(source, "memo") == before


def test_an_agent_without_notes_gets_no_notes_file(source, target):
    """Nothing to carry: the target has no notes file, and a copy back none either."""
    commit(source, full_state("pub"))
    copy(source, target, "pub")
    assert not target.path("pub", ".memory.sqlite").exists()


def test_notes_the_target_holds_refuse_the_copy_unless_overwrite_replaces_them(source, target):
    """Notes alone are something the target holds: refused (nothing written), then replaced."""
    commit(source, full_state("memo"))
    commit(source, full_state("pub"))
    add_notes(source, "memo", note("from the source"))
    add_notes(target, "memo", note("the target's own"))
    with pytest.raises(UsageError, match="memo: the target store holds this agent already"):
        copy(source, target, "memo", "pub")
    assert holds_nothing(target, "pub"), "not even the agent that could be copied"
    assert [n[0] for n in notes_in(target, "memo")] == ["the target's own"]
    copy(source, target, "memo", "pub", overwrite=True)
    assert [n[0] for n in notes_in(target, "memo")] == ["from the source"]


def test_overwrite_of_an_agent_without_notes_removes_the_targets_notes(source, target):
    """--overwrite makes the target hold what the source holds: no notes."""
    commit(source, full_state("memo"))
    add_notes(target, "memo", note("stale"))
    copy(source, target, "memo", overwrite=True)
    assert notes_in(target, "memo") == []


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda raw: b"not a database at all" + raw[21:], id="not-a-database"),
        pytest.param(lambda raw: raw[:4096] + b"\xff" * 4096 + raw[8192:], id="a-page-overwritten"),
    ],
)
def test_a_damaged_notes_file_refuses_the_copy_and_nothing_is_written(source, target, damage):
    """A notes file that is not whole: StateError (74) naming it, the target untouched."""
    commit(source, full_state("ok"))
    add_notes(source, "ok", note("fine"))
    commit(source, full_state("memo"))
    add_notes(source, "memo", *(note(f"note {i} " + "words " * 200) for i in range(40)))
    path = source.path("memo", ".memory.sqlite")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(StateError, match=r"memo\.memory\.sqlite: unreadable notes") as refused:
        copy(source, target, "ok", "memo")
    assert "\n" not in str(refused.value)
    assert holds_nothing(target, "ok")
    assert not target.path("ok", ".memory.sqlite").exists()
