"""An agent's long-term notes in the PostgreSQL store, searched with PostgreSQL's full-text search.

One row per note in ``{schema}.note``, with a stored ``tsvector`` of its
text and tags (the ``english`` configuration: words stemmed as SQLite's
porter tokenizer stems them) under a GIN index. A search ORs the query's
words (:func:`~agentops.memory.shared.words`, each quoted: free text is
never query syntax) and ranks matches with ``ts_rank``; the notes the run
has made and not yet written are searched in the same statement, so they
count as if written. Ranking by relevance, recency and importance is
:mod:`agentops.memory.shared`'s, the same as for notes kept in SQLite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from agentops.model.noterows import NoteRow, PendingNote, StoredNote
    from agentops.store._pgconnection import Statements

__all__ = ["PostgresNoteRows"]

_MATCHES = """
WITH q AS (SELECT to_tsquery('english'::regconfig, %s) AS q)
SELECT n.id, -ts_rank(n.words, q.q), n.at, n.importance
FROM {s}.note n, q WHERE n.agent = %s AND n.words @@ q.q
UNION ALL
SELECT -p.ord, -ts_rank(p.words, q.q), p.at, p.importance
FROM (
    SELECT u.*, to_tsvector('english'::regconfig, u.text || ' ' || u.tags) AS words
    FROM unnest(%s::text[], %s::text[], %s::float8[], %s::int[])
        WITH ORDINALITY AS u(text, tags, at, importance, ord)
) p, q
WHERE p.words @@ q.q
"""
"""The stored notes and the run's pending ones holding a word of the query, ranked alike.

A pending note's tsvector is the expression of the table's generated column.
"""


class PostgresNoteRows:
    """One agent's notes in the store's ``note`` table."""

    def __init__(self, store: Statements, agent: str) -> None:
        """The notes of ``agent`` in ``store``."""
        self._store = store
        self._agent = agent

    def count(self) -> int:
        """How many notes the agent has."""
        found = self._store.execute(
            "SELECT count(*) FROM {s}.note WHERE agent = %s", (self._agent,)
        ).fetchone()
        return int(found[0]) if found else 0

    def newest(self, limit: int) -> list[NoteRow]:
        """The ``limit`` most recent notes, newest first."""
        return list(
            self._store.execute(
                "SELECT id, text, tags, at, importance, run_id FROM {s}.note "
                "WHERE agent = %s ORDER BY at DESC, id DESC LIMIT %s",
                (self._agent, limit),
            ).fetchall()
        )

    def matches(
        self, words: Sequence[str], pending: Sequence[PendingNote]
    ) -> list[tuple[int, float, float, int]]:
        """``(id, -ts_rank, at, importance)`` of the notes holding a word (pending: negative)."""
        if not words:
            return []
        # Each word is letters and digits only: quoted, it is a lexeme, never syntax.
        query = " | ".join(f"'{word}'" for word in words)
        texts, tags, ats, importances = (
            (list(column) for column in zip(*pending, strict=True)) if pending else ([], [], [], [])
        )
        return list(
            self._store.execute(
                _MATCHES, (query, self._agent, texts, tags, ats, importances)
            ).fetchall()
        )

    def rows(self, ids: Sequence[int]) -> list[NoteRow]:
        """The stored notes of ``ids``."""
        return list(
            self._store.execute(
                "SELECT id, text, tags, at, importance, run_id FROM {s}.note "
                "WHERE agent = %s AND id = ANY(%s)",
                (self._agent, list(ids)),
            ).fetchall()
        )

    def add(self, rows: Sequence[StoredNote], keep: int | None) -> int:
        """Insert ``rows`` and drop the least important, oldest first, past ``keep``: one commit."""
        columns = [list(column) for column in zip(*rows, strict=True)]
        with self._store.transaction() as run:
            run(
                "INSERT INTO {s}.note (agent, text, tags, at, importance, run_id) "
                "SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::float8[], %s::int[], "
                "%s::text[])",
                (self._agent, *columns),
            )
            if keep is None:
                return 0
            dropped: int = run(
                "DELETE FROM {s}.note WHERE id IN (SELECT id FROM {s}.note WHERE agent = %s "
                "ORDER BY importance, at, id "
                "LIMIT greatest(0, (SELECT count(*) FROM {s}.note WHERE agent = %s) - %s))",
                (self._agent, self._agent, keep),
            ).rowcount
            return dropped

    def every(self) -> list[StoredNote]:
        """Every note, in the order they were written (by id)."""
        return list(
            self._store.execute(
                "SELECT text, tags, at, importance, run_id FROM {s}.note "
                "WHERE agent = %s ORDER BY id",
                (self._agent,),
            ).fetchall()
        )

    def replace(self, rows: Sequence[StoredNote]) -> None:
        """Make ``rows`` every note of the agent, ids given in their order: one commit."""
        columns = [list(column) for column in zip(*rows, strict=True)] or [[]] * 5
        with self._store.transaction() as run:
            run("DELETE FROM {s}.note WHERE agent = %s", (self._agent,))
            run(  # ordered, so that the ids (the last tie-break of a search) keep their order
                "INSERT INTO {s}.note (agent, text, tags, at, importance, run_id) "
                "SELECT %s, u.text, u.tags, u.at, u.importance, u.run_id "
                "FROM unnest(%s::text[], %s::text[], %s::float8[], %s::int[], %s::text[]) "
                "WITH ORDINALITY AS u(text, tags, at, importance, run_id, ord) ORDER BY u.ord",
                (self._agent, *columns),
            )
