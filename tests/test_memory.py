"""ctx.memory: working memory with a time to live, long-term notes ranked as Generative Agents.

Working memory lives in the state file and notes in ``state/<name>.memory.sqlite``;
both follow the run's transaction as ``ctx.state`` does.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentops._infra.fs import FileSystem
from agentops._infra.redact import Redactor
from agentops.errors import ConfigError, StateError
from agentops.memory import notes as notes_module
from agentops.memory.notes import Note, NoteFile, fts_query, recency
from agentops.memory.run import RunMemory
from agentops.model.state import AgentState, Remembered
from agentops.ops.memory import KEYS, NOTE_KEYS, WORKING_KEYS
from agentops.project.config import MemoryConfig
from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import run_agent
from agentops.testing import AgentHarness
from faults import FaultyFileSystem
from leakscan import FAKE_SECRETS, scan_tree

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

# An agent driven by its params: what to remember, note, recall and search.
MEMO = """
from typing import Any
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    remember: dict[str, Any] = {}
    ttl: str | float | None = None
    forget: list[str] = []
    recall: list[str] = []
    note: list[str] = []
    importance: int = 5
    tags: list[str] = []
    search: str | None = None
    k: int = 5

class Result(BaseModel):
    recalled: dict[str, Any]
    found: list[str]

def run(params: Params, ctx: Context) -> Result:
    recalled = {key: ctx.memory.recall(key) for key in params.recall}
    for key, value in params.remember.items():
        ctx.memory.remember(key, value, ttl=params.ttl)
    for key in params.forget:
        ctx.memory.forget(key)
    for text in params.note:
        ctx.memory.note(text, tags=params.tags, importance=params.importance)
    found = []
    if params.search is not None:
        found = [n.text for n in ctx.memory.relevant(params.search, k=params.k)]
    return Result(recalled=recalled, found=found)
"""


def run(project, name="memo", **kwargs):
    return run_agent(AgentopsProject(project.home), name, environ={}, **kwargs)


def memory_path(project, name="memo") -> Path:
    return project.home / "state" / f"{name}.memory.sqlite"


def stored_notes(project, name="memo") -> list[str]:
    """The texts in the notes file, oldest first (read with plain sqlite3)."""
    path = memory_path(project, name)
    if not path.exists():
        return []
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute("SELECT text FROM notes ORDER BY at, id")]
    finally:
        db.close()


def run_memory(tmp_path, clock, **kwargs) -> RunMemory:
    defaults = {
        "agent": "a",
        "run_id": "r1",
        "working": {},
        "config": MemoryConfig(),
        "path": tmp_path / "state" / "a.memory.sqlite",
        "clock": clock,
        "redactor": Redactor({}),
        "fs": FileSystem(),
    }
    return RunMemory(**(defaults | kwargs))


# -- working memory ----------------------------------------------------------------------


def test_remember_recall_forget_and_expiry_by_the_runs_clock(tmp_path, clock):
    """A value is recalled until its ttl has passed on the injected clock, and forgotten at once."""
    memory = run_memory(tmp_path, clock)
    memory.remember("topic", {"n": 1}, ttl="2h")
    memory.remember("cursor", 42, ttl=90)
    memory.remember("forever", "x")
    assert memory.recall("topic") == {"n": 1}
    clock.advance(seconds=89)
    assert memory.recall("cursor") == 42
    clock.advance(seconds=1)
    assert memory.recall("cursor") is None  # exactly at its expiry it is gone
    assert memory.recall("cursor", "gone") == "gone"
    clock.advance(hours=2)
    assert memory.recall("topic") is None
    assert memory.recall("forever") == "x"
    memory.forget("forever")
    memory.forget("never-there")
    assert memory.recall("forever") is None
    assert not (tmp_path / "state").exists()  # working memory never touches the notes file


def test_remembered_values_are_copies(tmp_path, clock):
    """Changing an object after remembering it, or what recall returned, changes nothing kept."""
    memory = run_memory(tmp_path, clock)
    value = {"items": [1, 2]}
    memory.remember("v", value)
    value["items"].append(3)
    memory.recall("v")["items"].append(4)
    assert memory.recall("v") == {"items": [1, 2]}


@pytest.mark.parametrize(
    ("key", "value", "ttl", "error"),
    [
        ("k", float("nan"), None, ValueError),
        ("k", object(), None, ValueError),
        ("k", {"deep": 1e400}, None, ValueError),
        ("k", 1, 0, ValueError),
        ("k", 1, "-5m", ValueError),
        ("k", 1, "soon", ValueError),
        ("k", 1, True, ValueError),
        (3, 1, None, TypeError),
        ("", 1, None, TypeError),
        ("\udc80", 1, None, ValueError),
    ],
)
def test_remember_refuses_what_the_state_file_could_not_hold(
    tmp_path, clock, key, value, ttl, error
):
    """Values must be JSON and finite (as ctx.state's), ttls durations, keys non-empty strs."""
    memory = run_memory(tmp_path, clock)
    with pytest.raises(error):
        memory.remember(key, value, ttl=ttl)
    assert memory.kept() == {}


def test_working_memory_is_saved_with_the_state_and_expired_entries_dropped(project, clock):
    """The state file's memory holds each entry and its expiry; expired ones go when saved."""
    project.add_agent("memo", MEMO)
    run(project, clock=clock, overrides={"remember": {"short": 1}, "ttl": "10m"})
    run(project, clock=clock, overrides={"remember": {"long": [1, "two"]}, "ttl": "1d"})
    memory = project.state("memo")["memory"]
    assert memory == {
        "short": {"value": 1, "expires_at": "2026-11-22T12:10:00Z"},
        "long": {"value": [1, "two"], "expires_at": "2026-11-23T12:00:00Z"},
    }
    clock.advance(minutes=10)
    outcome = run(project, clock=clock, overrides={"recall": ["short", "long"]})
    assert outcome.exit_code == 0
    assert project.events("memo")[-1]["result"]["recalled"] == {"short": None, "long": [1, "two"]}
    assert list(project.state("memo")["memory"]) == ["long"]


def test_expired_entries_are_dropped_by_any_save_even_of_a_run_that_never_touched_memory(
    project, clock
):
    """Saving the state drops what expired, whether or not the run used ctx.memory."""
    project.add_agent("memo", MEMO)
    run(project, clock=clock, overrides={"remember": {"k": 1}, "ttl": "1m"})
    clock.advance(minutes=2)
    run(project, clock=clock)
    assert project.state("memo")["memory"] == {}


def test_a_state_file_without_memory_loads_and_a_bad_entry_is_refused():
    """Older state files have no memory (empty); an entry holding NaN does not validate."""
    assert AgentState.model_validate({"schema_version": 2, "agent": "a"}).memory == {}
    bad = {"schema_version": 2, "agent": "a", "memory": {"k": {"value": float("nan")}}}
    with pytest.raises(ValueError, match=r"finite|NaN"):
        AgentState.model_validate(bad)
    entry = Remembered(value=1, expires_at=NOW)
    assert entry.expired(NOW)
    assert not entry.expired(NOW - timedelta(seconds=1))


# -- the run's transaction ---------------------------------------------------------------

FLAKY = """
from pydantic import BaseModel
from agentops import Context, TransientError

class Params(BaseModel):
    pass

class Result(BaseModel):
    attempt: int
    before: object
    found: list[str]

def run(params: Params, ctx: Context) -> Result:
    marker = ctx.home / "attempts"
    attempt = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(attempt))
    before = ctx.memory.recall("k")
    found = [n.text for n in ctx.memory.relevant("attempt")]
    ctx.memory.remember("k", f"attempt {attempt}")
    ctx.memory.note(f"noted by attempt {attempt}")
    if attempt == 1:
        raise TransientError("try again")
    return Result(attempt=attempt, before=before, found=found)
"""


def test_a_retry_attempt_starts_from_the_memory_the_run_loaded(project, clock):
    """What a failed attempt remembered or noted is gone: the retry sees neither."""
    project.add_agent("memo", FLAKY)
    outcome = run(project, clock=clock, sleep=lambda _s: None)
    assert outcome.exit_code == 0, outcome.message
    result = project.events("memo")[-1]["result"]
    assert result["attempt"] == 2
    assert result["before"] is None  # attempt 1's remember() did not carry over
    assert result["found"] == []  # nor did its note
    assert stored_notes(project) == ["noted by attempt 2"]
    assert project.state("memo")["memory"]["k"]["value"] == "attempt 2"


OUTCOMES = MEMO.replace("    k: int = 5\n", "    k: int = 5\n    outcome: str = 'ok'\n").replace(
    "    return Result(recalled=recalled, found=found)",
    """    if params.outcome == "fail":
        raise RuntimeError("it broke")
    if params.outcome == "model":
        return {"recalled": "not a dict", "found": found}
    return Result(recalled=recalled, found=found)

def validate(result, ctx):
    if ctx.params.outcome == "validate":
        raise ValueError("not good enough")""",
)


@pytest.mark.parametrize("how", ["model", "validate", "fail", "dry_run"])
def test_a_run_that_is_not_kept_keeps_no_memory_and_writes_no_notes(project, clock, how):
    """A rejected output (Result model or validate()), a failed run, a dry run: nothing kept."""
    project.add_agent("memo", OUTCOMES)
    seed = run(project, clock=clock, overrides={"remember": {"k": 1}, "note": ["kept"]})
    assert seed.exit_code == 0
    files = {k: v for k, v in project.snapshot().items() if ".memory.sqlite" in k}
    overrides = {"remember": {"k": 2}, "note": ["discarded"], "search": "kept discarded"}
    outcome = run(
        project,
        clock=clock,
        overrides={**overrides, "outcome": "ok" if how == "dry_run" else how},
        dry_run=how == "dry_run",
    )
    assert outcome.exit_code == {"model": 65, "validate": 65, "fail": 1, "dry_run": 0}[how]
    assert {k: v for k, v in project.snapshot().items() if ".memory.sqlite" in k} == files
    assert stored_notes(project) == ["kept"]
    assert project.state("memo")["memory"]["k"]["value"] == 1
    assert project.state("memo")["metrics"]["notes"] == 1
    if how == "dry_run":  # it saw its own note all the same
        assert project.events("memo")[-1]["result"]["found"] == ["discarded", "kept"]


# An agent that calls every public method of ctx.memory (whatever dir() shows, so a
# method added later is called too), records how each call went, then fails.
EVERY_METHOD = """
import json
from pydantic import BaseModel
from agentops import Context

ARGS = {
    "remember": ("k", 2),
    "note": ("discarded",),
    "recall": ("k",),
    "forget": ("other",),
    "relevant": ("kept discarded",),
}

class Params(BaseModel):
    pass

class Result(BaseModel):
    pass

def run(params: Params, ctx: Context) -> Result:
    called = {}
    for name in sorted(name for name in dir(ctx.memory) if not name.startswith("_")):
        # Something to keep before each call: a method that kept anything would keep it.
        ctx.memory.remember("k", 2)
        ctx.memory.note("discarded")
        try:
            getattr(ctx.memory, name)(*ARGS.get(name, ()))
        except Exception as exc:
            called[name] = f"{type(exc).__name__}: {exc}"
        else:
            called[name] = "called"
    (ctx.home / "called.json").write_text(json.dumps(called))
    raise RuntimeError("the run fails after touching every method of ctx.memory")
"""


def test_a_run_that_calls_every_public_method_of_memory_then_raises_keeps_nothing(project, clock):
    """Whatever an agent calls on ctx.memory, a failed run keeps no note and no working memory."""
    project.add_agent("memo", MEMO)
    seed = run(project, clock=clock, overrides={"remember": {"k": 1}, "note": ["kept"]})
    assert seed.exit_code == 0
    files = {k: v for k, v in project.snapshot().items() if ".memory.sqlite" in k}
    project.add_agent("memo", EVERY_METHOD)
    outcome = run(project, clock=clock)
    assert (outcome.status, outcome.exit_code) == ("failed", 1), outcome.message
    assert {k: v for k, v in project.snapshot().items() if ".memory.sqlite" in k} == files
    assert stored_notes(project) == ["kept"]
    assert project.state("memo")["memory"] == {"k": {"value": 1, "expires_at": None}}
    assert project.state("memo")["metrics"]["notes"] == 1
    called = json.loads((project.home / "called.json").read_text())
    assert set(called) >= {"remember", "recall", "forget", "note", "relevant"}
    assert all(how == "called" for how in called.values()), f"give ARGS for: {called}"


def test_relevant_sees_the_notes_this_attempt_made_ranked_with_the_stored_ones(project, clock):
    """Read your writes: a note made in this run is found at once, as it will be found later."""
    project.add_agent("memo", MEMO)
    run(project, clock=clock, overrides={"note": ["disk full on db-1"], "importance": 2})
    clock.advance(minutes=5)
    run(
        project,
        clock=clock,
        overrides={"note": ["disk latency on db-2"], "importance": 9, "search": "disk"},
    )
    assert project.events("memo")[-1]["result"]["found"] == [
        "disk latency on db-2",
        "disk full on db-1",
    ]
    clock.advance(minutes=5)
    run(project, clock=clock, overrides={"search": "disk"})
    assert project.events("memo")[-1]["result"]["found"] == [
        "disk latency on db-2",
        "disk full on db-1",
    ]


def test_notes_are_written_after_the_state_and_counted(project, clock):
    """memory.saved follows the state's save; metrics.notes counts the notes kept."""
    project.add_agent("memo", MEMO)
    run(project, clock=clock, overrides={"note": ["one", "two"]})
    run(project, clock=clock, overrides={"note": ["three"]})
    run(project, clock=clock)
    assert stored_notes(project) == ["one", "two", "three"]
    assert project.state("memo")["metrics"]["notes"] == 3
    saved = [e for e in project.events("memo") if e["event"] == "memory.saved"]
    assert [(e["notes"], e["dropped"]) for e in saved] == [(2, 0), (1, 0)]


# -- ranking -----------------------------------------------------------------------------


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
    found = ranked.search("backup", k=10, now=NOW, weights=MemoryConfig(recency_half_life="1d"))
    scores = {n.text.split()[0]: n.score for n in found}
    # Relevance: the best match 1, the two equal weaker ones 0; 72 hours is three half-lives.
    assert scores == {
        "the": pytest.approx(0 + 1 + 0.4),
        "backup": pytest.approx(1 + 0.125 + 0.1),
        "restore": pytest.approx(0 + 0.125 + 1.0),
    }
    alone = ranked.search("weather", k=10, now=NOW, weights=MemoryConfig())
    assert alone[0].score == pytest.approx(1 + 1 + 1.0)  # a lone match is fully relevant
    assert recency(86400, 86400) == 0.5
    assert recency(-60, 86400) == 1.0  # from the future: now


def test_notes_that_match_no_word_are_not_returned(ranked):
    """Only notes holding a word of the query are candidates; no word at all: nothing."""
    assert {n.text for n in ranked.search("weather", k=10, now=NOW, weights=MemoryConfig())} == {
        "the weather is fine"
    }
    assert ranked.search("xylophone", k=10, now=NOW, weights=MemoryConfig()) == []
    assert ranked.search("?!* -- ()", k=10, now=NOW, weights=MemoryConfig()) == []
    assert ranked.search("", k=10, now=NOW, weights=MemoryConfig()) == []
    assert len(ranked.search("backup", k=2, now=NOW, weights=MemoryConfig())) == 2


def test_tags_are_searched_and_stemming_matches_word_forms(tmp_path):
    """A tag finds its note; "deploys" finds "deployed" (porter stemming)."""
    file = NoteFile.open(tmp_path / "a.memory.sqlite", agent="a", writable=True)
    file.add([note("it went well", tags=["billing"]), note("we deployed twice")])
    assert [n.tags for n in file.search("billing", k=5, now=NOW, weights=MemoryConfig())] == [
        ("billing",)
    ]
    assert [n.text for n in file.search("deploys", k=5, now=NOW, weights=MemoryConfig())] == [
        "we deployed twice"
    ]
    file.close()


def test_the_weights_of_agent_toml_rank_a_runs_notes(project, clock):
    """[memory] in agent.toml changes what relevant() puts first."""
    project.add_agent("memo", MEMO)
    run(project, clock=clock, overrides={"note": ["old disk note"], "importance": 10})
    clock.advance(days=3)
    run(project, clock=clock, overrides={"note": ["new disk note"], "importance": 1})
    for toml, first in [
        ("[memory]\nrecency_weight = 0\n", "old disk note"),
        ("[memory]\nimportance_weight = 0\n", "new disk note"),
    ]:
        project.add_agent("memo", MEMO, toml)
        run(project, clock=clock, overrides={"search": "disk"})
        assert project.events("memo")[-1]["result"]["found"][0] == first


# -- the FTS query -----------------------------------------------------------------------


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


def test_keep_notes_drops_the_least_important_then_the_oldest(project, clock):
    """[memory] keep_notes bounds the file: lowest importance first, of those the oldest."""
    project.add_agent("memo", MEMO, "[memory]\nkeep_notes = 3\n")
    for text, importance in [("a5", 5), ("b9", 9), ("c5", 5), ("d1", 1)]:
        run(project, clock=clock, overrides={"note": [text], "importance": importance})
        clock.advance(minutes=1)
    assert stored_notes(project) == ["a5", "b9", "c5"]  # d1 was the least important
    run(project, clock=clock, overrides={"note": ["e7"], "importance": 7})
    assert stored_notes(project) == ["b9", "c5", "e7"]  # then a5, the older of the fives
    dropped = [e["dropped"] for e in project.events("memo") if e["event"] == "memory.saved"]
    assert dropped == [0, 0, 0, 1, 1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": ""}, "non-empty"),
        ({"text": 5}, "non-empty"),
        ({"text": "x" * 100_001}, "at most"),
        ({"importance": 0}, "1 to 10"),
        ({"importance": 11}, "1 to 10"),
        ({"importance": True}, "1 to 10"),
        ({"importance": 5.0}, "1 to 10"),
        ({"tags": "ops"}, "tags"),
        ({"tags": ["ops", ""]}, "tags"),
        ({"tags": ["t"] * 51}, "tags"),
    ],
)
def test_note_refuses_bad_notes(tmp_path, clock, kwargs, message):
    """Text, tags and importance (an int from 1 to 10) are checked when noted."""
    memory = run_memory(tmp_path, clock)
    with pytest.raises(ValueError, match=message):
        memory.note(**({"text": "fine"} | kwargs))
    assert memory.pending == 0


# -- files -------------------------------------------------------------------------------


def test_the_notes_file_and_its_journal_are_owner_only(project, clock):
    """state/<name>.memory.sqlite and its journal are 0600, in a 0700 directory."""
    project.add_agent("memo", MEMO)
    run(project, clock=clock, overrides={"note": ["x"]})
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
    run(project, clock=clock, overrides={"note": ["first"]})
    target = tmp_path / "outside"
    target.write_bytes(b"")
    link = memory_path(project).with_name(memory_path(project).name + suffix)
    link.unlink(missing_ok=True)
    link.symlink_to(target)
    state_before = project.state("memo")
    outcome = run(project, clock=clock, overrides={"note": ["second"]})
    assert outcome.exit_code == 74
    assert "symbolic link" in outcome.message
    assert target.read_bytes() == b""
    assert link.is_symlink()
    # The run itself succeeded and its state is saved: only its notes are lost.
    assert project.state("memo")["metrics"]["succeeded"] == state_before["metrics"]["succeeded"] + 1
    searching = run(project, clock=clock, overrides={"search": "first"})
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
    searching = run(project, clock=clock, overrides={"search": "x"})
    assert searching.exit_code == 74
    assert why in searching.message
    assert "left as it is" in searching.message
    noting = run(project, clock=clock, overrides={"note": ["x"]})
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
    outcome = run(project, clock=clock, fs=faulty, overrides={"note": ["lost"]})
    assert faulty.failed is not None
    assert outcome.exit_code == 74
    assert outcome.message.startswith(f"{project.home / 'state' / name}: cannot create")
    assert project.state("memo")["last_run"]["status"] == "succeeded"
    assert "memory.save_failed" in project.event_names("memo")
    assert run(project, clock=clock, overrides={"note": ["kept"]}).exit_code == 0
    assert stored_notes(project) == ["kept"]


def test_files_are_owner_only_whatever_the_umask(project, clock):
    """With umask 0 the notes file and its journal are still 0600."""
    project.add_agent("memo", MEMO)
    old = os.umask(0)
    try:
        run(project, clock=clock, overrides={"note": ["x"]})
    finally:
        os.umask(old)
    path = memory_path(project)
    assert {p.name: p.stat().st_mode & 0o777 for p in path.parent.glob("*.memory.sqlite*")} == {
        "memo.memory.sqlite": 0o600,
        "memo.memory.sqlite-journal": 0o600,
    }


def test_an_agent_cannot_swallow_an_unreadable_notes_file(project, clock):
    """relevant() failing on the file ends the run (74) even inside except Exception."""
    code = MEMO.replace(
        "        found = [n.text for n in ctx.memory.relevant(params.search, k=params.k)]",
        "        try:\n            ctx.memory.relevant(params.search)\n        except Exception:\n"
        "            pass",
    )
    project.add_agent("memo", code)
    memory_path(project).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    memory_path(project).write_bytes(b"garbage" * 1000)
    outcome = run(project, clock=clock, overrides={"search": "x"})
    assert outcome.exit_code == 74
    assert project.state("memo")["last_run"]["status"] == "failed"


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
    assert len(file.search("kept", k=100, now=NOW, weights=MemoryConfig())) == 50
    file.close()


def no_fts5(monkeypatch):
    """Make sqlite3 look like a build without FTS5, until the test ends."""
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


@pytest.fixture(autouse=True)
def _fresh_sqlite_check():
    """A test that faked a build without FTS5 leaves no cached verdict behind."""
    yield
    notes_module._sqlite.cache_clear()


def test_a_sqlite_without_fts5_is_a_configuration_error(monkeypatch, tmp_path):
    """A Python whose SQLite lacks FTS5 is said plainly (78), before any file is made."""
    no_fts5(monkeypatch)
    with pytest.raises(ConfigError, match="FTS5") as info:
        NoteFile.open(tmp_path / "a.memory.sqlite", agent="a", writable=True)
    assert info.value.exit_code == 78
    assert not (tmp_path / "a.memory.sqlite").exists()


def test_a_run_that_notes_without_fts5_saves_its_state_and_says_so(project, clock, monkeypatch):
    """The notes cannot be written: one line, 78, memory.save_failed; the run's state is kept."""
    project.add_agent("memo", MEMO)
    no_fts5(monkeypatch)
    outcome = run(project, clock=clock, overrides={"note": ["x"], "remember": {"k": 1}})
    assert outcome.exit_code == 78
    assert "FTS5" in outcome.message
    assert project.state("memo")["last_run"]["status"] == "succeeded"
    assert project.state("memo")["memory"]["k"]["value"] == 1
    assert "memory.save_failed" in project.event_names("memo")
    assert not memory_path(project).exists()


def test_secrets_in_notes_and_working_memory_never_reach_the_disk(project, clock):
    """Note text and tags, memory keys and values are redacted before they are written."""
    project.add_agent("memo", MEMO)
    secret = FAKE_SECRETS["FAKE_SERVICE_API_KEY"]
    token = FAKE_SECRETS["FAKE_GITHUB_TOKEN"]
    outcome = run(
        project,
        clock=clock,
        overrides={
            "note": [f"the key is {secret} and sk-{'a1' * 15}", f"token={token}"],
            "tags": [token],
            "remember": {token: secret, "api_key": "plain-looking-value", "safe": f"x {secret}"},
            "search": "key",
        },
    )
    assert outcome.exit_code == 0
    assert scan_tree(project.home) == []
    texts = stored_notes(project)
    assert texts[0].startswith("the key is [REDACTED]")
    assert "[REDACTED]" in texts[1]
    memory = project.state("memo")["memory"]
    assert memory["api_key"]["value"] == "[REDACTED]"
    assert memory["safe"]["value"] == "x [REDACTED]"
    assert [k for k in memory if k.startswith("[REDACTED:")]  # a digest in place of the token


def test_working_memory_alone_never_imports_sqlite(project, run_agentops):
    """A run that only remembers and recalls pays nothing for SQLite (cron pays every import)."""
    project.add_agent(
        "lean",
        """
        import sys
        from pydantic import BaseModel
        from agentops import Context

        class Params(BaseModel):
            pass

        class Result(BaseModel):
            sqlite: bool
            n: int

        def run(params: Params, ctx: Context) -> Result:
            n = (ctx.memory.recall("n") or 0) + 1
            ctx.memory.remember("n", n, ttl="1h")
            ctx.memory.note("a note") if n > 1 else None
            return Result(sqlite="sqlite3" in sys.modules, n=n)
        """,
    )
    assert run_agentops("run", "lean").returncode == 0
    assert run_agentops("run", "lean").returncode == 0  # notes, but never searched
    results = [e["result"] for e in project.events("lean") if e["event"] == "run.finished"]
    assert results == [{"sqlite": False, "n": 1}, {"sqlite": False, "n": 2}]
    assert stored_notes(project, "lean") == ["a note"]
    code = (
        "import agentops.run.runner, sys; "
        "print('agentops.memory.run' in sys.modules, 'sqlite3' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False False"


# -- across real runs --------------------------------------------------------------------


def test_memory_expires_and_notes_rank_across_real_agentops_runs(project, run_agentops):
    """Separate processes: a ttl passes between runs; notes rank by the weights in agent.toml."""
    project.add_agent("memo", MEMO)

    def agentops_run(**params):
        done = run_agentops("run", "memo", "--params-json", json.dumps(params))
        assert done.returncode == 0, done.stderr
        return [e for e in project.events("memo") if e["event"] == "run.finished"][-1]["result"]

    agentops_run(remember={"short": 1}, ttl=1)
    agentops_run(remember={"long": 2}, ttl="1h")
    agentops_run(note=["old disk note"], importance=10)
    agentops_run(note=["new disk note"], importance=1)
    time.sleep(1.2)  # past the short ttl, however fast the runs were
    result = agentops_run(recall=["short", "long"], search="disk")
    assert result["recalled"] == {"short": None, "long": 2}
    assert result["found"] == ["old disk note", "new disk note"]  # importance decides
    project.add_agent("memo", MEMO, '[memory]\nimportance_weight = 0\nrecency_half_life = "1s"\n')
    assert agentops_run(search="disk")["found"] == ["new disk note", "old disk note"]
    done = run_agentops("memory", "memo", "--json", "--search", "disk", "--limit", "1")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert [n["text"] for n in shown["notes"]] == ["new disk note"]
    assert shown["notes_total"] == 2
    assert [e["key"] for e in shown["working"]] == ["long"]


# -- agentops memory ---------------------------------------------------------------------


def test_agentops_memory_shows_working_memory_and_notes(project, clock, invoke):
    """Text: the live entries, then the notes newest first (or ranked, with a score)."""
    project.add_agent("memo", MEMO)
    run(project, clock=clock, overrides={"remember": {"cursor": 42}})
    run(project, clock=clock, overrides={"note": ["first disk note"], "tags": ["ops"]})
    clock.advance(minutes=1)
    run(project, clock=clock, overrides={"note": ["second note \x1b[31m"], "importance": 9})
    before = project.snapshot()
    result = invoke("memory", "memo")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "working memory: 1"
    assert lines[2].split() == ["cursor", "-", "42"]
    assert "notes: 2 of 2, newest first" in result.stdout
    texts = [line for line in lines if "note" in line and not line.startswith("notes:")]
    assert "second note \\x1b[31m" in texts[0]  # control characters escaped
    assert "first disk note" in texts[1]
    assert "\x1b" not in result.stdout
    ranked = invoke("memory", "memo", "--search", "disk note", "--limit", "1")
    assert ranked.exit_code == 0
    assert "notes: 1 of 2, best first for 'disk note'" in ranked.stdout
    assert "SCORE" in ranked.stdout
    none = invoke("memory", "memo", "--search", "zebra")
    assert "notes: none of 2 match 'zebra'" in none.stdout
    huge = invoke("memory", "memo", "--limit", "9" * 30)
    assert huge.exit_code == 2
    assert "is not in the range 1<=x<=1000000" in huge.stderr
    assert project.snapshot() == before  # a read command


def test_agentops_memory_json_has_the_documented_keys(project, clock, invoke):
    """--json: an object with KEYS; entries with WORKING_KEYS and NOTE_KEYS."""
    project.add_agent("memo", MEMO)
    result = invoke("memory", "memo", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "agent": "memo",
        "working": [],
        "notes": [],
        "notes_total": 0,
        "search": None,
    }
    clock.now = datetime.now(UTC)  # agentops memory reads by the real clock
    run(project, clock=clock, overrides={"remember": {"k": [1]}, "ttl": "1h"})
    run(project, clock=clock, overrides={"note": ["a note"], "tags": ["t"], "importance": 7})
    shown = json.loads(invoke("memory", "memo", "--json").stdout)
    assert tuple(shown) == KEYS
    assert tuple(shown["working"][0]) == WORKING_KEYS
    assert tuple(shown["notes"][0]) == NOTE_KEYS
    assert shown["working"][0]["value"] == [1]
    assert shown["notes"][0]["tags"] == ["t"]
    assert shown["notes"][0]["importance"] == 7
    assert shown["notes"][0]["score"] is None
    searched = json.loads(invoke("memory", "memo", "--json", "--search", "note").stdout)
    assert searched["notes"][0]["score"] > 0
    assert searched["search"] == "note"


def test_agentops_memory_of_an_unknown_agent_is_78(project, invoke):
    """An unknown agent is a configuration error, in one line; a bad --limit is usage (2)."""
    result = invoke("memory", "ghost")
    assert result.exit_code == 78
    assert "unknown agent 'ghost'" in result.stderr
    project.add_agent("memo", MEMO)
    assert invoke("memory", "memo", "--limit", "0").exit_code == 2


# -- the test kit ------------------------------------------------------------------------


def test_the_harness_keeps_memory_between_runs_and_shows_it(project, tmp_path):
    """AgentHarness runs keep working memory and notes; agent.memory() shows them."""
    directory = project.add_agent("memo", MEMO)
    with AgentHarness(directory, now=NOW, home=tmp_path / "kit") as agent:
        agent.run({"remember": {"cursor": 7}, "ttl": "1h", "note": ["disk full"], "importance": 8})
        assert agent.memory().recall("cursor") == 7
        assert agent.run({"search": "disk"}).result["found"] == ["disk full"]
        view = agent.memory(search="disk")
        assert [(n.text, n.importance) for n in view.notes] == [("disk full", 8)]
        agent.clock.advance(hours=1)
        assert agent.memory().recall("cursor") is None
        assert agent.run({"recall": ["cursor"]}).result["recalled"] == {"cursor": None}
