"""Reading an agent's log, as ``agentops logs`` shows it: rotated files, filters, following.

A read model: it reads ``logs/<name>.jsonl`` and the files rotation left
beside it (``.jsonl.1`` the newest old one ... ``.jsonl.N`` the oldest), oldest
first, never writes, and never takes a lock. A line that is not a JSON object
(a crash in the middle of a write, a hand edit) is kept as text, never fatal:
it goes with the line before it, so it is shown when that line is.

Memory stays flat whatever a log holds (:mod:`agentops.ops._lines`): lines
are read a chunk at a time, and one too long to be JSON anyone wants is
clipped. Filters (:class:`LogFilter`) pick lines by run, minimum level,
event name (a glob such as ``action.*``) and age. :class:`LogReader` reads
what the log holds now, from its start or from a :class:`Position` found by
reading it backward (:mod:`agentops.ops.logtail`), then, if asked, follows
what is appended, across rotations.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Self

from agentops._infra.fs import describe
from agentops._infra.terminal import printable, printable_event
from agentops._infra.timestamps import in_range
from agentops.errors import StateError, UnknownAgent
from agentops.ops._lines import backward
from agentops.ops._logfile import (
    LogLine,
    Tail,
    forward,
    log_line,
    open_log,
    parse_line,
)
from agentops.ops._scan import scan_file

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    from structlog.dev import ConsoleRenderer

    from agentops.project.home import Project

__all__ = [
    "ENDINGS",
    "LEVELS",
    "POLL_S",
    "RUN_MARKS",
    "LogFilter",
    "LogLine",
    "LogReader",
    "Position",
    "agent_log",
    "agent_logs",
    "last_run_id",
    "level_rank",
    "line_time",
    "log_files",
    "open_log",
    "parse_line",
    "printable",
    "read_file",
    "readable",
    "run_mark",
    "scan_file",
]

LEVELS = ("debug", "info", "warning", "error", "critical")
"""Log levels, lowest first: ``--level`` keeps lines at or above the one named."""

_ALIASES = {"warn": "warning", "exception": "error", "fatal": "critical"}

ENDINGS = frozenset({"run.finished", "run.skipped", "run.aborted", "run.abandoned"})
"""The events that end an invocation of ``agentops run``: exactly one per invocation."""

POLL_S = 0.25
"""How often a followed log is looked at for new lines."""


class Position(NamedTuple):
    """Where to start reading a log: a file of it, and an offset in that file."""

    path: Path
    offset: int


def level_rank(level: object) -> int:
    """The position of ``level`` in :data:`LEVELS` (an unknown level counts as ``info``)."""
    if not isinstance(level, str):
        return 1
    name = _ALIASES.get(level.lower(), level.lower())
    return LEVELS.index(name) if name in LEVELS else 1


def line_time(event: dict[str, Any]) -> datetime | None:
    """The ``ts`` of a log line as an aware datetime in UTC (None if none parses, in sane years)."""
    ts = event.get("ts")
    if not isinstance(ts, str):
        return None
    try:
        moment = datetime.fromisoformat(ts)
        return in_range(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))
    except ValueError:
        return None


def agent_log(project: Project, agent: str) -> tuple[Path, list[Path]]:
    """The path of ``agent``'s log, and its files; ``UnknownAgent`` if it has neither.

    An agent removed from agents/ still has its history: its log is read.
    """
    path = project.log_path(agent)
    files = log_files(path)
    if not files and agent not in project.agent_names():
        raise UnknownAgent(
            f"unknown agent {agent!r}: no agents/{agent}/agent.toml, no log"
            + project.did_you_mean(agent)
        )
    return path, files


def agent_logs(project: Project, *, removed: bool = False) -> dict[str, Path]:
    """Every agent's log path, by name; with ``removed``, also those of agents removed since.

    An agent removed from agents/ leaves its log behind: ``logs/<name>.jsonl``
    (or only rotated files of it) under a name an agent could have.
    """
    # A folder under agents/ not named as an agent can be has no log (its
    # runs are refused): status shows it broken; here it is not an agent.
    names = {name for name in project.agent_names() if _is_agent_name(name)}
    if removed:
        try:
            with os.scandir(project.logs_dir) as entries:
                for entry in entries:
                    name, found, rotation = entry.name.partition(".jsonl")
                    if found and rotation in ("", ".1") and _is_agent_name(name):
                        names.add(name)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StateError(f"{project.logs_dir}: cannot read: {describe(exc)}") from exc
    return {name: project.log_path(name) for name in sorted(names)}


def _is_agent_name(name: str) -> bool:
    from agentops.errors import UsageError  # noqa: PLC0415
    from agentops.project.home import check_agent_name  # noqa: PLC0415

    try:
        check_agent_name(name)
    except UsageError:
        return False
    return True


def log_files(path: Path) -> list[Path]:
    """The files of the log at ``path`` that exist, oldest first: ``.N`` ... ``.1``, then itself."""
    prefix = path.name + "."
    try:
        with os.scandir(path.parent) as entries:
            rotated = [
                int(suffix)
                for entry in entries
                if entry.name.startswith(prefix)
                and (suffix := entry.name[len(prefix) :]).isascii()
                and suffix.isdigit()
            ]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StateError(f"{path.parent}: cannot read: {describe(exc)}") from exc
    files = [path.with_name(f"{prefix}{n}") for n in sorted(rotated, reverse=True)]
    return [*files, path] if os.path.lexists(path) else files


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which lines to show; a line must pass every filter given."""

    run_id: str | None = None
    level: str | None = None
    """The lowest level shown (``warning`` shows warnings, errors and critical lines)."""
    events: tuple[str, ...] = ()
    """Globs on the event name (``action.*``): a line matching any of them is shown."""
    since: datetime | None = None
    """Lines stamped earlier than this are not shown."""

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return bool(self.run_id or self.level or self.events or self.since)

    def matches(self, event: dict[str, Any]) -> bool:
        """Whether the JSON line ``event`` passes every filter set."""
        if self.run_id is not None and event.get("run_id") != self.run_id:
            return False
        if self.level is not None and level_rank(event.get("level")) < level_rank(self.level):
            return False
        if self.events:
            name = event.get("event")
            if not isinstance(name, str) or not any(
                fnmatch.fnmatchcase(name, glob) for glob in self.events
            ):
                return False
        if self.since is not None:
            moment = line_time(event)
            if moment is None or moment < self.since:
                return False
        return True

    def select(self, lines: Iterable[LogLine]) -> Iterator[LogLine]:
        """The lines that pass; a line that is not JSON goes with the line before it."""
        shown = not self.active
        for line in lines:
            if line.event is not None:
                shown = self.matches(line.event)
            if shown:
                yield line


def last_run_id(lines: Iterable[LogLine]) -> str | None:
    """The run id of the last invocation: the last that started or ended a run (None if none)."""
    last = None
    for line in lines:
        found = run_mark(line)
        if found is not None:
            last = found
    return last


RUN_MARKS = ENDINGS | {"run.started"}
"""The events that start or end a run: the last of them names the last run.

Operator commands (pause, reset, review approve) log under run ids of their
own, but never start or end a run: ``--last`` skips them.
"""


def run_mark(line: LogLine) -> str | None:
    """The run id of ``line`` if it starts or ends a run (None otherwise)."""
    event = line.event
    if event is None:
        return None
    name = event.get("event")
    if not isinstance(name, str) or name not in RUN_MARKS:
        return None
    run_id = event.get("run_id")
    return run_id if isinstance(run_id, str) else None


def read_file(path: Path) -> list[LogLine]:
    """Every line of one file of a log (none if it is gone)."""
    fd = open_log(path)
    if fd is None:
        return []
    try:
        return list(forward(fd, path))
    finally:
        os.close(fd)


class LogReader:
    """Reads a log and the files rotation made of it; then, if asked, follows it.

    :meth:`lines` gives what the files hold now, from their start or from a
    :class:`Position`; :meth:`backward` gives them last first, each with
    its place. :meth:`follow` then gives what is appended to the log,
    forever (stop it by closing the generator, or with Ctrl-C), reopening
    the file when a rotation replaces it. Files read backward stay open
    until :meth:`close`, so the positions found stay true if the log is
    rotated meanwhile.
    """

    def __init__(
        self,
        path: Path,
        *,
        poll_s: float = POLL_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Read the log at ``path``; ``sleep`` waits ``poll_s`` between looks when following."""
        self.path = path
        self.poll_s = poll_s
        self.sleep = sleep
        self._tail: Tail | None = None
        self._opened: dict[Path, int] = {}
        """The files read backward (newest first), open."""
        self._sizes: dict[Path, int] = {}
        """Their sizes when they were read."""

    def backward(self, *, partial: bool = True) -> Iterator[LogLine]:
        """Every line of the log now, the last first (line numbers unknown: None).

        Without ``partial``, a last line still missing its newline is left out.
        """
        for path in reversed(log_files(self.path)):
            fd = self._opened[path] if path in self._opened else open_log(path)
            if fd is None:
                continue
            self._opened[path] = fd
            size = self._sizes.setdefault(path, os.fstat(fd).st_size)
            for raw in backward(fd, size):
                if not raw.blank and (raw.complete or partial):
                    yield log_line(raw, path, None)

    def end(self) -> Position:
        """Where the log ended when it was read backward (else now): what follows is appended."""
        if self.path not in self._opened:
            fd = open_log(self.path)
            if fd is None:
                return Position(self.path, 0)
            self._opened[self.path] = fd
        size = self._sizes.setdefault(self.path, os.fstat(self._opened[self.path]).st_size)
        return Position(self.path, size)

    def lines(self, *, partial: bool = True, start: Position | None = None) -> Iterator[LogLine]:
        """Every line of the log now, oldest first (rotated files first), from ``start``.

        With ``partial``, a last line still missing its newline is given too;
        without, it waits for :meth:`follow` to complete it.
        """
        if self._tail is not None:
            self._tail.close()
            self._tail = None
        if start is not None and start.path in self._opened:
            files = list(reversed(self._opened))  # as they were when read backward
        else:
            files = log_files(self.path)
        if start is not None:
            files = files[files.index(start.path) :] if start.path in files else []
        for path in files:
            offset = start.offset if start is not None and path == start.path else 0
            self._sizes.pop(path, None)
            fd = self._opened.pop(path) if path in self._opened else open_log(path)
            if path == self.path:
                self._tail = Tail(path, fd, offset=offset)
                yield from self._tail.read(partial=partial)
            elif fd is not None:
                try:
                    yield from forward(fd, path, offset=offset)
                finally:
                    os.close(fd)
        if self._tail is None:  # no current file yet: follow it from its start
            self._tail = Tail(self.path, None)

    def fresh(self) -> Iterator[LogLine]:
        """The whole lines appended since the last look (the whole log at the first)."""
        if self._tail is None:
            self._tail = Tail(self.path, None)
        return self._tail.read(partial=False)

    def follow(self) -> Iterator[LogLine]:
        """The lines appended after those :meth:`lines` gave (all, if it was not called)."""
        try:
            while True:
                seen = False
                for line in self.fresh():
                    seen = True
                    yield line
                if not seen:
                    self.sleep(self.poll_s)
        finally:
            self.close()

    def close(self) -> None:
        """Close the files opened, and the one being followed."""
        if self._tail is not None:
            self._tail.close()
            self._tail = None
        for fd in self._opened.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._opened.clear()
        self._sizes.clear()

    def __enter__(self) -> Self:
        """Close on leaving."""
        return self

    def __exit__(self, *_: object) -> None:
        """Close the files."""
        self.close()


def readable(line: LogLine, renderer: ConsoleRenderer) -> str:
    """A log line for people, as a run shows it on a terminal (without agent and run id)."""
    if line.event is None:
        return printable(line.text)
    try:
        event = printable_event(line.event, without=("agent", "run_id"))
        rendered: str = renderer(None, event.get("level", "info"), event)
    except RecursionError:  # nested too deeply to render: shown as the text it is
        return printable(line.text)
    return rendered
