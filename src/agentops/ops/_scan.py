"""Scanning a file of a log for a few events, the others left unparsed: what the report reads.

Most of a log is lines a reader does not want (``http.request``...);
telling them by their first bytes is several times cheaper than parsing
them, and over a log of a gigabyte that is most of the cost.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from agentops.ops._lines import Splitter, stamp_of
from agentops.ops._logfile import log_line, open_log, parse_line, pread

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from agentops.ops._lines import RawLine
    from agentops.ops._logfile import LogLine

__all__ = ["scan_file"]


def scan_file(
    path: Path, events: frozenset[str], *, offset: int = 0, older: bytes | None = None
) -> Iterator[LogLine]:
    """The lines of one file of a log that may be one of ``events``, others left unparsed.

    Most of a log is lines a reader does not want (``http.request``...):
    telling them by the ``"event":"`` agentops writes third on every line is
    several times cheaper than parsing them. So are the lines stamped (to
    the second) before ``older`` (``b"2026-11-22T03:10:00"``) at the start
    of the file, if given: until the first that is not. A line that cannot
    be told that way (not JSON, written by another tool) is parsed and
    given. Reading starts at ``offset`` (a line's start); the lines given
    do not say where they are in the file (their offset is 0).
    """
    wanted = {name.encode() for name in events}
    fd = open_log(path)
    if fd is None:
        return
    try:
        lineno = 0 if offset == 0 else None
        for data in _cut(fd, path, offset):
            lineno = None if lineno is None else lineno + 1
            if not isinstance(data, bytes):  # too long to be a line anyone wants: as text
                yield log_line(data, path, lineno)
                continue
            start = data.find(_EVENT_KEY)
            if start >= 0:
                start += len(_EVENT_KEY)
                if data[start : data.find(b'"', start)] not in wanted:
                    continue
            elif not data.strip():
                continue
            if older is not None and (stamp := stamp_of(data)) is not None:
                if stamp < older:
                    continue
                older = None  # the period has begun: the tally leaves out what is older still
            yield parse_line(data.decode("utf-8", "replace"), path, lineno)
    finally:
        os.close(fd)


_EVENT_KEY = b'"event":"'


def _cut(fd: int, path: Path, offset: int) -> Iterator[bytes | RawLine]:
    """The lines of ``fd`` from ``offset``, as :meth:`Splitter.cut` gives them, the last too."""
    splitter, position = Splitter(offset), offset
    while chunk := pread(fd, path, position):
        position += len(chunk)
        yield from splitter.cut(chunk)
    last = splitter.flush()
    if last is not None:
        yield last.data if not last.clipped else last
