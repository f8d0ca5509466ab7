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

__all__ = ["NoteRow", "NoteRows", "NoteShelf", "PendingNote", "StoredNote"]

NoteRow = tuple[int, str, str, float, int, str]
"""``(id, text, tags as a JSON list, at as a POSIX time, importance, run_id)``."""

PendingNote = tuple[str, str, float, int]
"""A note not yet written: ``(text, tags as a JSON list, at, importance)``."""

StoredNote = tuple[str, str, float, int, str]
"""A note as it is written: ``(text, tags as a JSON list, at, importance, run_id)``.

Everything the ranking reads of a note besides its words is here: ``at``
(recency) and ``importance``; ties go to the note written later.
"""


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

    def add(self, rows: Sequence[StoredNote], keep: int | None) -> int:
        """Add ``(text, tags, at, importance, run_id)`` rows, keep ``keep``; how many went."""

    def every(self) -> list[StoredNote]:
        """Every note, in the order they were written (``agentops store copy`` reads them)."""

    def replace(self, rows: Sequence[StoredNote]) -> None:
        """Make ``rows``, in this order, every note of the agent: in one commit."""


class NoteShelf(Protocol):
    """Every agent's notes where one store keeps them, as ``agentops store copy`` moves them.

    The store's own rows (:class:`NoteRows`), or the notes files beside the
    state (:mod:`agentops.memory.shelf` makes both).
    """

    @property
    def files(self) -> str | None:
        """The directory of the notes files; None when the store keeps the notes itself.

        Two shelves of the same directory are one place: nothing to move.
        """

    def read(self, name: str) -> list[StoredNote]:
        """Every note of ``name``, oldest written first; StateError if they cannot be read."""

    def holds(self, name: str) -> bool:
        """Whether it keeps any note of ``name``."""

    def replace(self, name: str, notes: Sequence[StoredNote]) -> None:
        """Make ``notes`` every note of ``name``, at once (none: remove those it keeps)."""
