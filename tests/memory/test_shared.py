"""Notes kept in the PostgreSQL store: recalled on every home, ranked as the SQLite notes are.

The ranking tests of tests/memory/test_notes.py run again here, unchanged, over
the notes PostgreSQL keeps and searches (its own full-text search): the
``ranked`` fixture below gives them the same notes in the database.
"""

from __future__ import annotations

import shutil

import pytest

from agentops.memory.shared import SharedNotes
from agentops.ops.memory import read_memory
from agentops.project.config import MemoryConfig
from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import run_agent
from agentops.store import STORE_URL_ENV
from memory.test_notes import (  # the same tests, over this module's ``ranked``
    note,
    test_notes_that_match_no_word_are_not_returned,  # noqa: F401
    test_ranking_follows_each_weight_and_their_sum,  # noqa: F401
    test_scores_are_the_weighted_sum_of_normalised_parts,  # noqa: F401
)
from suite import MEMO, Project
from suite import T0 as NOW


@pytest.fixture
def ranked(store) -> SharedNotes:
    """The notes of tests/memory/test_notes.py's ``ranked``, kept by PostgreSQL."""
    notes = SharedNotes(store.note_rows("a"), agent="a")
    notes.add(
        [
            note("backup backup backup", hours_ago=72, importance=1),
            note("the nightly backup ran and then the cache was warm", importance=4),
            note(
                "restore the backup of the billing db before any migration",
                hours_ago=72,
                importance=10,
            ),
            note("the weather is fine", importance=10),
        ]
    )
    return notes


def test_tags_are_searched_stemmed_and_query_syntax_is_only_words(store):
    """A tag finds its note, "deploys" finds "deployed"; quotes and operators are no syntax."""
    notes = SharedNotes(store.note_rows("a"), agent="a")
    notes.add([note("it went well", tags=["billing"]), note("we deployed twice")])
    search = notes.search
    weights = MemoryConfig()
    assert [n.tags for n in search("billing", k=5, now=NOW, weights=weights)] == [("billing",)]
    assert [n.text for n in search("deploys", k=5, now=NOW, weights=MemoryConfig())] == [
        "we deployed twice"
    ]
    for text in ("it's", "a & b | !c", "'; DROP TABLE x; --", "(((", "the", "\\'"):
        assert isinstance(search(text, k=5, now=NOW, weights=MemoryConfig()), list)
    assert SharedNotes(store.note_rows("b"), agent="b").count() == 0, "notes are per agent"


def test_pending_notes_are_ranked_with_the_stored_ones(store):
    """The run's notes not yet written are searched in the same statement, ranked alike."""
    notes = SharedNotes(store.note_rows("a"), agent="a")
    notes.add([note("disk full on db-1", hours_ago=1, importance=2)])
    with_pending = notes.including([note("disk latency on db-2", importance=9)])
    found = with_pending.search("disk", k=5, now=NOW, weights=MemoryConfig())
    assert [n.text for n in found] == ["disk latency on db-2", "disk full on db-1"]
    assert notes.count() == 1, "a pending note is not written by a search"


def test_a_note_holding_a_nul_character_is_kept_with_a_replacement(store):
    """PostgreSQL's text holds no NUL: the note is kept with U+FFFD in its place, and found."""
    notes = SharedNotes(store.note_rows("a"), agent="a")
    pending = notes.including([note("nul\0here on the disk")])
    assert [n.text for n in pending.search("disk", k=5, now=NOW, weights=MemoryConfig())] == [
        "nul\0here on the disk"
    ]
    notes.add([note("nul\0here")])
    assert [n.text for n in notes.newest(5)] == ["nul\ufffdhere"]


def test_keep_bounds_the_notes_least_important_then_oldest(store):
    notes = SharedNotes(store.note_rows("a"), agent="a")
    for hours, (text, importance) in enumerate([("a5", 5), ("b9", 9), ("c5", 5), ("d1", 1)]):
        notes.add([note(text, hours_ago=10 - hours, importance=importance)], keep=3)
    assert [n.text for n in notes.newest(10)] == ["c5", "b9", "a5"]
    assert notes.add([note("e7", importance=7)], keep=3) == 1
    assert [n.text for n in notes.newest(10)] == ["e7", "c5", "b9"]


def test_a_note_written_on_one_home_is_recalled_on_another(tmp_path, store):
    """Two homes (two hosts, or two pods), one store: home B recalls what home A noted.

    No notes file is written on either home: the notes live in the database,
    and ``agentops memory`` reads them there too.
    """
    template = Project(tmp_path / "template")
    template.add_agent("memo", MEMO)
    homes = []
    for name in ("a", "b"):
        home = tmp_path / f"host-{name}"
        shutil.copytree(template.home / "agents", home / "agents")
        homes.append(AgentopsProject(home))
    environ = {STORE_URL_ENV: store.url}

    noted = run_agent(
        homes[0], "memo", environ=environ, overrides={"note": ["the db-1 disk is flaky"]}
    )
    assert noted.exit_code == 0, noted.message
    recalled = run_agent(homes[1], "memo", environ=environ, overrides={"search": "disk"})
    assert recalled.exit_code == 0, recalled.message
    found = [
        e["result"]["found"]
        for e in Project(homes[1].home).events("memo")
        if e["event"] == "run.finished"
    ]
    assert found == [["the db-1 disk is flaky"]]
    for home in homes:
        assert not list((home.home / "state").glob("*.memory.sqlite*"))
    view = read_memory(homes[1], "memo", now=NOW, store=store)
    assert [n.text for n in view.notes] == ["the db-1 disk is flaky"]
    assert view.notes_total == 1


def test_replace_makes_the_rows_every_note_of_the_agent_in_their_order(store):
    """What ``store copy`` writes: the agent's notes replaced in one commit, others untouched."""
    notes = SharedNotes(store.note_rows("a"), agent="a")
    notes.add([note("old one"), note("old two")])
    SharedNotes(store.note_rows("b"), agent="b").add([note("b's own")])
    rows = [(f"note {i}", '["t"]', 1000.0 - i, 1 + i % 10, f"run-{i}") for i in range(30)]
    store.note_rows("a").replace(rows)
    assert store.note_rows("a").every() == rows, "in the order given, as written"
    assert [text for text, *_ in store.note_rows("b").every()] == ["b's own"]
    store.note_rows("a").replace([])
    assert store.note_rows("a").count() == 0
