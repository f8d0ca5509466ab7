"""Scanning a file of a log for a few events, the others left unparsed: what the report reads.

Most of a log is lines a reader does not want (``http.request``...);
telling them by their first bytes is several times cheaper than parsing
them, and over a log of a gigabyte that is most of the cost.
"""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING

from agentops.ops._lines import Splitter, stamp_of
from agentops.ops._logfile import LogLine, log_line, open_log, parse_line, pread

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from agentops.ops._lines import RawLine

__all__ = ["scan_file"]


def scan_file(  # noqa: C901 - one flat loop: it runs for every line of a log
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
        lineno = 0 if offset == 0 else None  # numbered only when read from the start
        for batch in _batches(fd, path, offset):
            for data in batch:
                if lineno is not None:
                    lineno += 1
                if not isinstance(data, bytes):  # too long to be a line anyone wants: as text
                    yield log_line(data, path, lineno)
                    continue
                found = _EVENT.search(data, 0, _EVENT_WITHIN)
                if found is not None:
                    if found[1] not in wanted:
                        continue
                elif not data.strip():
                    continue
                if older is not None and (stamp := stamp_of(data)) is not None:
                    if stamp < older:
                        continue
                    older = None  # the period has begun: the tally leaves out what is older
                yield _parsed(data.decode("utf-8", "replace"), path, lineno)
    finally:
        os.close(fd)


_EVENT = re.compile(rb'"event":"([^"\\]*)"')
_EVENT_WITHIN = 200
"""How far into a line agentops writes its event: after a stamp and a level."""

_decode = json.JSONDecoder().raw_decode


def _parsed(text: str, path: Path, lineno: int | None) -> LogLine:
    """:func:`parse_line`, a third quicker for the lines agentops writes (one object, no spaces)."""
    try:
        event, end = _decode(text)
    except (ValueError, RecursionError):
        return parse_line(text, path, lineno)
    if end != len(text) or not isinstance(event, dict):
        return parse_line(text, path, lineno)
    return LogLine(text, event, path, lineno, 0)


def _batches(fd: int, path: Path, offset: int) -> Iterator[list[bytes | RawLine]]:
    """The lines of ``fd`` from ``offset``, a chunk's worth at a time (the last line too)."""
    splitter, position = Splitter(offset), offset
    while chunk := pread(fd, path, position):
        position += len(chunk)
        yield splitter.cut(chunk)
    last = splitter.flush()
    if last is not None:
        yield [last.data if not last.clipped else last]
