"""Reading an agent's log, as ``agentops logs`` shows it: rotated files, filters, following.

A read model: it reads ``logs/<name>.jsonl`` and the files rotation left
beside it (``.jsonl.1`` the newest old one ... ``.jsonl.N`` the oldest), oldest
first, never writes, and never takes a lock. A line that is not a JSON object
(a crash in the middle of a write, a hand edit) is kept as text, never fatal:
it goes with the line before it, so it is shown when that line is.

Filters (:class:`LogFilter`) pick lines by run, minimum level, event name
(a glob such as ``action.*``) and age. :class:`LogReader` reads what the log
holds now, then, if asked, follows what is appended, across rotations.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Literal, NamedTuple, Self

from agentops._infra.fs import describe
from agentops._infra.terminal import printable, printable_event
from agentops.errors import StateError, UnknownAgent

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    from structlog.dev import ConsoleRenderer

    from agentops.project.home import Project

__all__ = [
    "ENDINGS",
    "LEVELS",
    "POLL_S",
    "LogFilter",
    "LogLine",
    "LogReader",
    "agent_log",
    "last_run_id",
    "level_rank",
    "line_time",
    "log_files",
    "parse_line",
    "read_file",
    "readable",
    "scan_file",
]

LEVELS = ("debug", "info", "warning", "error", "critical")
"""Log levels, lowest first: ``--level`` keeps lines at or above the one named."""

_ALIASES = {"warn": "warning", "exception": "error", "fatal": "critical"}

ENDINGS = frozenset({"run.finished", "run.skipped", "run.aborted", "run.abandoned"})
"""The events that end an invocation of ``agentops run``: exactly one per invocation."""

POLL_S = 0.25
"""How often a followed log is looked at for new lines."""

_READ_SIZE = 1 << 16


class LogLine(NamedTuple):
    """One line of a log file: its text, and the JSON object it holds (None if it holds none)."""

    text: str
    event: dict[str, Any] | None
    path: Path
    lineno: int
    """Where it is: the file, and the line's number in it (from 1)."""


def level_rank(level: object) -> int:
    """The position of ``level`` in :data:`LEVELS` (an unknown level counts as ``info``)."""
    name = _ALIASES.get(str(level).lower(), str(level).lower())
    return LEVELS.index(name) if name in LEVELS else 1


def line_time(event: dict[str, Any]) -> datetime | None:
    """The ``ts`` of a log line as an aware datetime (None if it has none that parses)."""
    ts = event.get("ts")
    if not isinstance(ts, str):
        return None
    try:
        moment = datetime.fromisoformat(ts)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_line(text: str, path: Path, lineno: int) -> LogLine:
    """A :class:`LogLine` of ``text``: its JSON object, or None if it is not one."""
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, a number too long, nested too deeply
        event = None
    return LogLine(text, event if isinstance(event, dict) else None, path, lineno)


def agent_log(project: Project, agent: str) -> tuple[Path, list[Path]]:
    """The path of ``agent``'s log, and its files; ``UnknownAgent`` if it has neither.

    An agent removed from agents/ still has its history: its log is read.
    """
    path = project.log_path(agent)
    files = log_files(path)
    if not files and agent not in project.agent_names():
        raise UnknownAgent(f"unknown agent {agent!r}: no agents/{agent}/agent.toml, no log")
    return path, files


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
        event = line.event
        if event is not None and event.get("event") in _RUN_MARKS:
            run_id = event.get("run_id")
            if isinstance(run_id, str):
                last = run_id
    return last


_RUN_MARKS = ENDINGS | {"run.started"}
# Operator commands (pause, reset, review approve) log under run ids of their
# own, but never start or end a run: --last skips them.


def read_file(path: Path) -> list[LogLine]:
    """Every line of one file of a log (none if it is gone)."""
    return _Tail(path).read(partial=True, keep_open=False)


_EVENT_KEY = b'"event":"'


def scan_file(path: Path, events: frozenset[str]) -> Iterator[LogLine]:
    """The lines of one file of a log that may be one of ``events``, others left unparsed.

    Most of a log is lines a reader does not want (``http.request``...):
    telling them by the ``"event":"`` agentops writes third on every line is
    several times cheaper than parsing them. A line where it is not found
    that way (not JSON, written by another tool) is parsed and given.
    """
    wanted = {name.encode() for name in events}
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateError(f"{path}: cannot read: {describe(exc)}") from exc
    # Line by line: memory stays flat however large the log was let grow.
    with os.fdopen(fd, "rb") as file:
        try:
            for lineno, raw in enumerate(file, start=1):
                start = raw.find(_EVENT_KEY)
                if start >= 0:
                    start += len(_EVENT_KEY)
                    if raw[start : raw.find(b'"', start)] not in wanted:
                        continue
                elif not raw.strip():
                    continue
                yield parse_line(raw.rstrip(b"\n").decode("utf-8", "replace"), path, lineno)
        except OSError as exc:
            raise StateError(f"{path}: cannot read: {describe(exc)}") from exc


class LogReader:
    """Reads a log and the files rotation made of it; then, if asked, follows it.

    :meth:`lines` gives what the files hold now. :meth:`follow` then gives
    what is appended to the log after that, forever (stop it by closing the
    generator, or with Ctrl-C), reopening the file when a rotation replaces it.
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
        self._tail: _Tail | None = None

    def lines(self, *, partial: bool = True) -> Iterator[LogLine]:
        """Every line of the log now, oldest first (rotated files first).

        With ``partial``, a last line still missing its newline is given too;
        without, it waits for :meth:`follow` to complete it.
        """
        self.close()
        for path in log_files(self.path):
            if path == self.path:
                self._tail = _Tail(path)
                yield from self._tail.read(partial=partial)
            else:
                yield from read_file(path)

    def follow(self) -> Iterator[LogLine]:
        """The lines appended after those :meth:`lines` gave (all, if it was not called)."""
        if self._tail is None:
            self._tail = _Tail(self.path)
        tail = self._tail
        try:
            while True:
                fresh = tail.read(partial=False)
                yield from fresh
                if not fresh:
                    self.sleep(self.poll_s)
        finally:
            self.close()

    def close(self) -> None:
        """Close the file being followed, if any."""
        if self._tail is not None:
            self._tail.close()
            self._tail = None

    def __enter__(self) -> Self:
        """Close on leaving."""
        return self

    def __exit__(self, *_: object) -> None:
        """Close the file being followed."""
        self.close()


class _Open:
    """A file being read: where its next line starts, and how many lines came before it."""

    def __init__(self, path: Path, file: IO[bytes]) -> None:
        self.path = path
        self.file = file
        self.pending = b""
        self.lineno = 0

    def drain(self, *, partial: bool) -> list[LogLine]:
        """The lines written since the last drain (with ``partial``, a last one without newline)."""
        try:
            chunks = [self.pending]
            while chunk := self.file.read(_READ_SIZE):
                chunks.append(chunk)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read: {describe(exc)}") from exc
        *complete, self.pending = b"".join(chunks).split(b"\n")
        if partial and self.pending:
            complete.append(self.pending)
            self.pending = b""
        lines = []
        for raw in complete:
            self.lineno += 1
            if raw.strip():
                lines.append(parse_line(raw.decode("utf-8", "replace"), self.path, self.lineno))
        return lines

    def rewind(self) -> None:
        """Read again from the start (the file was cut shorter in place)."""
        self.file.seek(0)
        self.pending, self.lineno = b"", 0

    def close(self) -> None:
        """Close the file."""
        with contextlib.suppress(OSError):
            self.file.close()


class _Tail:
    """A log read from where it was last read, across rotations and truncations.

    After a rotation the old file is still read, until the next rotation: a
    run that had it open when another invocation rotated the log (a skipped
    run, an operator command) goes on writing its lines there.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current: _Open | None = None
        self.previous: _Open | None = None

    def read(self, *, partial: bool, keep_open: bool = True) -> list[LogLine]:
        lines: list[LogLine] = []
        if self.previous is not None:
            lines += self.previous.drain(partial=False)
        if self.current is None:
            self.current = self._open()
            if self.current is None:
                return lines
        lines += self.current.drain(partial=partial)
        change = self._change(self.current)
        if change == "replaced":  # rotated, or removed and written afresh: the new one too
            if self.previous is not None:
                self.previous.close()
            self.previous, self.current = self.current, self._open()
        elif change == "truncated":  # cut in place (copytruncate): read again from the start
            self.current.rewind()
        if change is not None and self.current is not None:
            lines += self.current.drain(partial=partial)
        if not keep_open:
            self.close()
        return lines

    def _open(self) -> _Open | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read: {describe(exc)}") from exc
        return _Open(self.path, os.fdopen(fd, "rb"))

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
        if not os.path.samestat(now, os.fstat(reading.file.fileno())):
            return "replaced"
        return "truncated" if now.st_size < reading.file.tell() else None

    def close(self) -> None:
        for reading in (self.previous, self.current):
            if reading is not None:
                reading.close()
        self.previous = self.current = None


def readable(line: LogLine, renderer: ConsoleRenderer) -> str:
    """A log line for people, as a run shows it on a terminal (without agent and run id)."""
    if line.event is None:
        return printable(line.text)
    event = printable_event(line.event, without=("agent", "run_id"))
    rendered: str = renderer(None, event.get("level", "info"), event)
    return rendered
