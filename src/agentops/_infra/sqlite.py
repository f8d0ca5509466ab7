"""SQLite databases agentops keeps under ``state/``, opened the way every other file is.

SQLite opens its files itself, so the file-system seam's promises are kept
here by hand: the database is created owner-only through the seam (no link
followed), a link where it or its write-ahead log would go is refused, and
the side files SQLite creates take the database's mode. ``import sqlite3``
happens here only, when a run first needs a database.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from agentops._infra.fs import FileSystem

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

__all__ = ["connect", "create", "refuse_links"]

_SIDE_FILES = ("-wal", "-shm", "-journal")


def connect(
    fs: FileSystem, path: Path, *, timeout_s: float = 5.0, threads: bool = False
) -> sqlite3.Connection:
    """The database at ``path`` (created if missing), in WAL mode, never through a link.

    With ``threads`` the connection may be used from any thread (the caller
    serialises its use).

    Raises ``OSError`` (``ELOOP`` for a link) when the file cannot be made, and
    ``sqlite3.DatabaseError`` when it is not a database.
    """
    import sqlite3  # noqa: PLC0415 - only runs that keep a database pay for it

    refuse_links(path)
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


def refuse_links(path: Path) -> None:
    """Raise ``ELOOP`` if a link stands where the database or a file SQLite adds would go."""
    for candidate in (path, *(path.with_name(path.name + side) for side in _SIDE_FILES)):
        FileSystem.refuse_link(candidate)


def create(fs: FileSystem, path: Path) -> None:
    """Make the file at ``path`` if missing: owner-only, through the seam, no link followed."""
    if os.path.lexists(path):
        return
    fs.mkdir(path.parent)
    fs.close(fs.open(path, os.O_RDWR | os.O_CREAT))
    fs.fsync_dir(path.parent)
