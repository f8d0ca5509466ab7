"""One file of a log: its lines as :class:`LogLine` objects, read forward or followed as it grows.

Every file is opened without following a link and refused unless it is a
regular file (:func:`open_log`): a FIFO planted at a log's place would make
a reader wait forever. Lines are read a chunk at a time
(:mod:`agentops.ops._lines`), so memory stays flat whatever a file holds.

:class:`Tail` reads the current file of a log, each time from where the last
read ended. When another file takes the log's place (a rotation) it reads
the rest of the old one, then the new one; when the file is cut shorter in
place (copytruncate) it reads it again from the start.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from agentops._infra.fs import describe
from agentops.errors import StateError
from agentops.ops._lines import CHUNK, Splitter

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from agentops.ops._lines import RawLine

__all__ = [
    "LogLine",
    "Tail",
    "forward",
    "log_line",
    "open_log",
    "parse_line",
    "pread",
]


class LogLine(NamedTuple):
    """One line of a log file: its text, and the JSON object it holds (None if it holds none)."""

    text: str
    event: dict[str, Any] | None
    path: Path
    lineno: int | None
    """Where it is: the file, and the line's number in it (from 1; None if read from mid-file)."""
    offset: int = 0
    """Where the line starts in its file, in bytes."""


def parse_line(text: str, path: Path, lineno: int | None, offset: int = 0) -> LogLine:
    """A :class:`LogLine` of ``text``: its JSON object, or None if it is not one."""
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, a number too long, nested too deeply
        event = None
    return LogLine(text, event if isinstance(event, dict) else None, path, lineno, offset)


def log_line(raw: RawLine, path: Path, lineno: int | None) -> LogLine:
    """The :class:`LogLine` of a line read from ``path``."""
    text = raw.data.decode("utf-8", "replace")
    if raw.clipped:  # too long to be a line anyone wants parsed: shown as text, clipped
        return LogLine(f"{text}… ({raw.size:,} bytes)", None, path, lineno, raw.offset)
    return parse_line(text, path, lineno, raw.offset)


def open_log(path: Path) -> int | None:
    """A descriptor to read a file of a log (None if there is none); never a link, FIFO or device.

    Opened without blocking, so a FIFO planted at a log's place is refused
    in one line instead of waiting forever for a writer.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"{path}: cannot read: {describe(exc)}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StateError(f"{path}: cannot read: not a regular file")
    return fd


def pread(fd: int, path: Path, position: int) -> bytes:
    """The next chunk of ``fd`` from ``position`` (empty at its end)."""
    try:
        return os.pread(fd, CHUNK, position)
    except OSError as exc:
        raise StateError(f"{path}: cannot read: {describe(exc)}") from exc


def forward(fd: int, path: Path, *, offset: int = 0, partial: bool = True) -> Iterator[LogLine]:
    """The lines of ``fd`` from ``offset`` (a line's start) to its end."""
    reading = _Open(path, fd, offset=offset)
    yield from reading.drain(partial=partial)


class _Open:
    """A file being read: where the next read starts, and how many lines came before."""

    def __init__(self, path: Path, fd: int, *, offset: int) -> None:
        self.path = path
        self.fd = fd
        self.position = offset
        self.splitter = Splitter(offset)
        self.lineno: int | None = 0 if offset == 0 else None  # unknown, read from mid-file

    def drain(self, *, partial: bool) -> Iterator[LogLine]:
        """The lines written since the last drain (with ``partial``, a last one without newline)."""
        while chunk := pread(self.fd, self.path, self.position):
            self.position += len(chunk)
            for raw in self.splitter.feed(chunk):
                line = self._line(raw)
                if line is not None:
                    yield line
        last = self.splitter.flush() if partial else None
        if last is not None and (line := self._line(last)) is not None:
            yield line

    def _line(self, raw: RawLine) -> LogLine | None:
        self.lineno = None if self.lineno is None else self.lineno + 1
        return None if raw.blank else log_line(raw, self.path, self.lineno)

    def rewind(self) -> None:
        """Read again from the start (the file was cut shorter in place)."""
        self.position, self.splitter, self.lineno = 0, Splitter(0), 0

    def close(self) -> None:
        """Close the file."""
        with contextlib.suppress(OSError):
            os.close(self.fd)


class Tail:
    """The current file of a log, read from where it was last read.

    After a rotation the old file is still read, until the next rotation: a
    run that had it open when another invocation rotated the log (a skipped
    run, an operator command) goes on writing its lines there.
    """

    def __init__(self, path: Path, fd: int | None, *, offset: int = 0) -> None:
        """Read the log at ``path`` (from its file ``fd``, if open already) from ``offset``."""
        self.path = path
        self.previous: _Open | None = None
        self.current = None if fd is None else _Open(path, fd, offset=offset)

    def read(self, *, partial: bool) -> Iterator[LogLine]:
        """What was appended since the last read (after a rotation: the old file, then the new)."""
        if self.previous is not None:
            yield from self.previous.drain(partial=False)
        if self.current is None:
            self.current = self._open()
            if self.current is None:
                return
        yield from self.current.drain(partial=partial)
        change = self._change(self.current)
        if change == "replaced":  # rotated, or removed and written afresh: the new one too
            if self.previous is not None:
                self.previous.close()
            self.previous, self.current = self.current, self._open()
        elif change == "truncated":  # cut in place (copytruncate): read again from the start
            self.current.rewind()
        if change is not None and self.current is not None:
            yield from self.current.drain(partial=partial)

    def _open(self) -> _Open | None:
        fd = open_log(self.path)
        return None if fd is None else _Open(self.path, fd, offset=0)

    def _change(self, reading: _Open) -> Literal["replaced", "truncated"] | None:
        """Whether another file took the log's place (a rotation), or it was cut shorter.

        A log gone with nothing in its place yet is read on from the old
        file until a new one appears.
        """
        try:
            now = self.path.lstat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read: {describe(exc)}") from exc
        if not os.path.samestat(now, os.fstat(reading.fd)):
            return "replaced"
        return "truncated" if now.st_size < reading.position else None

    def close(self) -> None:
        """Close the files being read."""
        for reading in (self.previous, self.current):
            if reading is not None:
                reading.close()
        self.previous = self.current = None
