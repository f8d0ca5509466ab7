"""The notes seam (:class:`~agentops.model.noterows.NoteRows`), held to what its docstrings promise.

The one store that keeps notes itself is PostgreSQL: its rows, on the
suite's server, answer each question of the protocol as documented (how
many, the newest first, the rows of ids, a search with the run's pending
notes, adding past a bound, every note in the order written, a replace),
one agent's notes apart from another's. How the answers are ranked is
tests/memory/test_shared.py's and test_ranking_parity.py's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from agentops.store.postgres import PostgresStore

if TYPE_CHECKING:
    from collections.abc import Iterator

    from agentops.model.noterows import NoteRows, StoredNote

WRITTEN: list[StoredNote] = [
    ("the feed moved to v2", '["feed"]', 300.0, 5, "run-1"),
    ("retry the mirror at night", "[]", 100.0, 2, "run-1"),
    ("the feed is slow on mondays", '["feed", "slow"]', 200.0, 2, "run-2"),
]
"""Written in this order, their times out of it."""


@pytest.fixture
def store(postgres) -> Iterator[PostgresStore]:
    """A fresh database whose tables ``agentops store init`` made."""
    found = PostgresStore(postgres.database())
    yield found
    found.close()


def written(store: PostgresStore, agent: str = "a") -> NoteRows:
    rows = store.note_rows(agent)
    assert rows is not None, "PostgreSQL keeps the notes itself"
    assert rows.add(WRITTEN, None) == 0
    return rows


def test_count_newest_and_rows_answer_from_what_was_written(store):
    """Newest by time first, up to the limit; rows by id; each (id, text, tags, at, imp, run)."""
    rows = written(store)
    assert rows.count() == 3
    newest = rows.newest(2)
    assert [row[1:] for row in newest] == [(*WRITTEN[0],), (*WRITTEN[2],)]
    ids = {row[1]: row[0] for row in rows.newest(10)}
    found = rows.rows([ids["retry the mirror at night"], ids["the feed moved to v2"]])
    assert sorted(row[1] for row in found) == ["retry the mirror at night", "the feed moved to v2"]
    assert rows.rows([]) == []


def test_every_note_comes_in_the_order_written_and_each_agent_has_its_own(store):
    """every(): the order of writing, not of time; another agent's notes are none of these."""
    rows = written(store)
    assert rows.every() == WRITTEN
    other = store.note_rows("b")
    assert other is not None
    assert other.count() == 0
    assert other.every() == []


def test_adding_past_the_bound_drops_the_least_important_oldest_first_and_says_how_many(store):
    """keep 3 after 2 more: the two of importance 2 go, the older first; the count is returned."""
    rows = written(store)
    more: list[StoredNote] = [
        ("a new important note", "[]", 400.0, 9, "run-3"),
        ("a newer minor note", "[]", 500.0, 2, "run-3"),
    ]
    assert rows.add(more, 3) == 2
    assert [note[0] for note in rows.every()] == [
        "the feed moved to v2",
        "a new important note",
        "a newer minor note",
    ]


def test_adding_nothing_writes_nothing_and_still_keeps_the_bound(store):
    """No rows: nothing added; past ``keep`` the least important, oldest go as ever."""
    rows = written(store)
    assert rows.add([], None) == 0
    assert rows.count() == 3
    assert rows.add([], 1) == 2
    assert [note[0] for note in rows.every()] == ["the feed moved to v2"]


def test_a_search_finds_stored_and_pending_notes_holding_a_word(store):
    """Stored notes by id, the run's pending ones as -1 - i; a rank below 0; no word: nothing."""
    rows = written(store)
    ids = {row[1]: row[0] for row in rows.newest(10)}
    pending = [("nothing to see", "[]", 600.0, 1), ("the feed is back", "[]", 700.0, 4)]
    found = {row[0]: row[1:] for row in rows.matches(["feed"], pending)}
    assert set(found) == {ids["the feed moved to v2"], ids["the feed is slow on mondays"], -2}
    assert found[-2][1:] == (700.0, 4)
    assert found[ids["the feed moved to v2"]][1:] == (300.0, 5)
    assert all(rank < 0 for rank, _, _ in found.values()), "lower is better, as bm25 in SQLite"
    assert rows.matches([], pending) == []


def test_replace_makes_the_rows_every_note_at_once(store):
    """The old notes go, the new ones come in the order given; none: the agent has no notes."""
    rows = written(store)
    rows.replace(WRITTEN[::-1])
    assert rows.every() == WRITTEN[::-1]
    rows.replace([])
    assert rows.count() == 0
