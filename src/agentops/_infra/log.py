"""Structured logs: one JSON object per line in ``logs/<name>.jsonl``, readable on a TTY.

Every line has ``ts`` (UTC ISO 8601), ``level``, ``event`` (a stable dotted
name such as ``run.started``), ``agent`` and ``run_id``, then the event's data.
Each event is redacted (:mod:`agentops._infra.redact`) before it is rendered, and
each line is appended with a single ``write`` so concurrent runs never interleave.

:class:`EventLogger` has structlog's bound-logger interface (``bind``,
``info``, ``exception``...) without structlog's import, which alone costs a
run a third of its start-up (bench/startup.py): cron pays it on every tick.
structlog renders the lines for people (on a terminal, ``agentops logs``),
and is imported only then.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Protocol, TextIO

import pydantic_core

from agentops._infra.fs import FileSystem, describe
from agentops._infra.stderr import real_stderr

if TYPE_CHECKING:
    from pathlib import Path

    from structlog.dev import ConsoleRenderer

    from agentops._infra.clock import Clock
    from agentops._infra.redact import Redactor

__all__ = ["FIRST_KEYS", "EventLogger", "RunLogSink", "console_renderer", "make_logger"]

FIRST_KEYS = ("ts", "level", "event", "agent", "run_id")
"""Keys every log line starts with, in this order."""


_stdout_fd: int | None = None


def _process_stdout() -> int:
    """The process's stdout as it was before any capture: a copy of fd 1, made once.

    While a run's output is captured, fd 1 leads into the log itself; the
    copy, made before the first capture, still leads where the process's
    stdout went (a pod's, read by ``kubectl logs``). It lives as long as the
    process: threads left running may log after their run ended.
    """
    global _stdout_fd  # noqa: PLW0603 - one copy for the whole process
    if _stdout_fd is None:
        _stdout_fd = os.dup(1)
    return _stdout_fd


class RunLogSink:
    """Appends rendered JSON lines to the agent's log file, echoing them to a console.

    With ``stdout``, each line is also written as it is to the process's
    stdout (for a container's log collector), whatever captures the run's
    own output.

    The file is opened lazily, so a run that logs nothing creates no file. A
    log that cannot be written does not stop the run: one line on stderr says
    so (cron mails it), and the run goes on without its file log. While
    :attr:`defer_problem` is set the line waits: the invocation in charge
    says it (:meth:`say_problem`), or folds it into its own one line.

    When the file has grown to ``max_size`` it is rotated as it is opened:
    ``<name>.jsonl`` becomes ``<name>.jsonl.1``, the ``.1`` becomes ``.2``, and
    so on up to ``keep`` old files; the oldest goes.
    """

    def __init__(
        self,
        path: Path,
        *,
        console: TextIO | None = None,
        errors: TextIO | None = None,
        fs: FileSystem | None = None,
        max_size: int | None = None,
        keep: int = 5,
        stdout: bool = False,
    ) -> None:
        """Log to ``path``; when ``console`` is given, also render lines there for people.

        ``stdout``: write each line to the process's stdout too (taken now,
        before the run's output is captured).
        """
        self.path = path
        self.max_size = max_size
        self.keep = keep
        self._fs = fs or FileSystem()
        self._console = console
        self._errors = errors
        self._fd: int | None = None
        self._broken = False
        self.problem: str | None = None
        """Why the log could not be written, once it could not."""
        self.defer_problem = False
        """Leave saying :attr:`problem` to the caller (set while an invocation runs)."""
        self._renderer: ConsoleRenderer | None = None
        self._lock = threading.Lock()
        self._stdout = _process_stdout() if stdout else None

    def msg(self, line: bytes) -> None:
        """Write one rendered, redacted JSON line (threads of a run log too: one at a time)."""
        with self._lock:
            self._write(line)

    def _write(self, line: bytes) -> None:
        if not self._broken:
            try:
                if self._fd is None:
                    self._fd = self._open()
                self._fs.write(self._fd, line)
            except OSError as exc:
                self._broken = True
                self.problem = describe(exc)
                if not self.defer_problem:
                    self.say_problem()
        if self._stdout is not None:
            self._to_stdout(line)
        if self._console is not None:
            self._echo(json.loads(line))

    def say_problem(self) -> None:
        """Say on stderr, in one line, why the log could not be written."""
        print(
            f"agentops: cannot write the log {self.path}: {self.problem}",
            file=self._errors or real_stderr(),  # not into the log, which is broken
        )

    def _to_stdout(self, line: bytes) -> None:
        assert self._stdout is not None  # noqa: S101 - only called with a stdout
        view = memoryview(line)
        try:
            while view:
                view = view[os.write(self._stdout, view) :]
        except OSError as exc:  # a closed pipe: the file log goes on
            self._stdout = None
            print(
                f"agentops: cannot write the log to stdout: {describe(exc)}",
                file=self._errors or real_stderr(),
            )

    def _open(self) -> int:
        self._fs.mkdir(self.path.parent)
        fd = self._fs.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        if self.max_size is None or os.fstat(fd).st_size < self.max_size:
            return fd
        try:
            # Locked through the file itself: of runs opening it together, one
            # rotates; the others find it rotated (another inode) and go on.
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                now_at_path = self.path.lstat()
            except FileNotFoundError:  # another process is between its rename and its re-open
                now_at_path = None
            if now_at_path is not None and os.path.samestat(os.fstat(fd), now_at_path):
                self._shift()
        finally:
            self._fs.close(fd)
        return self._fs.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def _shift(self) -> None:
        old = [self.path.with_name(f"{self.path.name}.{n}") for n in range(1, self.keep + 1)]
        if not old:
            self._fs.unlink(self.path)
            return
        self._fs.unlink(old[-1])
        for newer, older in reversed(list(itertools.pairwise(old))):
            if os.path.lexists(newer):
                self._fs.rename(newer, older)
        self._fs.rename(self.path, old[0])

    def close(self) -> None:
        """Close the log file, if it was opened (a thread left running opens it again).

        Under the lock: closed while a thread writes, the descriptor's number
        could be reused by another file before that write.
        """
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _echo(self, event: dict[str, Any]) -> None:
        assert self._console is not None  # noqa: S101 - only called with a console
        if self._renderer is None:
            self._renderer = console_renderer(colors=self._console.isatty())
        from agentops._infra.terminal import printable_event  # noqa: PLC0415 - only terminals need it

        event = printable_event(event, without=("agent", "run_id"))  # what agents log is untrusted
        if event.get("category", "error") != "error" and "exception" in event:
            # An expected failure (the network, a timeout, a refused request):
            # its one line says it; the traceback stays in the log file.
            event["exception"] = "(the traceback is in the log file)"
        print(self._renderer(None, event.get("level", "info"), event), file=self._console)


def console_renderer(*, colors: bool) -> ConsoleRenderer:
    """How a log line is shown to people: on a run's terminal, and by ``agentops logs``."""
    from structlog.dev import ConsoleRenderer  # noqa: PLC0415 - only people's terminals need it

    return ConsoleRenderer(colors=colors, timestamp_key="ts", sort_keys=False)


_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_INFO = _LEVELS["info"]  # logging.INFO, without importing logging on every run


class _Emit(Protocol):
    def __call__(
        self, level: str, event: str | None, fields: dict[str, Any], *, redacted: bool
    ) -> None: ...


class EventLogger:
    """A structured logger bound to key-value context: ``log.info("feed.read", items=12)``.

    The interface of structlog's bound loggers: :meth:`bind`, :meth:`unbind`,
    :meth:`try_unbind`, :meth:`new`, and a method per level (``debug`` lines
    are dropped). Positional arguments format the event (``"%s done", name``);
    ``exc_info`` (or :meth:`exception`) adds the traceback as ``exception``.
    """

    __slots__ = ("_base", "_context", "_emit", "_level")

    def __init__(
        self,
        emit: _Emit,
        context: dict[str, Any],
        *,
        base: dict[str, Any] | None = None,
        level: int = _INFO,
    ) -> None:
        """Log through ``emit``; the context ``base`` survives :meth:`new`."""
        self._emit = emit
        self._context = context
        self._base = base if base is not None else dict(context)
        self._level = level

    def bind(self, **values: Any) -> EventLogger:
        """A logger whose lines carry ``values`` too."""
        return self._with({**self._context, **values})

    def unbind(self, *keys: str) -> EventLogger:
        """A logger without ``keys`` (``KeyError`` if one is not bound)."""
        context = dict(self._context)
        for key in keys:
            del context[key]
        return self._with(context)

    def try_unbind(self, *keys: str) -> EventLogger:
        """A logger without ``keys``, those bound."""
        return self._with({k: v for k, v in self._context.items() if k not in keys})

    def new(self, **values: Any) -> EventLogger:
        """A logger with only ``values`` bound (and the agent and run, always)."""
        return self._with({**self._base, **values})

    def _with(self, context: dict[str, Any]) -> EventLogger:
        return EventLogger(self._emit, context, base=self._base, level=self._level)

    def log(self, level: int | str, event: str | None = None, *args: Any, **kw: Any) -> None:
        """Log at ``level`` (a number, as :mod:`logging`'s, or a name)."""
        if isinstance(level, str):
            name = "warning" if level.lower() == "warn" else level.lower()
        else:
            name = next((n for n, v in reversed(_LEVELS.items()) if level >= v), "debug")
        self._log(name, event, args, kw)

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> None:
        """Log at debug level (dropped at the default level)."""
        self._log("debug", event, args, kw)

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> None:
        """Log at info level."""
        self._log("info", event, args, kw)

    msg = info

    def warning(self, event: str | None = None, *args: Any, **kw: Any) -> None:
        """Log at warning level."""
        self._log("warning", event, args, kw)

    warn = warning

    def error(self, event: str | None = None, *args: Any, **kw: Any) -> None:
        """Log at error level."""
        self._log("error", event, args, kw)

    def critical(self, event: str | None = None, *args: Any, **kw: Any) -> None:
        """Log at critical level."""
        self._log("critical", event, args, kw)

    fatal = critical

    def exception(self, event: str | None = None, *args: Any, **kw: Any) -> None:
        """Log at error level with the exception being handled."""
        kw.setdefault("exc_info", True)
        self._log("error", event, args, kw)

    def _log(
        self, level: str, event: str | None, args: tuple[Any, ...], kw: dict[str, Any]
    ) -> None:
        if _LEVELS[level] < self._level:
            return
        if args and isinstance(event, str):
            event = event % args
        exc_info = kw.pop("exc_info", None)
        fields = {**self._context, **kw}
        if exc_info:
            fields["exception"] = _traceback(exc_info)
        self._emit(level, event, fields, redacted=False)

    def info_redacted(self, event: str, **fields: str | float | None) -> None:
        """An info line of agentops' own whose values are redacted already: no second pass.

        For the events a run writes per guarded action or spend (their names
        and keys went through :meth:`~agentops._infra.redact.Redactor.identifier`);
        never for a logger an agent bound values to.
        """
        if _LEVELS["info"] >= self._level:
            self._emit("info", event, {**self._context, **fields}, redacted=True)


def _traceback(exc_info: Any) -> str:
    import traceback  # noqa: PLC0415 - only failures need it

    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    elif not isinstance(exc_info, tuple):
        exc_info = sys.exc_info()
    if exc_info[0] is None:
        return "NoneType: None"
    return "".join(traceback.format_exception(*exc_info)).rstrip("\n")


def make_logger(
    sink: RunLogSink,
    *,
    clock: Clock,
    redactor: Redactor,
    agent: str,
    run_id: str,
    level: int = _INFO,
) -> EventLogger:
    """A logger bound to ``agent`` and ``run_id``, stamping, redacting and writing into ``sink``."""

    def emit(level: str, event: str | None, fields: dict[str, Any], *, redacted: bool) -> None:
        # The bound context starts with agent and run_id: FIRST_KEYS in order.
        stamp = clock().isoformat().replace("+00:00", "Z")
        line = {"ts": stamp, "level": level, "event": event, **fields}
        if redacted:
            sink.msg(pydantic_core.to_json(line) + b"\n")
            return
        # Redacted as it is rendered; anything an agent logs that is not JSON
        # (an exception, a URL object) is logged as text.
        sink.msg(redactor.line(line, fallback=str))

    return EventLogger(emit, {"agent": agent, "run_id": run_id}, level=level)
