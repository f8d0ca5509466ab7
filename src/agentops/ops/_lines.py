"""The lines of a log file, in bounded memory: forward from an offset, or backward from the end.

Whatever a log holds (a 2 GB file, a hole of zeros with no newline, one
line of a gigabyte), reading it costs at most :data:`CHUNK` bytes at a time
and one line of at most :data:`MAX_LINE_BYTES`: a longer line is not held
whole, only its first :data:`HEAD_BYTES` are kept (it cannot be JSON anyone
wants, and is shown clipped).

Every line comes with the offset it starts at, so a reader that looked
backward for where to start (the last N lines, the last run) reads forward
from there. Lines agentops wrote can be told apart without parsing them:
:func:`stamp_of` reads the ``ts`` every line starts with, as bytes.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "CHUNK",
    "HEAD_BYTES",
    "MAX_LINE_BYTES",
    "RawLine",
    "Splitter",
    "backward",
    "seek_stamp",
    "stamp_of",
]

CHUNK = 1 << 18
"""How much of a file is read at a time (less than :data:`MAX_LINE_BYTES`)."""

MAX_LINE_BYTES = 1 << 22
"""The longest line held whole (4 MiB); a longer one keeps only its head."""

HEAD_BYTES = 1024
"""What is kept of a line longer than :data:`MAX_LINE_BYTES`: enough to show what it was."""


class RawLine(NamedTuple):
    """One line of a file, without its newline."""

    data: bytes
    """The line; only its first :data:`HEAD_BYTES` if it is longer than :data:`MAX_LINE_BYTES`."""
    offset: int
    """Where it starts in the file."""
    size: int
    """Its whole length, in bytes."""
    complete: bool = True
    """Whether a newline ends it (a last line still being written has none yet)."""

    @property
    def clipped(self) -> bool:
        """Whether the line was too long to be held whole."""
        return self.size > len(self.data)

    @property
    def blank(self) -> bool:
        """Whether the line holds only white space."""
        return not self.clipped and not self.data.strip()


def _keep(data: bytes, size: int) -> bytes:
    """What is held of a line of ``size`` bytes whose first bytes are ``data``."""
    return data if size <= MAX_LINE_BYTES else data[:HEAD_BYTES]


class Splitter:
    """Cuts the bytes of a file, fed in order, into lines (a line cut by a chunk is joined)."""

    def __init__(self, offset: int = 0) -> None:
        """Split bytes that start at ``offset`` in the file."""
        self.offset = offset
        """Where the line not yet ended starts."""
        self._pending = b""
        self._size = 0

    @property
    def pending(self) -> bool:
        """Whether bytes of a line without its newline yet are held."""
        return self._size > 0

    def feed(self, chunk: bytes) -> Iterator[RawLine]:
        """The lines that ``chunk`` ends (all but its last part, which waits for its newline)."""
        *whole, rest = chunk.split(b"\n")
        offset = self.offset
        for index, part in enumerate(whole):
            if index == 0 and self._size:
                size = self._size + len(part)
                data = _keep(self._pending + part[: MAX_LINE_BYTES + 1], size)
                self._pending, self._size = b"", 0
            else:
                size = len(part)
                data = _keep(part, size)
            yield RawLine(data, offset, size)
            offset += size + 1
        self.offset = offset
        self._hold(rest)

    def cut(self, chunk: bytes) -> list[bytes | RawLine]:
        """The lines that ``chunk`` ends, as bytes: :meth:`feed` without offsets, and cheaper.

        A line too long to hold whole is a clipped :class:`RawLine`. (Only a
        line joined across chunks can be: a chunk is shorter than the bound.)
        """
        *whole, rest = chunk.split(b"\n")
        lines: list[bytes | RawLine] = list(whole)
        if whole:
            start = self.offset + self._size  # where ``chunk`` starts in the file
            if self._size:
                size = self._size + len(whole[0])
                first = self._pending + whole[0][: MAX_LINE_BYTES + 1]
                clipped = size > MAX_LINE_BYTES
                lines[0] = RawLine(first[:HEAD_BYTES], self.offset, size) if clipped else first
                self._pending, self._size = b"", 0
            self.offset = start + len(chunk) - len(rest)
        self._hold(rest)
        return lines

    def _hold(self, rest: bytes) -> None:
        """Keep the start of a line not ended yet (no more of it than will be kept)."""
        if rest:
            self._size += len(rest)
            held = self._pending + rest[: MAX_LINE_BYTES + 1]
            self._pending = _keep(held, self._size)

    def flush(self) -> RawLine | None:
        """The line not yet ended (None if there is none); the splitter then holds nothing."""
        if not self._size:
            return None
        line = RawLine(self._pending, self.offset, self._size, complete=False)
        self.offset += self._size
        self._pending, self._size = b"", 0
        return line


def backward(fd: int, end: int) -> Iterator[RawLine]:
    """The lines of the file ``fd`` before byte ``end``, the last first.

    A last part not ended by a newline comes first, marked incomplete.
    """
    position, line_end = end, end
    carry, size = b"", 0  # the end of the line whose start is not read yet
    while position > 0:
        count = min(CHUNK, position)
        position -= count
        chunk = os.pread(fd, count, position)
        if len(chunk) < count:  # cut shorter (copytruncate) while being read: what it was is gone
            return
        right = len(chunk)
        while (newline := chunk.rfind(b"\n", 0, right)) >= 0:
            part = chunk[newline + 1 : right]
            line_size = size + len(part)
            if line_size or line_end != end:
                data = _keep(part + carry, line_size)
                yield RawLine(data, position + newline + 1, line_size, complete=line_end != end)
            carry, size = b"", 0
            line_end = position + newline
            right = newline
        size += right
        carry = _keep(chunk[:right] + carry[: MAX_LINE_BYTES + 1], size)
    if size or line_end != end:  # the first line (empty, if the file starts with a newline)
        yield RawLine(carry, 0, size, complete=line_end != end)


_STAMP_HEAD = b'{"ts":"'
_STAMP_END = len(_STAMP_HEAD) + 19  # 2026-11-22T03:10:00


def stamp_of(data: bytes) -> bytes | None:
    """The ``ts`` of a line agentops wrote, to the second (``b"2026-11-22T03:10:00"``).

    Such stamps are UTC, so they sort as bytes sort. None for a line that
    does not start so, or whose stamp is not in UTC (``Z``).
    """
    if not data.startswith(_STAMP_HEAD):
        return None
    close = data.find(b'"', _STAMP_END)
    if close < 0 or data[close - 1 : close] != b"Z":
        return None
    return data[len(_STAMP_HEAD) : _STAMP_END]


_PROBE_LINES = 64


def seek_stamp(fd: int, size: int, before: bytes) -> int:
    """The start of a line of ``fd`` from which on no line is stamped earlier than ``before``.

    A bisection over the file, which is in the order it was written: the
    lines before the offset returned are stamped earlier than ``before``
    (``b"2026-11-22T03:10:00"``, as :func:`stamp_of` gives). Where a probe
    finds no stamp it can read, it stops: what is left is read.
    """
    low, high = 0, size
    while high - low > CHUNK:
        middle = (low + high) // 2
        found = _first_stamp_after(fd, middle, high)
        if found is None:
            return low
        start, stamp = found
        if stamp < before:
            low = start
        else:
            high = middle
    return low


def _first_stamp_after(fd: int, offset: int, limit: int) -> tuple[int, bytes] | None:
    """The start and stamp of the first stamped line after ``offset``, before ``limit``."""
    chunk = os.pread(fd, CHUNK, offset)
    newline = chunk.find(b"\n")
    if newline < 0:
        return None
    splitter = Splitter(offset + newline + 1)
    for index, line in enumerate(splitter.feed(chunk[newline + 1 :])):
        if line.offset >= limit or index >= _PROBE_LINES:
            return None
        stamp = stamp_of(line.data)
        if stamp is not None:
            return line.offset, stamp
    return None
