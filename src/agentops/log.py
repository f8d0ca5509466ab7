"""Structured logs: one JSON object per line in ``logs/<name>.jsonl``, readable on a TTY.

Every line has ``ts`` (UTC ISO 8601), ``level``, ``event`` (a stable dotted
name such as ``run.started``), ``agent`` and ``run_id``, then the event's data.
Each event is redacted (:mod:`agentops.redact`) before it is rendered, and
each line is appended with a single ``write`` so concurrent runs never interleave.

No global structlog configuration is touched: each run builds its own logger.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import itertools
import json
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

import structlog

from agentops.fsio import FileSystem, describe

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, MutableMapping
    from pathlib import Path

    from agentops._clock import Clock
    from agentops.redact import Redactor

__all__ = ["FIRST_KEYS", "RunLogSink", "captured_output", "make_logger"]

FIRST_KEYS = ("ts", "level", "event", "agent", "run_id")
"""Keys every log line starts with, in this order."""


class RunLogSink:
    """Appends rendered JSON lines to the agent's log file, echoing them to a console.

    The file is opened lazily, so a run that logs nothing creates no file. A
    log that cannot be written does not stop the run: one line on stderr says
    so (cron mails it), and the run goes on without its file log.

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
    ) -> None:
        """Log to ``path``; when ``console`` is given, also render lines there for people."""
        self.path = path
        self.max_size = max_size
        self.keep = keep
        self._fs = fs or FileSystem()
        self._console = console
        self._errors = errors or sys.stderr
        self._fd: int | None = None
        self._broken = False
        self._renderer: structlog.dev.ConsoleRenderer | None = None

    def msg(self, line: str) -> None:
        """Write one rendered, redacted JSON line."""
        if not self._broken:
            try:
                if self._fd is None:
                    self._fd = self._open()
                self._fs.write(self._fd, (line + "\n").encode())
            except OSError as exc:
                self._broken = True
                print(
                    f"agentops: cannot write the log {self.path}: {describe(exc)}",
                    file=self._errors,
                )
        if self._console is not None:
            self._echo(json.loads(line))

    debug = info = warning = error = critical = exception = msg

    def _open(self) -> int:
        self._fs.mkdir(self.path.parent)
        fd = self._fs.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        if self.max_size is None or os.fstat(fd).st_size < self.max_size:
            return fd
        try:
            # Locked through the file itself: of runs opening it together, one
            # rotates; the others find it rotated (another inode) and go on.
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.path.samestat(os.fstat(fd), self.path.lstat()):
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
        """Close the log file, if it was opened."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _echo(self, event: dict[str, Any]) -> None:
        assert self._console is not None  # noqa: S101 - only called with a console
        if self._renderer is None:
            self._renderer = structlog.dev.ConsoleRenderer(
                colors=self._console.isatty(), timestamp_key="ts", sort_keys=False
            )
        for key in ("agent", "run_id"):
            event.pop(key, None)
        print(self._renderer(None, event.get("level", "info"), event), file=self._console)


def make_logger(
    sink: RunLogSink,
    *,
    clock: Clock,
    redactor: Redactor,
    agent: str,
    run_id: str,
    level: int = logging.INFO,
) -> structlog.typing.FilteringBoundLogger:
    """A structlog logger bound to ``agent`` and ``run_id``, redacting into ``sink``."""

    def stamp(_logger: object, method: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
        event["ts"] = clock().isoformat().replace("+00:00", "Z")
        event["level"] = "warning" if method == "warn" else method
        first = {key: event.pop(key) for key in FIRST_KEYS if key in event}
        return {**first, **event}

    def render(_logger: object, _method: str, event: MutableMapping[str, Any]) -> str:
        # Redacted as it is rendered; anything an agent logs that is not JSON
        # (an exception, a URL object) is logged as text.
        return redactor.json(event, fallback=str)

    processors: list[structlog.typing.Processor] = [
        structlog.processors.format_exc_info,
        stamp,
        render,
    ]
    logger: structlog.typing.FilteringBoundLogger = structlog.wrap_logger(
        sink,
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        context_class=dict,
    )
    return logger.bind(agent=agent, run_id=run_id)


@contextlib.contextmanager
def captured_output(log: structlog.typing.FilteringBoundLogger) -> Iterator[None]:
    """Send what agent code prints (``print``, warnings, stray logging) to the log.

    Under cron anything on stdout or stderr becomes mail; in the log it is
    redacted like every other line (``agent.output``, with the stream).
    """
    out, err = _LineWriter(log.info, "stdout"), _LineWriter(log.warning, "stderr")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            yield
        finally:
            out.flush()
            err.flush()


class _LineWriter(io.TextIOBase):
    def __init__(self, emit: Callable[..., Any], stream: str) -> None:
        self._emit = emit
        self._stream = stream
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        for line in lines:
            self._emit("agent.output", stream=self._stream, line=line)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._emit("agent.output", stream=self._stream, line=self._pending)
            self._pending = ""
