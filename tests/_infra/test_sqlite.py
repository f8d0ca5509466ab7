"""SQLite files under state/: owner-only through the seam, never through a link, in WAL mode."""

from __future__ import annotations

import errno
import os
import sqlite3
import stat

import pytest

from agentops._infra.files import Unreadable
from agentops._infra.fs import FileSystem
from agentops._infra.sqlite import check_files, connect, create, errors, failure


def test_a_new_database_is_owner_only_in_an_owner_only_directory(tmp_path):
    """connect() makes state/ (0700) and the file (0600), and opens it in WAL mode."""
    path = tmp_path / "state" / "a.memory.sqlite"
    db = connect(FileSystem(), path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (1)")
    finally:
        db.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sqlite3.connect(path).execute("SELECT x FROM t").fetchall() == [(1,)]


@pytest.mark.parametrize("side", ["", "-wal", "-shm", "-journal"])
def test_a_link_where_the_database_or_a_side_file_goes_is_refused(tmp_path, side):
    """A planted link is ELOOP, and its target is left as it was."""
    path = tmp_path / "a.memory.sqlite"
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (tmp_path / f"a.memory.sqlite{side}").symlink_to(victim)
    with pytest.raises(OSError, match="link") as refused:
        connect(FileSystem(), path)
    assert refused.value.errno == errno.ELOOP
    assert victim.read_text() == "untouched"


def test_create_leaves_an_existing_file_alone(tmp_path):
    """A database already there is not truncated or re-made."""
    path = tmp_path / "a.sqlite"
    path.write_bytes(b"kept")
    path.chmod(0o600)
    create(FileSystem(), path)
    assert path.read_bytes() == b"kept"
    check_files(path)  # a plain file is no link


def test_a_file_that_is_not_a_database_is_a_database_error(tmp_path):
    """Garbage where the database is: sqlite3.DatabaseError, and the connection is closed."""
    path = tmp_path / "a.sqlite"
    path.write_bytes(b"garbage" * 1000)
    with pytest.raises(sqlite3.DatabaseError):
        connect(FileSystem(), path)


@pytest.mark.parametrize("side", ["", "-wal", "-journal"])
def test_a_fifo_where_the_database_or_a_side_file_goes_is_refused_not_waited_on(tmp_path, side):
    """SQLite would wait on a FIFO for a writer: it is refused before SQLite opens anything."""
    path = tmp_path / "a.memory.sqlite"
    os.mkfifo(tmp_path / f"a.memory.sqlite{side}")
    with pytest.raises(Unreadable, match="a FIFO, not a regular file"):
        connect(FileSystem(), path)


def test_every_failure_reading_a_database_is_one_line_saying_whether_it_is_damaged(tmp_path):
    """Garbage is damage (replaced, for a cache); bad text too; an I/O error is not."""
    path = tmp_path / "a.sqlite"
    path.write_bytes(b"garbage" * 1000)
    with pytest.raises(errors()) as caught:
        connect(FileSystem(), path)
    said = failure(caught.value)
    assert said.damaged
    assert "\n" not in said.why
    bad_text = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    assert failure(bad_text) == ("text that is not UTF-8 (invalid start byte)", True)
    assert failure(OSError(errno.EIO, "Input/output error")) == ("Input/output error", False)
