"""Long-term notes: ``state/<name>.memory.sqlite``, searched with FTS5, ranked as Generative Agents.

A note is a line of text an agent wants to find again in later runs
(``ctx.memory.note``), with tags, an importance from 1 to 10 and the time it
was noted. :meth:`NoteFile.search` ranks the notes that match a query as the
retrieval of *Generative Agents* (Park et al., 2023) does::

    score = relevance_weight * relevance + recency_weight * recency
          + importance_weight * importance / 10

each part in [0, 1]: ``relevance`` is SQLite FTS5's bm25 for the query,
min-max normalised across the notes that match it (all 1 when they tie);
``recency`` is ``0.5 ** (age / recency_half_life)``. A note that matches no
word of the query is not a candidate at all.

The file is SQLite, whose every commit is atomic and durable: a rollback
journal (``-journal``, kept and truncated rather than deleted, so agentops
creates it itself, owner-only), ``synchronous=FULL``. A crash mid-write
leaves the journal "hot", and the next writer (the agent's next run, under
its lock) rolls the unfinished write back: committed notes are never lost
and the file is never half-written. Not WAL: readers would create and write
``-wal`` and ``-shm`` files beside it, and ``agentops memory`` must only
read. Every file is created through the :class:`~agentops._infra.fs.FileSystem`
seam (``O_NOFOLLOW``, ``0600``) before SQLite opens it, and a symbolic link
at any of their names is refused (SQLite itself follows one at the
database's name).

``sqlite3`` is imported only when a file is opened: a run that keeps no
notes never pays for it.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import json
import math
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agentops._infra import sqlite
from agentops._infra.fs import FileSystem, describe
from agentops.errors import ConfigError, StateError

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from agentops.model.noterows import StoredNote
    from agentops.project.config import MemoryConfig

__all__ = [
    "MAX_QUERY_TERMS",
    "SCHEMA_VERSION",
    "Note",
    "NoteFile",
    "fts_query",
    "note_of",
    "recency",
    "scored",
    "words",
]

SCHEMA_VERSION = 1
"""The file's ``PRAGMA user_version``; a file of a newer one is refused, not changed."""

MAX_QUERY_TERMS = 32
"""The words of a query searched for, at most (the first ones, each once)."""

BUSY_TIMEOUT_S = 5.0
"""How long a reader waits for a write in progress (and a writer for readers)."""

_SCHEMA = (
    """CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        text TEXT NOT NULL,
        tags TEXT NOT NULL,
        at REAL NOT NULL,
        importance INTEGER NOT NULL CHECK (importance BETWEEN 1 AND 10),
        run_id TEXT NOT NULL
    )""",
    "CREATE INDEX notes_by_time ON notes (at)",
    "CREATE INDEX notes_to_drop ON notes (importance, at)",
    """CREATE VIRTUAL TABLE notes_fts USING fts5 (
        text, tags, content='notes', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2'
    )""",
    """CREATE TRIGGER notes_added AFTER INSERT ON notes BEGIN
        INSERT INTO notes_fts (rowid, text, tags) VALUES (new.id, new.text, new.tags);
    END""",
    """CREATE TRIGGER notes_dropped AFTER DELETE ON notes BEGIN
        INSERT INTO notes_fts (notes_fts, rowid, text, tags)
        VALUES ('delete', old.id, old.text, old.tags);
    END""",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)
_OBJECTS = frozenset({"notes", "notes_fts", "notes_added", "notes_dropped"})

_WORD = re.compile(r"[^\W_]+")
"""Runs of letters and digits: what FTS5's unicode61 tokenizer keeps of a text."""

_COLUMNS = "id, text, tags, at, importance, run_id"


@dataclass(frozen=True, slots=True)
class Note:
    """One note: what ``ctx.memory.relevant()`` and ``agentops memory`` return.

    ``score`` is its rank for the query that found it (None when listed
    without one).
    """

    text: str
    tags: tuple[str, ...]
    at: datetime
    importance: int
    run_id: str
    score: float | None = None


def words(text: str) -> list[str]:
    """The words of ``text`` a search looks for: letters and digits, each once, in order."""
    found: dict[str, str] = {}
    for word in _WORD.findall(text):
        found.setdefault(word.casefold(), word)
        if len(found) == MAX_QUERY_TERMS:
            break
    return list(found.values())


def fts_query(text: str) -> str | None:
    """An FTS5 query for notes holding any word of ``text``; None if it has no word.

    Each word is quoted (so ``OR``, ``NEAR``, ``*``, ``"`` and ``-`` in free
    text are words or nothing, never syntax) and the words are ORed.
    """
    return " OR ".join(f'"{word}"' for word in words(text)) or None


def recency(age_s: float, half_life_s: float) -> float:
    """``0.5 ** (age / half_life)``: 1 for a note made now, a half after one half-life.

    A note from the future (the clock was stepped back) counts as made now.
    """
    return float(0.5 ** (max(0.0, age_s) / half_life_s))


def scored(
    candidates: list[tuple[int, float, float, int]], now_s: float, weights: MemoryConfig
) -> list[tuple[float, float, int]]:
    """``(score, at, id)`` of each ``(id, rank, at, importance)``: the module's score.

    ``rank`` is lower for a better match (bm25, as SQLite's FTS5 gives it
    and as the PostgreSQL store computes it): min-max normalised, inverted.
    Computed inline: 10,000 candidates in a millisecond or two.
    """
    low = min(row[1] for row in candidates)
    high = max(row[1] for row in candidates)
    span = high - low
    tied = span <= 1e-9 * max(1.0, abs(low))  # float noise, not a difference
    relevance = 0.0 if tied else weights.relevance_weight / span
    flat = weights.relevance_weight if tied else 0.0
    decay = -math.log(2) / weights.recency_half_life  # 0.5 ** (age / h) as an exp
    recent, important, exp = weights.recency_weight, weights.importance_weight / 10, math.exp
    return [
        (
            flat
            + relevance * (high - raw)
            + recent * exp(decay * (now_s - at) if now_s > at else 0.0)
            + important * imp,
            at,
            id_,
        )
        for id_, raw, at, imp in candidates
    ]


@functools.cache
def _sqlite() -> Any:
    # Imported on first use, and checked once for FTS5, which some builds lack.
    import sqlite3  # noqa: PLC0415 - cron pays for every import: only runs that keep notes

    probe = sqlite3.connect(":memory:")
    try:
        probe.execute("CREATE VIRTUAL TABLE probe USING fts5 (x)")
    except sqlite3.OperationalError as exc:
        raise ConfigError(
            f"ctx.memory's notes need SQLite's FTS5, which this Python's sqlite3 "
            f"(SQLite {sqlite3.sqlite_version}) lacks: use a Python built with it ({exc})"
        ) from None
    finally:
        probe.close()
    return sqlite3


class NoteFile:
    """An agent's notes file, opened for reading or writing; or a scratch copy in memory."""

    def __init__(self, connection: sqlite3.Connection, *, path: Path | None, agent: str) -> None:
        """Wrap an open ``connection``; use :meth:`open` or :meth:`scratch`."""
        self._db = connection
        self.path = path
        self.agent = agent

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: Path, *, agent: str, fs: FileSystem | None = None, writable: bool = False
    ) -> NoteFile | None:
        """The notes file at ``path``; None if there is none and it is opened to read.

        To write, the file and its journal are created first (owner-only, no
        link followed), and a write a crash cut short is rolled back. To
        read, nothing is ever written: a file a crash left mid-write is
        refused until the agent's next run repairs it.
        """
        _check_files(path, agent)
        if not writable and not os.path.lexists(path):
            return None
        sqlite3 = _sqlite()
        fs = fs or FileSystem()
        if writable:
            _create(fs, path, agent)
        mode = "rw" if writable else "ro"
        with _reading(path, agent):
            db = sqlite3.connect(
                f"{path.absolute().as_uri()}?mode={mode}",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_S,
            )
        notes = cls(db, path=path, agent=agent)
        try:
            fresh = notes._check()
            if fresh and not writable:  # made, and its first write never came: no notes
                db.close()
                return None
            if writable:
                _create(fs, path.with_name(path.name + "-journal"), agent)
                with _reading(path, agent):
                    db.execute("PRAGMA journal_mode = TRUNCATE")
                    db.execute("PRAGMA synchronous = FULL")
                    db.execute("PRAGMA secure_delete = ON")  # a dropped note leaves no trace
                if fresh:
                    notes._transaction(_create_schema, "create")
        except BaseException:
            db.close()
            raise
        return notes

    @classmethod
    def scratch(cls, source: NoteFile | None, *, agent: str) -> NoteFile:
        """A copy of ``source`` (or an empty file) in memory: written to, never saved."""
        sqlite3 = _sqlite()
        db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        if source is None:
            _create_schema(db)
        else:
            with _reading(source.path, agent):
                source.copy_to(db)
        return cls(db, path=None, agent=agent)

    def _check(self) -> bool:
        # Whether the file is new (empty); anything but our schema is refused.
        with _reading(self.path, self.agent):
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            found = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
        if version > SCHEMA_VERSION:
            why = f"schema version {version} was written by a newer agentops; upgrade agentops"
            raise _unreadable(self.path, self.agent, why)
        if version == 0 and not found:
            return True
        if version != SCHEMA_VERSION or not found >= _OBJECTS:
            raise _unreadable(self.path, self.agent, "it is not an agentops notes file")
        return False

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def copy_to(self, target: sqlite3.Connection) -> None:
        """Copy the whole file into ``target`` (SQLite's online backup)."""
        self._db.backup(target)

    # -- reading -------------------------------------------------------------------------

    def count(self) -> int:
        """How many notes the file holds."""
        with _reading(self.path, self.agent):
            count: int = self._db.execute("SELECT count(*) FROM notes").fetchone()[0]
        return count

    def newest(self, limit: int) -> list[Note]:
        """The ``limit`` most recent notes, newest first."""
        with _reading(self.path, self.agent):
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM notes ORDER BY at DESC, id DESC LIMIT ?",  # noqa: S608 - constant columns
                (limit,),
            ).fetchall()
        return [self._note(row) for row in rows]

    def search(self, query: str, *, k: int, now: datetime, weights: MemoryConfig) -> list[Note]:
        """The ``k`` notes matching a word of ``query`` that score highest, best first.

        Ties go to the newer note.
        """
        match = fts_query(query)
        if match is None:
            return []
        with _reading(self.path, self.agent):
            candidates = self._db.execute(
                "SELECT notes_fts.rowid, bm25(notes_fts), notes.at, notes.importance "
                "FROM notes_fts JOIN notes ON notes.id = notes_fts.rowid "
                "WHERE notes_fts MATCH ?",
                (match,),
            ).fetchall()
        if not candidates:
            return []
        top = heapq.nlargest(k, scored(candidates, now.timestamp(), weights))
        scores = {id_: score for score, _, id_ in top}
        with _reading(self.path, self.agent):
            marks = ",".join("?" * len(scores))
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM notes WHERE id IN ({marks})",  # noqa: S608 - placeholders only
                list(scores),
            ).fetchall()
        found = {row[0]: row for row in rows}
        return [self._note(found[id_], score=score) for score, _, id_ in top]

    def every(self) -> list[StoredNote]:
        """Every note, in the order written; StateError if the file or a note is damaged.

        The whole file is checked first (``PRAGMA quick_check``): ``agentops
        store copy`` must not carry a damaged file's remains as if whole.
        """
        with _reading(self.path, self.agent):
            problems = [row[0] for row in self._db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise _unreadable(self.path, self.agent, f"damaged: {problems[0]}")
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM notes ORDER BY id").fetchall()  # noqa: S608 - constant columns
        notes = [self._note(row) for row in rows]  # each one readable, or none is taken
        return [
            (n.text, json.dumps(list(n.tags)), float(row[3]), n.importance, n.run_id)
            for n, row in zip(notes, rows, strict=True)
        ]

    def _note(self, row: Sequence[Any], *, score: float | None = None) -> Note:
        return note_of(row, where=self.path, agent=self.agent, score=score)

    # -- writing -------------------------------------------------------------------------

    def add(self, notes: Sequence[Note], *, keep: int | None = None) -> int:
        """Add ``notes`` in one transaction, then keep at most ``keep``; return how many went.

        The notes dropped are the least important, and of those the oldest
        (a new note can be one of them, when every note kept matters more).
        """
        rows = [
            (n.text, json.dumps(list(n.tags)), n.at.timestamp(), n.importance, n.run_id)
            for n in notes
        ]

        def write(db: sqlite3.Connection) -> int:
            db.executemany(
                "INSERT INTO notes (text, tags, at, importance, run_id) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            if keep is None:
                return 0
            return db.execute(
                "DELETE FROM notes WHERE id IN (SELECT id FROM notes "
                "ORDER BY importance, at, id LIMIT max(0, (SELECT count(*) FROM notes) - ?))",
                (keep,),
            ).rowcount

        dropped: int = self._transaction(write, "save")
        return dropped

    def replace(self, rows: Sequence[StoredNote]) -> None:
        """Make ``rows``, in this order, every note in the file: one transaction."""

        def write(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM notes")
            db.executemany(
                "INSERT INTO notes (text, tags, at, importance, run_id) VALUES (?, ?, ?, ?, ?)",
                rows,
            )

        self._transaction(write, "replace")

    def _transaction(self, body: Any, what: str) -> Any:
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = body(db)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite.errors() as exc:
            where = self.path or "the notes in memory"
            raise StateError(
                f"{where}: cannot {what} notes: {sqlite.failure(exc).why}", agent=self.agent
            ) from exc
        return result


def note_of(
    row: Sequence[Any], *, where: Path | None, agent: str, score: float | None = None
) -> Note:
    """The note of a row ``(id, text, tags, at, importance, run_id)``; StateError if damaged."""
    _, text, tags, at, importance, run_id = row
    try:
        moment = datetime.fromtimestamp(at, UTC)
        labels = tuple(str(tag) for tag in json.loads(tags))
    except (ValueError, TypeError, OverflowError, OSError) as exc:
        raise _unreadable(where, agent, f"a damaged note ({exc})") from exc
    return Note(str(text), labels, moment, int(importance), str(run_id), score)


def _create_schema(db: sqlite3.Connection) -> None:
    for statement in _SCHEMA:
        db.execute(statement)


def _check_files(path: Path, agent: str) -> None:
    # A link (SQLite would follow it) or a FIFO (SQLite would wait on it) is refused.
    try:
        sqlite.check_files(path)
    except OSError as found:
        raise StateError(
            f"{found.filename}: cannot open notes: {describe(found)}", agent=agent
        ) from None


def _create(fs: FileSystem, path: Path, agent: str) -> None:
    # Made by us, owner-only and never through a link, before SQLite opens it.
    try:
        sqlite.create(fs, path)
    except OSError as exc:
        raise StateError(f"{path}: cannot create: {describe(exc)}", agent=agent) from exc


@contextlib.contextmanager
def _reading(path: Path | None, agent: str) -> Iterator[None]:
    try:
        yield
    except sqlite.errors() as exc:
        why = sqlite.failure(exc).why
        if path is None:
            raise StateError(f"the notes in memory: {why}", agent=agent) from exc
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_READONLY_ROLLBACK":
            # A hot journal: only a writer may roll it back, and readers never write.
            raise StateError(
                f"{path}: a write to the notes was cut short (a run died); "
                "the agent's next run rolls it back",
                agent=agent,
            ) from exc
        raise _unreadable(path, agent, why) from exc


def _unreadable(path: Path | None, agent: str, why: str) -> StateError:
    return StateError(
        f"{path}: unreadable notes ({why}); the file was left as it is: "
        "fix it, or move it aside to start fresh",
        agent=agent,
    )
