"""An agent's long-term notes in the PostgreSQL store, searched with PostgreSQL's full-text search.

One row per note in ``{schema}.note``, with a stored ``tsvector`` of its
text and tags (the ``english`` configuration: words stemmed much as SQLite's
porter tokenizer stems them). A search ORs the query's words
(:func:`~agentops.memory.notes.words`, each quoted: free text is never query
syntax) and gives each note that holds one the bm25 SQLite's FTS5 would give
it, computed from the tsvectors (``ts_rank`` weighs neither a note's length
nor a word's rarity as bm25 does, so the two stores ordered notes
differently). The notes the run has made and not yet written are searched
in the same statement, so they count as if written. Ranking by relevance,
recency and importance is :func:`agentops.memory.notes.scored`, the same as
for notes kept in SQLite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from agentops.model.noterows import NoteRow, PendingNote, StoredNote
    from agentops.store._pgconnection import Statements

__all__ = ["PostgresNoteRows"]

_COLUMNS = 5
"""The columns of a :data:`~agentops.model.noterows.StoredNote`: text, tags, at, importance, run."""

_MATCHES = """
WITH query AS MATERIALIZED (SELECT to_tsquery('english'::regconfig, %s) AS q),
term AS MATERIALIZED (
    SELECT w.i, (tsvector_to_array(to_tsvector('english'::regconfig, w.word)))[1] AS lexeme
    FROM unnest(%s::text[]) WITH ORDINALITY AS w(word, i)
),
pending AS MATERIALIZED (
    SELECT -u.ord AS id, u.at, u.importance,
        cardinality(array_remove(regexp_split_to_array(u.body, '[^[:alnum:]]+'), ''))
            AS word_count,
        to_tsvector('english'::regconfig, u.body) AS words
    FROM unnest(%s::text[], %s::float8[], %s::int[])
        WITH ORDINALITY AS u(body, at, importance, ord)
),
corpus AS (
    SELECT sum(notes)::float8 AS notes, sum(words)::float8 / sum(notes) AS average_length
    FROM (
        SELECT count(*) AS notes, sum(n.word_count) AS words FROM {s}.note n WHERE n.agent = %s
        UNION ALL
        SELECT count(*), sum(p.word_count) FROM pending p
    ) parts
),
every AS MATERIALIZED (
    SELECT n.id, n.at, n.importance, n.word_count::float8 AS length, n.words AS found
    FROM {s}.note n, query WHERE n.agent = %s AND n.words @@ query.q
    UNION ALL
    SELECT p.id, p.at, p.importance, p.word_count::float8, p.words
    FROM pending p, query WHERE p.words @@ query.q
),
hit AS (
    SELECT e.id, t.i, cardinality(v.positions)::float8 AS tf
    FROM every e CROSS JOIN LATERAL unnest(e.found) v JOIN term t ON t.lexeme = v.lexeme
),
idf AS (
    SELECT i, CASE WHEN idf <= 0 THEN 1e-6 ELSE idf END AS idf FROM (
        SELECT h.i, ln((c.notes - count(*) + 0.5) / (count(*) + 0.5)) AS idf
        FROM hit h, corpus c GROUP BY h.i, c.notes
    ) raw
)
SELECT e.id, -sum(
        idf.idf * (h.tf * (1.2::float8 + 1))
            / (h.tf + 1.2 * (1 - 0.75 + 0.75 * e.length / c.average_length))
        ORDER BY h.i
    ), e.at, e.importance
FROM every e JOIN hit h ON h.id = e.id JOIN idf ON idf.i = h.i, corpus c
GROUP BY e.id, e.length, e.at, e.importance, c.average_length
"""
"""``(id, -bm25, at, importance)`` of the stored and pending notes holding a word of the query.

bm25 as SQLite's FTS5 computes it, in the same order of operations: k1 =
1.2, b = 0.75, each query word's IDF ``ln((N - n + 0.5) / (n + 0.5))`` (at
least 1e-6) over every note of the agent and the pending ones, summed in the
query's order. A word's frequency in a note is the count of its lexeme's
positions in the tsvector; a note's length is the runs of letters and digits
in its text and tags, stop words included, as FTS5's tokenizer counts them
(the tsvector leaves stop words out, and counts a hyphenated word's parts
again), kept in the generated column ``word_count``: the average is summed
from an index of it, and only the notes that hold a word (found through the
GIN index) are read whole. A pending note's tsvector and length are the
expressions of the table's generated columns.
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
        """``(id, -bm25, at, importance)`` of the notes holding a word (pending: negative)."""
        if not words:
            return []
        # Each word is letters and digits only: quoted, it is a lexeme, never syntax.
        query = " | ".join(f"'{word}'" for word in words)
        bodies = [f"{text} {tags}" for text, tags, _, _ in pending]
        ats = [at for _, _, at, _ in pending]
        importances = [importance for _, _, _, importance in pending]
        return list(
            self._store.execute(
                _MATCHES,
                (query, list(words), bodies, ats, importances, self._agent, self._agent),
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
        # One array a column (none written: five empty ones, the bound still kept).
        columns = [list(column) for column in zip(*rows, strict=True)] or [[]] * _COLUMNS
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
