"""What ``agentops logs`` shows: one agent's log or every agent's merged by time, then what comes.

A :class:`View` is one agent's log as the command's options pick it: its
filter, and where reading starts (the last N lines, the last run, a
period: :mod:`agentops.ops.logtail`). :func:`shown` gives the lines the
views hold now, merged by time when there are several; :func:`followed`
then gives what is appended to any of them, as it comes.

Merging keeps each log's order: a line is placed by its ``ts``, and a line
that is not JSON (or has no ``ts``) goes with the line before it in its own
log, as it does when one log is shown.
"""

from __future__ import annotations

import collections
import heapq
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from agentops.ops.logs import POLL_S, LogFilter, LogReader, Position, line_time
from agentops.ops.logtail import last_run, periods_of, start_of_last

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from pathlib import Path

    from agentops.ops.logs import LogLine

__all__ = ["FOLLOW_LINES", "View", "followed", "open_views", "shown"]

FOLLOW_LINES = 10
"""How many of the last lines ``-f`` shows first when ``-n`` does not say (as ``tail -f``)."""

_DAWN = datetime.min.replace(tzinfo=UTC)


@dataclass(slots=True)
class View:
    """One agent's log, as the options of ``agentops logs`` pick its lines."""

    agent: str
    reader: LogReader
    chosen: LogFilter
    start: Position | None = None
    """Where reading starts (None: at the beginning of the log)."""
    run_found: bool = True
    """False when ``--last`` was asked and the log has no run yet."""


def open_views(
    logs: Mapping[str, Path],
    chosen: LogFilter,
    *,
    count: int | None,
    last: bool,
    follow: bool,
) -> list[View]:
    """A view of each log of ``logs`` (agent name -> log path), reading from where it should.

    ``count``: only the last lines; ``last``: only the last run; ``follow``:
    lines will be followed, so a last line not yet ended is left for then.
    Each log is read backward only as far as it must be.
    """
    views: list[View] = []
    try:
        for agent, path in logs.items():
            views.append(View(agent, LogReader(path), chosen))
            _place(views[-1], last=last, count=count, partial=not follow)
    except BaseException:
        for view in views:
            view.reader.close()
        raise
    return views


def _place(view: View, *, last: bool, count: int | None, partial: bool) -> None:
    """Find where ``view`` starts: at its last run, its last ``count`` lines, or its period."""
    reader, chosen = view.reader, view.chosen
    if last:
        found = last_run(reader, partial=partial)
        if found is None:
            view.run_found = False
            view.start = reader.end()
            return
        view.chosen = replace(chosen, run_id=found[0])
        view.start = found[1]
    if count is not None:
        view.start = start_of_last(reader, view.chosen, count, partial=partial)
    elif view.start is None and chosen.since is not None:
        periods = periods_of(reader.path, chosen.since)
        view.start = next((Position(file, offset) for file, offset in periods), None)


def shown(views: list[View], *, count: int | None, follow: bool) -> Iterator[tuple[View, LogLine]]:
    """The lines the views pick now, merged by time if there are several; the last ``count``."""
    streams = [_picked(view, partial=not follow) for view in views]
    lines = streams[0] if len(streams) == 1 else _merged(streams)
    return iter(collections.deque(lines, maxlen=count)) if count is not None else lines


def _picked(view: View, *, partial: bool) -> Iterator[tuple[View, LogLine]]:
    """The lines of ``view``'s log now that its filter picks, from where it starts."""
    for line in view.chosen.select(view.reader.lines(partial=partial, start=view.start)):
        yield view, line


def followed(
    views: list[View], *, poll_s: float = POLL_S, sleep: Callable[[float], None] = time.sleep
) -> Iterator[tuple[View, LogLine]]:
    """The lines appended to any view's log from now on, as they come (forever)."""
    showing = [not view.chosen.active for view in views]  # does a line not JSON go along?
    while True:
        fresh: list[list[tuple[View, LogLine]]] = []
        for index, view in enumerate(views):
            picked = []
            for line in view.reader.fresh():
                if line.event is not None:
                    showing[index] = view.chosen.matches(line.event)
                if showing[index]:
                    picked.append((view, line))
            fresh.append(picked)
        if any(fresh):
            yield from fresh[0] if len(fresh) == 1 else _merged(fresh)
        else:
            sleep(poll_s)


def _merged(streams: Iterable[Iterable[tuple[View, LogLine]]]) -> Iterator[tuple[View, LogLine]]:
    """The lines of ``streams``, each in its own order, merged by the time of each line."""
    keyed = (_groups(stream) for stream in streams)
    for _moment, group in heapq.merge(*keyed, key=lambda pair: pair[0]):
        yield from group


def _groups(
    stream: Iterable[tuple[View, LogLine]],
) -> Iterator[tuple[datetime, list[tuple[View, LogLine]]]]:
    """Each JSON line with the lines that are not JSON after it, and its time.

    A line without a time takes the time of the line before it, so that
    the stream's own order is kept.
    """
    moment = _DAWN
    group: list[tuple[View, LogLine]] = []
    for pair in stream:
        event = pair[1].event
        if event is not None and group:
            yield moment, group
            group = []
        if event is not None:
            moment = max(moment, line_time(event) or moment)
        group.append(pair)
    if group:
        yield moment, group
