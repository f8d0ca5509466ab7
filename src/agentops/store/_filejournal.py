"""The file store's journal: a run's records appended to ``<name>.journal``, fsynced if durable."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from agentops._infra.fs import FileSystem, describe
from agentops.errors import StateError
from agentops.model.journal import encode

if TYPE_CHECKING:
    from pathlib import Path

    from pydantic import BaseModel

_PAGE = 4096
_MAX_GROWTH = 1 << 20


class FileJournal:
    """``<name>.journal``: records appended with ``write``, fsynced when they must be durable.

    The file is zero-filled ahead of its records (a page, then doubling, at
    most a MiB at a time), as databases preallocate their write-ahead logs:
    an append into space already written changes no metadata, so the fsync
    that makes an intent durable writes its data alone, instead of also
    committing a new file size to the file system's journal (a third less
    time per guarded action: ``bench/actions.py``). A reader stops at the
    first zero byte (:func:`~agentops.model.journal.parse_lines`).
    """

    def __init__(self, fs: FileSystem, path: Path, run_id: str) -> None:
        """Append to ``path``, created (no link followed) by the first record."""
        self.run_id = run_id
        self._fs = fs
        self.path = path
        self._fd: int | None = None
        self._end = 0  # where the next record goes
        self._filled = 0  # the file's size: records, then zeros

    def append(self, record: BaseModel, *, durable: bool = True) -> None:
        """Write ``record``; with ``durable``, fsync it and every record before it.

        The first record (the run's ``begin``) is written to a temporary file
        that is then renamed into place: a journal that exists always starts
        with a whole record, so a run killed as it starts is recovered too.
        """
        line = encode(record)
        try:
            if self._fd is None:
                self._fd = self._fs.create(self.path, line)
                self._end = self._filled = len(line)
                return
            end = self._end + len(line)
            if end > self._filled:
                self._fill_ahead(self._fd, end)
            self._fs.write(self._fd, line)
            self._end = end
            if durable:
                self._fs.fsync(self._fd)
        except OSError as exc:
            raise self._failed(exc) from exc

    def _fill_ahead(self, fd: int, end: int) -> None:
        # The fsync that follows commits the new size once; later ones write data only.
        size = max(end, min(2 * self._filled, self._filled + _MAX_GROWTH))
        size = -(-size // _PAGE) * _PAGE
        self._fs.zero_fill(fd, self._filled, size - self._filled)
        self._filled = size

    def sync(self) -> None:
        """Fsync every record written so far."""
        if self._fd is not None:
            try:
                self._fs.fsync(self._fd)
            except OSError as exc:
                raise self._failed(exc) from exc

    def _failed(self, exc: OSError) -> StateError:
        return StateError(f"{self.path}: cannot write the journal: {describe(exc)}")

    def close(self) -> None:
        """Close the file, keeping it (the descriptor is released even if close fails)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):  # the state holding its records is committed
                self._fs.close(fd)
