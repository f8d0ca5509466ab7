"""SQLite databases agentops keeps under ``state/``, opened and read the way every other file is.

SQLite opens its files itself, so the file-system seam's promises are kept
here by hand: the database is created owner-only through the seam (no link
followed), anything but a regular file where it or a file SQLite adds
would go is refused (a link, and a FIFO, which SQLite would wait on
forever), and the side files SQLite creates take the database's mode.

Every read of a database goes through :func:`failure`, which turns what a
damaged or unreachable file raises into one :class:`Failure`: SQLite's own
errors, text that is not UTF-8 (flipped bytes make ``sqlite3`` raise
``UnicodeDecodeError``, even from inside its error messages) and I/O
errors. Callers turn it into one line (a command) or do without the file
(a run, for a cache). ``import sqlite3`` happens here only, when a run
first needs a database.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

from agentops._infra.files import check_regular
from agentops._infra.fs import describe

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from agentops._infra.fs import FileSystem

__all__ = ["Failure", "check_files", "connect", "create", "errors", "failure"]

_SIDE_FILES = ("-wal", "-shm", "-journal")
_DAMAGE = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})


class Failure(NamedTuple):
    """What went wrong reading a database, in one line."""

    why: str
    damaged: bool
    """The file is not a database, or a corrupt one (not a full disk, a lock or an I/O error)."""


def errors() -> tuple[type[Exception], ...]:
    """The exceptions reading a database may raise: catch these, then ask :func:`failure`."""
    import sqlite3  # noqa: PLC0415 - only runs that keep a database pay for it

    return (sqlite3.Error, UnicodeDecodeError, OSError)


def failure(exc: BaseException) -> Failure:
    """The one line for ``exc``, one of :func:`errors`, and whether the file is damaged."""
    if isinstance(exc, UnicodeDecodeError):
        return Failure(f"text that is not UTF-8 ({exc.reason})", damaged=True)
    if isinstance(exc, OSError):
        return Failure(describe(exc), damaged=False)
    name = getattr(exc, "sqlite_errorname", None)
    return Failure(f"{type(exc).__name__}: {exc}", damaged=name in _DAMAGE)


def connect(
    fs: FileSystem, path: Path, *, timeout_s: float = 5.0, threads: bool = False
) -> sqlite3.Connection:
    """The database at ``path`` (created if missing), in WAL mode, never through a link.

    With ``threads`` the connection may be used from any thread (the caller
    serialises its use).

    Raises ``OSError`` (``ELOOP`` for a link) when the file cannot be made or
    is not a regular file, and ``sqlite3.DatabaseError`` when it is not a database.
    """
    import sqlite3  # noqa: PLC0415 - only runs that keep a database pay for it

    check_files(path)
    create(fs, path)
    connection = sqlite3.connect(
        path, timeout=timeout_s, isolation_level=None, check_same_thread=not threads
    )
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            "PRAGMA synchronous=NORMAL"
        )  # WAL: a power cut loses the last commits only
    except sqlite3.DatabaseError:
        connection.close()
        raise
    return connection


def check_files(path: Path) -> None:
    """Raise ``OSError`` if anything but a regular file stands where the database or a side file is.

    A link is ``ELOOP``; a FIFO, a socket, a device or a directory is
    :class:`~agentops._infra.files.Unreadable`.
    """
    for candidate in (path, *(path.with_name(path.name + side) for side in _SIDE_FILES)):
        check_regular(candidate)


def create(fs: FileSystem, path: Path) -> None:
    """Make the file at ``path`` if missing: owner-only, through the seam, no link followed."""
    if os.path.lexists(path):
        return
    fs.mkdir(path.parent)
    fs.close(fs.open(path, os.O_RDWR | os.O_CREAT))
    fs.fsync_dir(path.parent)
