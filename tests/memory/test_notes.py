"""The notes database: notes ranked as Generative Agents rank them, searched with FTS5.

Kept in an owner-only SQLite file, beside the state, that a crash cannot cut.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentops.errors import ConfigError, StateError
from agentops.memory.notes import Note, NoteFile, fts_query, recency
from agentops.project.config import MemoryConfig
from faults import FaultyFileSystem
from suite import MEMO, T0, memory_path, stored_notes


def note(text, *, hours_ago=0.0, importance=5, tags=()):
    return Note(text, tuple(tags), T0 - timedelta(hours=hours_ago), importance, "r")


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
    return [n.text.split()[0:2] for n in file.search(query, k=10, now=T0, weights=weights)]


def test_ranking_follows_each_weight_and_their_sum(ranked):
    """Relevance, recency and importance each put their best first; the weights trade them."""
    relevance = MemoryConfig(relevance_weight=1, recency_weight=0, importance_weight=0)
    recent = MemoryConfig(relevance_weight=0, recency_weight=1, importance_weight=0)
    important = MemoryConfig(relevance_weight=0, recency_weight=0, importance_weight=1)
    assert order(ranked, relevance)[0] == ["backup", "backup"]
    assert order(ranked, recent)[0] == ["the", "nightly"]
    assert order(ranked, important) == [
        ["restore", "the"],
        ["the", "nightly"],
        ["backup", "backup"],
    ]
    # The default weights, 1 each: 1.4 (recent), 1.225 (relevant), 1.125 (important).
    assert order(ranked, MemoryConfig()) == [
        ["the", "nightly"],
        ["backup", "backup"],
        ["restore", "the"],
    ]
    assert order(ranked, MemoryConfig(importance_weight=5))[0] == ["restore", "the"]
    assert order(ranked, MemoryConfig(relevance_weight=5))[0] == ["backup", "backup"]
    # A week's half-life: three days old is still 0.74 recent, and the new note falls last.
    assert order(ranked, MemoryConfig(recency_half_life="1w")) == [
        ["backup", "backup"],
        ["restore", "the"],
        ["the", "nightly"],
    ]


def test_scores_are_the_weighted_sum_of_normalised_parts(ranked):
    """score = wr*relevance + wc*recency + wi*importance/10, relevance min-max over matches."""
    found = ranked.search("backup", k=10, now=T0, weights=MemoryConfig(recency_half_life="1d"))
    scores = {n.text.split()[0]: n.score for n in found}
    # Relevance: the best match 1, the two equal weaker ones 0; 72 hours is three half-lives.
    assert scores == {
        "the": pytest.approx(0 + 1 + 0.4),
        "backup": pytest.approx(1 + 0.125 + 0.1),
        "restore": pytest.approx(0 + 0.125 + 1.0),
    }
    alone = ranked.search("weather", k=10, now=T0, weights=MemoryConfig())
    assert alone[0].score == pytest.approx(1 + 1 + 1.0)  # a lone match is fully relevant
    assert recency(86400, 86400) == 0.5
    assert recency(-60, 86400) == 1.0  # from the future: now


def test_notes_that_match_no_word_are_not_returned(ranked):
    """Only notes holding a word of the query are candidates; no word at all: nothing."""
    assert {n.text for n in ranked.search("weather", k=10, now=T0, weights=MemoryConfig())} == {
        "the weather is fine"
    }
    assert ranked.search("xylophone", k=10, now=T0, weights=MemoryConfig()) == []
    assert ranked.search("?!* -- ()", k=10, now=T0, weights=MemoryConfig()) == []
    assert ranked.search("", k=10, now=T0, weights=MemoryConfig()) == []
    assert len(ranked.search("backup", k=2, now=T0, weights=MemoryConfig())) == 2


def test_tags_are_searched_and_stemming_matches_word_forms(tmp_path):
    """A tag finds its note; "deploys" finds "deployed" (porter stemming)."""
    file = NoteFile.open(tmp_path / "a.memory.sqlite", agent="a", writable=True)
    file.add([note("it went well", tags=["billing"]), note("we deployed twice")])
    assert [n.tags for n in file.search("billing", k=5, now=T0, weights=MemoryConfig())] == [
        ("billing",)
    ]
    assert [n.text for n in file.search("deploys", k=5, now=T0, weights=MemoryConfig())] == [
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


def test_keep_notes_drops_the_least_important_then_the_oldest(project, clock):
    """[memory] keep_notes bounds the file: lowest importance first, of those the oldest."""
    project.add_agent("memo", MEMO, "[memory]\nkeep_notes = 3\n")
    for text, importance in [("a5", 5), ("b9", 9), ("c5", 5), ("d1", 1)]:
        project.run("memo", clock=clock, overrides={"note": [text], "importance": importance})
        clock.advance(minutes=1)
    assert stored_notes(project) == ["a5", "b9", "c5"]  # d1 was the least important
    project.run("memo", clock=clock, overrides={"note": ["e7"], "importance": 7})
    assert stored_notes(project) == ["b9", "c5", "e7"]  # then a5, the older of the fives
    dropped = [e["dropped"] for e in project.events("memo") if e["event"] == "memory.saved"]
    assert dropped == [0, 0, 0, 1, 1]


def test_the_notes_file_and_its_journal_are_owner_only(project, clock):
    """state/<name>.memory.sqlite and its journal are 0600, in a 0700 directory."""
    project.add_agent("memo", MEMO)
    project.run("memo", clock=clock, overrides={"note": ["x"]})
    path = memory_path(project)
    journal = path.with_name(path.name + "-journal")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(journal.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    assert not path.with_name(path.name + "-wal").exists()


@pytest.mark.parametrize("suffix", ["", "-journal", "-wal"])
def test_a_link_planted_at_the_notes_file_is_refused_and_nothing_outside_is_written(
    project, clock, tmp_path, suffix
):
    """A symbolic link at the file or a sidecar: one line, exit 74, its target untouched."""
    project.add_agent("memo", MEMO)
    project.run("memo", clock=clock, overrides={"note": ["first"]})
    target = tmp_path / "outside"
    target.write_bytes(b"")
    link = memory_path(project).with_name(memory_path(project).name + suffix)
    link.unlink(missing_ok=True)
    link.symlink_to(target)
    state_before = project.state("memo")
    outcome = project.run("memo", clock=clock, overrides={"note": ["second"]})
    assert outcome.exit_code == 74
    assert "symbolic link" in outcome.message
    assert target.read_bytes() == b""
    assert link.is_symlink()
    # The run itself succeeded and its state is saved: only its notes are lost.
    assert project.state("memo")["metrics"]["succeeded"] == state_before["metrics"]["succeeded"] + 1
    searching = project.run("memo", clock=clock, overrides={"search": "first"})
    assert searching.exit_code == 74
    assert target.read_bytes() == b""


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"this is not a database, it is text" * 200, "not a database"),
        (b"SQLite format 3\x00" + b"\xff" * 4000, "unreadable notes"),
        ("other", "not an agentops notes file"),
        ("future", "newer agentops"),
    ],
)
def test_an_unreadable_notes_file_is_74_in_one_line_and_left_as_it_is(
    project, clock, invoke, content, why
):
    """A run that searches, a run that notes and agentops memory all refuse it, untouched."""
    project.add_agent("memo", MEMO)
    path = memory_path(project)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if content == "other":
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE mine (x)")
        db.commit()
        db.close()
    elif content == "future":
        db = sqlite3.connect(path)
        db.execute("PRAGMA user_version = 99")
        db.commit()
        db.close()
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    searching = project.run("memo", clock=clock, overrides={"search": "x"})
    assert searching.exit_code == 74
    assert why in searching.message
    assert "left as it is" in searching.message
    noting = project.run("memo", clock=clock, overrides={"note": ["x"]})
    assert noting.exit_code == 74
    result = invoke("memory", "memo")
    assert result.exit_code == 74
    assert len(result.stderr.strip().splitlines()) == 1
    assert why in result.stderr
    assert path.read_bytes() == before


@pytest.mark.parametrize("name", ["memo.memory.sqlite", "memo.memory.sqlite-journal"])
@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EACCES])
def test_a_notes_file_that_cannot_be_made_is_74_after_the_state_is_saved(
    project, clock, name, error
):
    """The notes are lost and said in one line; the run's state is kept; the next run notes."""
    project.add_agent("memo", MEMO)
    faulty = FaultyFileSystem("open", where=f"*/{name}", error=error)
    outcome = project.run("memo", clock=clock, fs=faulty, overrides={"note": ["lost"]})
    assert faulty.failed is not None
    assert outcome.exit_code == 74
    assert outcome.message.startswith(f"{project.home / 'state' / name}: cannot create")
    assert project.state("memo")["last_run"]["status"] == "succeeded"
    assert "memory.save_failed" in project.event_names("memo")
    assert project.run("memo", clock=clock, overrides={"note": ["kept"]}).exit_code == 0
    assert stored_notes(project) == ["kept"]


def test_files_are_owner_only_whatever_the_umask(project, clock):
    """With umask 0 the notes file and its journal are still 0600."""
    project.add_agent("memo", MEMO)
    old = os.umask(0)
    try:
        project.run("memo", clock=clock, overrides={"note": ["x"]})
    finally:
        os.umask(old)
    path = memory_path(project)
    assert {p.name: p.stat().st_mode & 0o777 for p in path.parent.glob("*.memory.sqlite*")} == {
        "memo.memory.sqlite": 0o600,
        "memo.memory.sqlite-journal": 0o600,
    }


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
    assert len(file.search("kept", k=100, now=T0, weights=MemoryConfig())) == 50
    file.close()


@pytest.mark.usefixtures("no_fts5")
def test_a_sqlite_without_fts5_is_a_configuration_error(tmp_path):
    """A Python whose SQLite lacks FTS5 is said plainly (78), before any file is made."""
    with pytest.raises(ConfigError, match="FTS5") as info:
        NoteFile.open(tmp_path / "a.memory.sqlite", agent="a", writable=True)
    assert info.value.exit_code == 78
    assert not (tmp_path / "a.memory.sqlite").exists()
