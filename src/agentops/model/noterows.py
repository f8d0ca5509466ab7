"""The seam between a store that keeps an agent's notes and the memory that ranks them.

The file store keeps no notes: they are an SQLite file beside the state
(:mod:`agentops.memory.notes`). A store shared by hosts keeps them itself,
so that a note written on one host or pod is recalled on every other: it
answers :class:`NoteRows`' questions in rows, and :mod:`agentops.memory.shared`
ranks what it finds exactly as the SQLite notes are ranked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["NoteRow", "NoteRows", "PendingNote"]

NoteRow = tuple[int, str, str, float, int, str]
"""``(id, text, tags as a JSON list, at as a POSIX time, importance, run_id)``."""

PendingNote = tuple[str, str, float, int]
"""A note not yet written: ``(text, tags as a JSON list, at, importance)``."""


class NoteRows(Protocol):
    """One agent's notes as a shared store keeps them."""

    def count(self) -> int:
        """How many notes it holds."""

    def newest(self, limit: int) -> list[NoteRow]:
        """The ``limit`` most recent, newest first."""

    def matches(
        self, words: Sequence[str], pending: Sequence[PendingNote]
    ) -> list[tuple[int, float, float, int]]:
        """``(id, rank, at, importance)`` of every note holding a word of ``words``.

        The ``pending`` notes (the run's, not yet written) are searched with
        them, ``id`` ``-1 - i`` for the ``i``-th. ``rank`` is lower for a
        better match, as SQLite's bm25 is.
        """

    def rows(self, ids: Sequence[int]) -> list[NoteRow]:
        """The notes of ``ids`` (stored ones: positive ids)."""

    def add(self, rows: Sequence[tuple[str, str, float, int, str]], keep: int | None) -> int:
        """Add ``(text, tags, at, importance, run_id)`` rows, keep ``keep``; how many went."""
