"""Notes a shared store keeps: searched by the database, ranked as the SQLite notes are.

:class:`SharedNotes` answers what :class:`~agentops.memory.notes.NoteFile`
answers (``search``, ``newest``, ``count``, ``add``) over a store's
:class:`~agentops.model.noterows.NoteRows`: the database finds the notes
holding a word of the query and gives each the bm25 SQLite's FTS5 would
give it; the score (relevance min-max normalised across the matches,
recency, importance, with the agent's ``[memory]`` weights) is
:func:`agentops.memory.notes.scored`'s, the one the SQLite notes use. So
a note written on one host or pod is recalled on every other, ranked the
same way.
"""

from __future__ import annotations

import heapq
import json
from typing import TYPE_CHECKING

from agentops.memory.notes import MAX_QUERY_TERMS, Note, note_of, scored, words

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from agentops.model.noterows import NoteRows
    from agentops.project.config import MemoryConfig

__all__ = ["SharedNotes", "storable"]

_AFTER_STORED = 2**62
"""The ``i``-th pending note ranks as id ``_AFTER_STORED + 1 + i``: after every stored note."""


class SharedNotes:
    """One agent's notes in a shared store, and the notes its run made and has not written."""

    def __init__(self, rows: NoteRows, *, agent: str, pending: Sequence[Note] = ()) -> None:
        """Over ``rows``; ``pending`` count as written when searched."""
        self._rows = rows
        self.agent = agent
        self._pending = list(pending)

    def including(self, pending: Sequence[Note]) -> SharedNotes:
        """The same notes, with ``pending`` (the run's) searched as if written."""
        return SharedNotes(self._rows, agent=self.agent, pending=pending)

    def count(self) -> int:
        """How many notes are stored."""
        return self._rows.count()

    def newest(self, limit: int) -> list[Note]:
        """The ``limit`` most recent notes, newest first."""
        return [note_of(row, where=None, agent=self.agent) for row in self._rows.newest(limit)]

    def search(self, query: str, *, k: int, now: datetime, weights: MemoryConfig) -> list[Note]:
        """The ``k`` notes matching a word of ``query`` that score highest, best first."""
        found = words(query)[:MAX_QUERY_TERMS]
        if not found:
            return []
        pending = [
            (storable(n.text), json.dumps(list(n.tags)), n.at.timestamp(), n.importance)
            for n in self._pending
        ]
        # A tie of score and time goes to the note written later (the higher id), and
        # the run's notes come after every stored one, as they do in a notes file.
        candidates = [
            (id_ if id_ > 0 else _AFTER_STORED - id_, rank, at, importance)
            for id_, rank, at, importance in self._rows.matches(found, pending)
        ]
        if not candidates:
            return []
        top = heapq.nlargest(k, scored(candidates, now.timestamp(), weights))
        ids = [id_ for _, _, id_ in top if id_ < _AFTER_STORED]
        stored = {row[0]: row for row in self._rows.rows(ids)}
        notes = []
        for score, _, id_ in top:
            if id_ < _AFTER_STORED:
                notes.append(note_of(stored[id_], where=None, agent=self.agent, score=score))
            else:
                note = self._pending[id_ - _AFTER_STORED - 1]
                notes.append(
                    Note(note.text, note.tags, note.at, note.importance, note.run_id, score)
                )
        return notes

    def add(self, notes: Sequence[Note], *, keep: int | None = None) -> int:
        """Write ``notes`` and keep at most ``keep``; return how many were dropped."""
        rows = [
            (storable(n.text), json.dumps(list(n.tags)), n.at.timestamp(), n.importance, n.run_id)
            for n in notes
        ]
        return self._rows.add(rows, keep)

    def close(self) -> None:
        """Nothing to close: the store's connection is the store's."""


def storable(text: str) -> str:
    """``text`` as a database keeps it: its text holds no NUL (SQLite's does), U+FFFD instead."""
    return text.replace("\0", "\ufffd")
