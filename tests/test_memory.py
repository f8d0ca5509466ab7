"""Long-term notes: an SQLite FTS5 file per agent, ranked as Generative Agents' retrieval."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentops import notes as notes_module
from agentops.config import Memory
from agentops.errors import ConfigError, StateError
from agentops.notes import Note, NoteFile, fts_query, recency

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def note(text, *, hours_ago=0.0, importance=5, tags=()):
    return Note(text, tuple(tags), NOW - timedelta(hours=hours_ago), importance, "r")


@pytest.fixture
def ranked(tmp_path):
    """A notes file of known notes: each best on one part of the score."""
    file = NoteFile.open(tmp_path / "a.memory.sqlite", agent="a", writable=True)
    assert file is not None
    file.add(
        [
            # relevant: "backup" three times in a short note; old, unimportant
            note("backup backup backup", hours_ago=72, importance=1),
            # recent: "backup" once in ten words; now, middling
            note("the nightly backup ran and then the cache was warm", importance=4),
            # important: "backup" once in ten words; old, important
            note(
                "restore the backup of the billing db before any migration",
                hours_ago=72,
                importance=10,
            ),
            # matches nothing
            note("the weather is fine", importance=10),
        ]
    )
    yield file
    file.close()


def order(file, weights, query="backup"):
    return [n.text.split()[0:2] for n in file.search(query, k=10, now=NOW, weights=weights)]


def test_ranking_follows_each_weight_and_their_sum(ranked):
    """Relevance, recency and importance each put their best first; the weights trade them."""
    relevance = Memory(relevance_weight=1, recency_weight=0, importance_weight=0)
    recent = Memory(relevance_weight=0, recency_weight=1, importance_weight=0)
    important = Memory(relevance_weight=0, recency_weight=0, importance_weight=1)
    assert order(ranked, relevance)[0] == ["backup", "backup"]
    assert order(ranked, recent)[0] == ["the", "nightly"]
    assert order(ranked, important) == [
        ["restore", "the"],
        ["the", "nightly"],
        ["backup", "backup"],
    ]
    # The default weights, 1 each: 1.4 (recent), 1.225 (relevant), 1.125 (important).
    assert order(ranked, Memory()) == [
        ["the", "nightly"],
        ["backup", "backup"],
        ["restore", "the"],
    ]
    assert order(ranked, Memory(importance_weight=5))[0] == ["restore", "the"]
    assert order(ranked, Memory(relevance_weight=5))[0] == ["backup", "backup"]
    # A week's half-life: three days old is still 0.74 recent, and the new note falls last.
    assert order(ranked, Memory(recency_half_life="1w")) == [
        ["backup", "backup"],
        ["restore", "the"],
        ["the", "nightly"],
    ]


def test_scores_are_the_weighted_sum_of_normalised_parts(ranked):
    """score = wr*relevance + wc*recency + wi*importance/10, relevance min-max over matches."""
    found = ranked.search("backup", k=10, now=NOW, weights=Memory(recency_half_life="1d"))
    scores = {n.text.split()[0]: n.score for n in found}
    # Relevance: the best match 1, the two equal weaker ones 0; 72 hours is three half-lives.
    assert scores == {
        "the": pytest.approx(0 + 1 + 0.4),
        "backup": pytest.approx(1 + 0.125 + 0.1),
        "restore": pytest.approx(0 + 0.125 + 1.0),
    }
    alone = ranked.search("weather", k=10, now=NOW, weights=Memory())
    assert alone[0].score == pytest.approx(1 + 1 + 1.0)  # a lone match is fully relevant
    assert recency(86400, 86400) == 0.5
    assert recency(-60, 86400) == 1.0  # from the future: now


def test_notes_that_match_no_word_are_not_returned(ranked):
    """Only notes holding a word of the query are candidates; no word at all: nothing."""
    assert {n.text for n in ranked.search("weather", k=10, now=NOW, weights=Memory())} == {
        "the weather is fine"
    }
    assert ranked.search("xylophone", k=10, now=NOW, weights=Memory()) == []
    assert ranked.search("?!* -- ()", k=10, now=NOW, weights=Memory()) == []
    assert ranked.search("", k=10, now=NOW, weights=Memory()) == []
    assert len(ranked.search("backup", k=2, now=NOW, weights=Memory())) == 2


def test_tags_are_searched_and_stemming_matches_word_forms(tmp_path):
    """A tag finds its note; "deploys" finds "deployed" (porter stemming)."""
    file = NoteFile.open(tmp_path / "a.memory.sqlite", agent="a", writable=True)
    file.add([note("it went well", tags=["billing"]), note("we deployed twice")])
    assert [n.tags for n in file.search("billing", k=5, now=NOW, weights=Memory())] == [
        ("billing",)
    ]
    assert [n.text for n in file.search("deploys", k=5, now=NOW, weights=Memory())] == [
        "we deployed twice"
    ]
    file.close()


def test_the_fts_query_quotes_each_word_and_ors_them():
    """Operators and punctuation in free text are never FTS5 syntax."""
    assert (
        fts_query('deploy OR "db" NEAR(x) -y*')
        == '"deploy" OR "OR" OR "db" OR "NEAR" OR "x" OR "y"'
    )
    assert fts_query("Disk disk DISK") == '"Disk"'
    assert fts_query(" -- ?? ") is None
    assert fts_query("a " * 100).count('"') == 2
    assert fts_query(" ".join(f"w{i}" for i in range(100))).count(" OR ") == 31


@pytest.fixture(scope="module")
def fts_table():
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE VIRTUAL TABLE t USING fts5 (x, tokenize='porter unicode61 remove_diacritics 2')"
    )
    db.execute("INSERT INTO t VALUES ('hello wörld 42 naïve café')")
    yield db
    db.close()


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text())
def test_any_text_makes_a_query_sqlite_accepts(fts_table, text):
    """Whatever the text (control characters, surrogates, scripts), MATCH never errors."""
    query = fts_query(text)
    if query is None:
        assert not any(c.isalnum() for c in text)
        return
    fts_table.execute("SELECT rowid FROM t WHERE t MATCH ?", (query,)).fetchall()


# -- bounds ------------------------------------------------------------------------------


def test_a_write_cut_short_by_a_crash_loses_no_committed_note(tmp_path):
    """Killed mid-transaction: readers refuse the file, the next writer rolls back, notes intact."""
    path = tmp_path / "a.memory.sqlite"
    file = NoteFile.open(path, agent="a", writable=True)
    file.add([note(f"kept {i}") for i in range(50)])
    file.close()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child dies mid-write
        try:
            dying = NoteFile.open(path, agent="a", writable=True)
            dying._db.execute("PRAGMA cache_size = 2")  # spill to the file before the commit
            steps = [0]

            def die():
                steps[0] += 1
                if steps[0] > 2000:
                    os._exit(0)
                return 0

            dying._db.set_progress_handler(die, 100)
            dying.add([note("lost " + "x" * 2000) for _ in range(2000)])
        finally:
            os._exit(3)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0  # it died in the middle
    journal = path.with_name(path.name + "-journal")
    assert journal.stat().st_size > 0  # a hot journal: the write was cut short
    with pytest.raises(StateError, match="cut short"):
        NoteFile.open(path, agent="a").count()
    file = NoteFile.open(path, agent="a", writable=True)  # as the next run opens it
    assert file.count() == 50
    assert file._db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert len(file.search("kept", k=100, now=NOW, weights=Memory())) == 50
    file.close()


def test_a_sqlite_without_fts5_is_a_configuration_error(monkeypatch, tmp_path):
    """A Python whose SQLite lacks FTS5 is said plainly (78), before any file is made."""
    real_connect = sqlite3.connect

    class NoFts5:
        def __init__(self, *args, **kwargs):
            self.db = real_connect(*args, **kwargs)

        def execute(self, sql, *args):
            if "fts5" in sql:
                raise sqlite3.OperationalError("no such module: fts5")
            return self.db.execute(sql, *args)

        def close(self):
            self.db.close()

    notes_module._sqlite.cache_clear()
    monkeypatch.setattr(sqlite3, "connect", NoFts5)
    try:
        with pytest.raises(ConfigError, match="FTS5") as info:
            NoteFile.open(tmp_path / "a.memory.sqlite", agent="a", writable=True)
        assert info.value.exit_code == 78
        assert not (tmp_path / "a.memory.sqlite").exists()
    finally:
        notes_module._sqlite.cache_clear()
