"""Every agent's notes where one store keeps them: what ``agentops store copy`` moves.

A store shared by hosts keeps the notes itself
(:meth:`~agentops.store.base.Store.note_rows`); the others leave them to a
notes file per agent beside the state (:mod:`agentops.memory.notes`).
:class:`Shelf` reads and replaces either the same way, one agent's notes at
a time, as :class:`~agentops.model.noterows.StoredNote` rows: the text, the
tags, the time noted and the importance, in the order written, which is
all the ranking reads. So notes copied from files to PostgreSQL and back are
recalled, and ranked, as before.

A notes file is read without writing anything (a file a crash left
mid-write is refused until the agent's next run repairs it), and checked
whole before any of it is taken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentops.memory.notes import NoteFile
from agentops.memory.shared import storable

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from agentops._infra.fs import FileSystem
    from agentops.model.noterows import NoteRows, StoredNote

__all__ = ["Shelf"]


class Shelf:
    """The notes of a store's agents: its own rows, or the files in ``directory``."""

    def __init__(
        self,
        rows_of: Callable[[str], NoteRows | None],
        directory: Path,
        *,
        fs: FileSystem | None = None,
    ) -> None:
        """Notes by ``rows_of`` (a store's ``note_rows``), or else files in ``directory``."""
        self._rows_of = rows_of
        self._directory = directory
        self._fs = fs

    @property
    def files(self) -> str | None:
        """The directory of the notes files; None when the store keeps the notes itself."""
        # Asked of any one name (nothing is read): a store keeps every agent's notes, or none.
        return str(self._directory.absolute()) if self._rows_of("-") is None else None

    def read(self, name: str) -> list[StoredNote]:
        """Every note of ``name``, oldest written first; StateError if they cannot be read."""
        rows = self._rows_of(name)
        if rows is not None:
            return rows.every()
        file = NoteFile.open(self._path(name), agent=name, fs=self._fs)
        if file is None:
            return []
        try:
            return file.every()
        finally:
            file.close()

    def holds(self, name: str) -> bool:
        """Whether it keeps any note of ``name``."""
        rows = self._rows_of(name)
        if rows is not None:
            return rows.count() > 0
        file = NoteFile.open(self._path(name), agent=name, fs=self._fs)
        if file is None:
            return False
        try:
            return file.count() > 0
        finally:
            file.close()

    def replace(self, name: str, notes: Sequence[StoredNote]) -> None:
        """Make ``notes`` every note of ``name`` in one commit (no notes file is made for none)."""
        rows = self._rows_of(name)
        if rows is not None:  # a database's text holds no NUL, as when a run writes them
            rows.replace([(storable(t), tags, at, imp, run) for t, tags, at, imp, run in notes])
            return
        path = self._path(name)
        if not notes and not self.holds(name):  # none to keep, none kept: no file made
            return
        file = NoteFile.open(path, agent=name, fs=self._fs, writable=True)
        assert file is not None  # noqa: S101 - opened to write, it exists
        try:
            file.replace(notes)
        finally:
            file.close()

    def _path(self, name: str) -> Path:
        return self._directory / f"{name}.memory.sqlite"
