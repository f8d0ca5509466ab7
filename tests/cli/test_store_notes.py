"""``agentops store copy`` carries every agent's notes, between files and PostgreSQL both ways.

Notes are made and recalled by real runs of an agent (``ctx.memory``), on
the project's files and on the suite's PostgreSQL server; the copies are the
real command. The file store's own cases (refusals, a damaged page) are in
tests/store/test_copy.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from agentops.memory.shelf import Shelf
from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import run_agent
from agentops.store import STORE_URL_ENV
from agentops.store.file import FileStore
from agentops.store.postgres import PostgresStore
from memstore import registered
from suite import MEMO, memory_path

if TYPE_CHECKING:
    from collections.abc import Iterator

    from agentops.model.noterows import StoredNote
    from memstore import MemoryBackend
    from suite import FakeClock, Project

NOTED = [  # (text, importance, hours after the first): each best on one part of the score
    ("backup backup backup", 1, 0),
    ("restore the backup of the billing db before any migration", 10, 0),
    ("a backup of db two finished late but was done", 5, 40),
    ("the nightly backup ran and then the cache was warm", 4, 72),
    ("the weather is fine", 10, 72),
]
"""Recalled for "backup" in one order by both stores' full-text search.

Each note holding the word is ten words long (or has it three times); notes of
other lengths are ranked alike too (tests/memory/test_ranking_parity.py).
"""


@pytest.fixture
def url(postgres) -> str:
    """A fresh database, its tables made (``agentops store init``)."""
    return postgres.database()


@pytest.fixture
def noted(project: Project, clock: FakeClock) -> Project:
    """memo's notes, each made on files by a run of its own at its own time; then 1 h later."""
    project.add_agent("memo", MEMO)
    at = 0
    for text, importance, hours in NOTED:
        clock.advance(hours=hours - at)
        at = hours
        assert run_memo(project, clock, note=[text], importance=importance, tags=["ops"]) == []
    clock.advance(hours=1)
    return project


def run_memo(
    project: Project, clock: FakeClock, *, environ: dict[str, str] | None = None, **params: object
) -> list[str]:
    """One run of memo (on the store ``environ`` names): the texts of the notes it found."""
    outcome = run_agent(
        AgentopsProject(project.home), "memo", environ=environ or {}, clock=clock, overrides=params
    )
    assert outcome.exit_code == 0, outcome.message
    finished = [e for e in project.events("memo") if e["event"] == "run.finished"]
    found: list[str] = finished[-1]["result"]["found"]
    return found


def file_notes(project: Project) -> list[StoredNote]:
    """memo's notes in the project's notes file, in the order written."""
    store = FileStore(project.home / "state")
    return Shelf(store.note_rows, store.directory).read("memo")


def pg_notes(url: str) -> list[StoredNote]:
    """memo's notes in the database, in the order written."""
    store = PostgresStore(url)
    try:
        return store.note_rows("memo").every()
    finally:
        store.close()


def test_notes_made_on_files_are_recalled_alike_on_postgresql_and_back(noted, invoke, url, clock):
    """Files -> PostgreSQL: a run there recalls every note, in the order files gave.

    And back, over the files with --overwrite: the notes are as they were
    (text, tags, time, importance, run, order), recalled in the same order.
    """
    on_files = run_memo(noted, clock, search="backup", k=10)
    assert on_files == [  # recency, relevance, importance: each wins one place
        "the nightly backup ran and then the cache was warm",
        "backup backup backup",
        "restore the backup of the billing db before any migration",
        "a backup of db two finished late but was done",
    ]
    before = file_notes(noted)

    there = invoke("store", "copy", "--to", url)
    assert there.exit_code == 0, there.output
    assert pg_notes(url) == before
    assert run_memo(noted, clock, environ={STORE_URL_ENV: url}, search="backup", k=10) == on_files

    home = str(noted.home / "state")
    back = invoke("store", "copy", "--to", home, "--overwrite", env={STORE_URL_ENV: url})
    assert back.exit_code == 0, back.output
    assert file_notes(noted) == before
    assert run_memo(noted, clock, search="backup", k=10) == on_files


def test_notes_the_database_holds_refuse_the_copy_unless_overwrite(noted, invoke, url, clock):
    """A note made by a run on PostgreSQL is the target's: 2 and nothing written; then replaced."""
    noted.add_agent("other")
    ran = run_agent(AgentopsProject(noted.home), "other", environ={}, clock=clock)
    assert ran.exit_code == 0, ran.message
    assert run_memo(noted, clock, environ={STORE_URL_ENV: url}, note=["the db's own"]) == []
    refused = invoke("store", "copy", "--to", url)
    assert refused.exit_code == 2
    (line,) = refused.stderr.splitlines()
    assert line == (
        "agentops: memo: the target store holds this agent already; "
        "--overwrite replaces what it holds"
    )
    assert [text for text, *_ in pg_notes(url)] == ["the db's own"]
    store = PostgresStore(url)
    try:
        assert store.snapshot("other").state is None, "nothing is written unless all can be"
    finally:
        store.close()
    replaced = invoke("store", "copy", "--to", url, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert pg_notes(url) == file_notes(noted)


def test_a_damaged_notes_file_refuses_the_copy_with_74_in_one_line(noted, invoke, url):
    """Not a database any more: 74, one line naming the file; the database holds nothing."""
    path = memory_path(noted)
    path.write_bytes(b"this is no longer a database" + path.read_bytes()[28:])
    done = invoke("store", "copy", "--to", url)
    assert (done.exit_code, done.stdout) == (74, "")
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"agentops: {path}: unreadable notes (")
    store = PostgresStore(url)
    try:
        assert store.snapshot("memo").state is None
        assert store.note_rows("memo").count() == 0
    finally:
        store.close()


@pytest.fixture
def memory() -> Iterator[MemoryBackend]:
    """``memory://`` registered for the test (``invoke`` runs the command in this process)."""
    with registered() as backend:
        yield backend


@pytest.mark.usefixtures("memory")
def test_a_store_keeping_notes_as_files_shares_the_projects_and_a_directory_gets_them(
    noted, invoke, tmp_path, clock
):
    """memory:// keeps no notes of its own: a run on it reads state/'s, which the copy leaves.

    Copied from it to another directory, the notes go there with the state.
    """
    before = file_notes(noted)
    on_files = run_memo(noted, clock, search="backup", k=10)
    there = invoke("store", "copy", "--to", "memory://notes")
    assert there.exit_code == 0, there.output
    assert file_notes(noted) == before
    env = {STORE_URL_ENV: "memory://notes"}
    assert run_memo(noted, clock, environ=env, search="backup", k=10) == on_files

    elsewhere = tmp_path / "elsewhere"
    again = invoke("store", "copy", "--to", str(elsewhere), env=env)
    assert again.exit_code == 0, again.output
    copied = FileStore(elsewhere)
    assert Shelf(copied.note_rows, copied.directory).read("memo") == before
