"""Reading a file agentops did not necessarily write: its kind and size checked first.

Anything can stand where agentops expects one of its files: a FIFO (opening
it for reading waits for a writer, forever), a socket, a device, a
directory, a file of many gigabytes, or JSON nested thousands deep (Python's
``json`` recurses until ``RecursionError``). So every file agentops reads is
opened here:

- :func:`open_regular` refuses anything but a regular file without waiting
  on it: ``lstat`` first (a FIFO or a device is never opened), then the
  open itself is non-blocking and does not follow a link, and ``fstat``
  checks that what was opened is still a regular file;
- :func:`read_regular` reads one, refusing it when it is larger than the
  caller's bound;
- :func:`load_json` parses JSON with a depth bound (pydantic-core's parser
  stops at 200 levels with a ``ValueError``, never a ``RecursionError``).

A refusal is an :class:`Unreadable`, an ``OSError`` whose ``strerror`` says
what stands there in words (``it is a FIFO, not a regular file``), so every
``except OSError`` that already turns a file error into one line says it too.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING, Any

import pydantic_core

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "CONFIG_FILE_LIMIT",
    "SIDE_FILE_LIMIT",
    "STATE_FILE_LIMIT",
    "Unreadable",
    "check_regular",
    "describe_size",
    "kind_of",
    "load_json",
    "open_regular",
    "read_regular",
]

SIDE_FILE_LIMIT = 1 << 20
"""The most agentops reads of a small record (a lock, a pause, notices, the last attempt)."""

STATE_FILE_LIMIT = 256 << 20
"""The most it reads of a state, a ledger or a journal."""

CONFIG_FILE_LIMIT = 16 << 20
"""The most it reads of a file people write: agent.toml, agentops.toml."""

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISLNK, "a symbolic link"),
)


class Unreadable(OSError):
    """A file agentops refuses to read: not a regular file, or too large."""

    def __init__(self, path: Path | str, why: str, *, code: int = errno.EINVAL) -> None:
        """``why`` is said as the error's ``strerror``: ``cannot read X: <why>``."""
        super().__init__(code, why, str(path))


def kind_of(mode: int) -> str:
    """What a file of ``mode`` is, in words (``a FIFO``, ``a regular file``...)."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def describe_size(size: int) -> str:
    """A size for people: ``3.2 GB``, ``12 MB``, ``512 bytes``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _refuse_kind(path: Path | str, mode: int) -> Unreadable:
    if stat.S_ISLNK(mode):
        return Unreadable(
            path,
            "it is a symbolic link, and agentops does not read or write through links",
            code=errno.ELOOP,
        )
    return Unreadable(path, f"it is {kind_of(mode)}, not a regular file")


def check_regular(path: Path | str, *, follow_links: bool = False) -> bool:
    """Whether ``path`` exists: True for a regular file, False if nothing is there.

    Raises :class:`Unreadable` for anything else (a link included, unless
    ``follow_links``: then what it leads to is checked), without opening it.
    """
    try:
        mode = (os.stat if follow_links else os.lstat)(path).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(mode):
        raise _refuse_kind(path, mode)
    return True


def open_regular(path: Path | str, *, follow_links: bool = False) -> int | None:
    """A read-only descriptor of the regular file at ``path``, None if nothing is there.

    Never waits: a FIFO or a device is refused before it is opened, and the
    open is non-blocking in case one was put there in between. A link is
    refused (``ELOOP``) unless ``follow_links``. Raises :class:`Unreadable`
    (or the ``OSError`` of the open).
    """
    if not check_regular(path, follow_links=follow_links):
        return None
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | (0 if follow_links else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):  # swapped in since the lstat
        os.close(fd)
        raise _refuse_kind(path, mode)
    return fd


def read_regular(
    path: Path | str, *, limit: int = STATE_FILE_LIMIT, follow_links: bool = False
) -> bytes | None:
    """The bytes of the regular file at ``path`` (None if missing), at most ``limit`` of them.

    Raises :class:`Unreadable` for a file that is not regular or is larger
    than ``limit``, and for a link unless ``follow_links`` (configuration
    files people link into place).
    """
    fd = open_regular(path, follow_links=follow_links)
    if fd is None:
        return None
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise _too_large(path, size, limit)
        chunks = []
        total = 0
        while chunk := os.read(fd, min(limit + 1 - total, 1 << 20)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew while being read
                raise _too_large(path, total, limit)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _too_large(path: Path | str, size: int, limit: int) -> Unreadable:
    return Unreadable(
        path,
        f"it is {describe_size(size)}, more than the {describe_size(limit)} agentops reads of it",
        code=errno.EFBIG,
    )


def load_json(raw: bytes | str) -> Any:
    """The JSON document in ``raw``; ``ValueError`` if it is not JSON or is nested too deep.

    NaN and infinities are refused as JSON refuses them.
    """
    return pydantic_core.from_json(raw, allow_inf_nan=False)
