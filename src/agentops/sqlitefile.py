"""SQLite databases agentops keeps under ``state/``, opened the way every other file is.

SQLite opens its files itself, so the file-system seam's promises are kept
here by hand: the database is created owner-only through the seam (no link
followed), a link where it or its write-ahead log would go is refused, and
the side files SQLite creates take the database's mode. ``import sqlite3``
happens here only, when a run first needs a database.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from agentops.fsio import FileSystem

__all__ = ["connect"]

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

    fs.mkdir(path.parent)
    for candidate in (path, *(path.with_name(path.name + side) for side in _SIDE_FILES)):
        if os.path.islink(candidate):  # noqa: PTH114 - the seam speaks os
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(candidate))
    fs.close(fs.open(path, os.O_WRONLY | os.O_CREAT))  # owner-only, no link followed
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
