"""Where to start reading a log, found from its end: the last N lines, the last run, a period.

Reading the end of a log costs the end of the log: :func:`start_of_last`
and :func:`last_run` read it backward (through rotated files only as far
as they must), and say where the lines wanted begin; the reader then reads
forward from there (:meth:`agentops.ops.logs.LogReader.lines`). What comes
before the lines of a period is skipped unread where it can be
(:func:`periods_of`): a rotated file last written before the period, and
in a large file, the lines stamped before it (found by bisection).

A log is in the order it was written, so its stamps grow, but not
strictly: processes write side by side, and a clock may be set back a
little. A line stamped more than :data:`SLACK_S` before another written
after it is what these shortcuts do not expect.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from agentops._infra.timestamps import iso_second
from agentops.ops._lines import seek_stamp
from agentops.ops.logs import Position, line_time, log_files, open_log, run_mark

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from agentops.ops.logs import LogFilter, LogReader

__all__ = ["BISECT_BYTES", "SLACK_S", "last_run", "periods_of", "run_began", "start_of_last"]

SLACK_S = 600.0
"""How much earlier than a line before it a line may be stamped (processes, clock corrections)."""

BISECT_BYTES = 16 << 20
"""A file larger than this is bisected to skip what is older than a period (smaller: read)."""


def start_of_last(reader: LogReader, chosen: LogFilter, count: int, *, partial: bool) -> Position:
    """Where the last ``count`` lines that ``chosen`` picks begin (the log's end if none).

    A line that is not JSON goes with the line before it, as
    :meth:`~agentops.ops.logs.LogFilter.select` has it: reading from the
    position returned and keeping the last ``count`` lines selected gives
    exactly the last ``count`` lines of the whole log selected.
    """
    if count <= 0:
        return reader.end()
    lines = reader.backward(partial=partial)
    if not chosen.active:  # every line is shown: the count-th from the end
        start = None
        for seen, line in enumerate(lines, start=1):
            start = Position(line.path, line.offset)
            if seen >= count:
                break
        return start or reader.end()
    stop = _earliest(chosen)
    collected, following = 0, 0  # lines selected, and lines not JSON after the last JSON one
    start = None
    for line in lines:
        if line.event is None:
            following += 1
            continue
        if chosen.matches(line.event):
            collected += 1 + following
            start = Position(line.path, line.offset)
            if collected >= count:
                break
        elif stop is not None and (moment := line_time(line.event)) is not None and moment < stop:
            break  # what comes before is older still
        following = 0
    return start or reader.end()


def _earliest(chosen: LogFilter) -> datetime | None:
    """Before when no line ``chosen`` picks can be, less the slack (None: any time)."""
    bounds = [chosen.since] if chosen.since is not None else []
    if chosen.run_id is not None and (began := run_began(chosen.run_id)) is not None:
        bounds.append(began)
    return max(bounds) - timedelta(seconds=SLACK_S) if bounds else None


def run_began(run_id: str) -> datetime | None:
    """When the run ``run_id`` began, as its id says (``20261122T031000Z-3fa2c1``); None if not."""
    try:
        return datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def last_run(reader: LogReader, *, partial: bool) -> tuple[str, Position] | None:
    """The last run of the log (the last that started or ended), and where its lines begin.

    Read backward: first to the last line that starts or ends a run, then
    to the run's first line, which is no earlier than the run began (its
    id says when) less :data:`SLACK_S`. A run id that does not say when
    makes the whole log be read.
    """
    lines = reader.backward(partial=partial)
    for line in lines:
        run_id = run_mark(line)
        if run_id is not None:
            break
    else:
        return None
    start = Position(line.path, line.offset)
    began = run_began(run_id)
    stop = None if began is None else began - timedelta(seconds=SLACK_S)
    for line in lines:
        event = line.event
        if event is None:
            continue
        if event.get("run_id") == run_id:
            start = Position(line.path, line.offset)
        elif stop is not None and (moment := line_time(event)) is not None and moment < stop:
            break
    return run_id, start


def periods_of(path: Path, since: datetime) -> Iterator[tuple[Path, int]]:
    """The files of the log at ``path`` that may hold lines from ``since`` on, and where to start.

    A rotated file last written before ``since`` holds nothing of the
    period: its modification time is that of its last line (a rename keeps
    it). In a file larger than :data:`BISECT_BYTES`, the lines stamped
    more than :data:`SLACK_S` before ``since`` are skipped by bisection.
    """
    cutoff = since.timestamp()
    older = iso_second(since - timedelta(seconds=SLACK_S))[:19].encode()
    for file in log_files(path):
        fd = open_log(file)
        if fd is None:
            continue
        try:
            status = os.fstat(fd)
            if file != path and status.st_mtime < cutoff:
                continue
            offset = 0
            if status.st_size > BISECT_BYTES:
                offset = seek_stamp(fd, status.st_size, older)
        finally:
            os.close(fd)
        yield file, offset
