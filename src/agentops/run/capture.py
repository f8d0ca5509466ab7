"""What a run prints goes to its log, never to cron's mail.

Under cron anything on stdout or stderr becomes mail, so while a run lives
(:class:`OutputCapture`, when it is not on a terminal):

- Python's ``sys.stdout`` and ``sys.stderr`` are line writers that log each
  line as ``agent.output`` (``stream`` is ``stdout`` or ``stderr``), redacted
  like every other line; before a line is logged, the environment is read
  again for secrets (an agent may set a key as it imports, then print it);
- in the CLI's own process, file descriptors 1 and 2 are pipes too, drained
  by two threads into the same log: what a child process (``git pull``) or C
  code writes is logged as well, never mailed.

The streams are replaced once for the whole run, not around each call of
agent code: a thread of the agent's may be printing while they would be
swapped, and Python's ``print`` does not keep the stream it writes to alive.
When a run leaves threads running, the capture stays in place until the
process exits (:meth:`OutputCapture.keep`); agentops' own last line then
goes to the real stderr (:func:`agentops._infra.stderr.real_stderr`).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

from agentops._infra import stderr

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from agentops._infra.log import EventLogger

__all__ = ["OutputCapture"]

_PUMP_JOIN_S = 1.0


def _on_fd_2(stream: TextIO) -> bool:
    try:
        return stream.fileno() == 2  # noqa: PLR2004 - stderr's descriptor
    except (OSError, ValueError, io.UnsupportedOperation):
        return False


class OutputCapture:
    """Sends what a run prints, in Python or (``fds``) at the file-descriptor level, to ``log``."""

    def __init__(
        self,
        log: EventLogger,
        *,
        before_line: Callable[[], None] | None = None,
        fds: bool = False,
    ) -> None:
        """Log lines to ``log``, calling ``before_line()`` before each one."""
        self._out = _LineWriter(log, "stdout", before_line)
        self._err = _LineWriter(log, "stderr", before_line)
        self._fds = fds
        self.saved: tuple[Any, Any] | None = None
        """The Python streams it replaced."""
        self._saved_fds: tuple[int, int] | None = None
        self._pumps: list[threading.Thread] = []
        self.saved_stderr: TextIO | None = None
        """A stream on the real stderr (``fds`` only): the operator's line goes there."""

    def start(self) -> None:
        """Put the capture in place."""
        if self._fds:
            self._capture_fds()
        self.saved = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = self._out, self._err
        stderr.register(self.replaced_stderr)

    def stop(self) -> None:
        """Take it away again: what was printed so far is logged, the streams are back."""
        self._out.flush()
        self._err.flush()
        stderr.unregister(self.replaced_stderr)
        if self.saved is not None:
            sys.stdout, sys.stderr = self.saved
            self.saved = None
        if self._saved_fds is not None:
            saved_out, saved_err = self._saved_fds
            self._saved_fds = None
            os.dup2(saved_out, 1)  # the pipes' last write ends close: the pumps read to the end
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)  # saved_stderr writes through a copy of its own
            for pump in self._pumps:
                pump.join(_PUMP_JOIN_S)  # a child still writing keeps its pipe open: let it be
            if self.saved_stderr is not None:
                with contextlib.suppress(OSError):
                    self.saved_stderr.close()
                self.saved_stderr = None

    def keep(self, threads: Sequence[threading.Thread]) -> None:
        """Leave it in place while ``threads`` (left running by the run) may still print.

        A process of its own (``fds``) keeps it until it exits. In a caller's
        process (a test, a library use) it is taken away once they have all
        ended, so a later run or print of the caller is not sent to this log.
        """
        self._out.flush()
        self._err.flush()
        if self._fds:
            return
        threading.Thread(
            target=self._stop_after, args=(threads,), name="agentops-output-keeper", daemon=True
        ).start()

    def _stop_after(self, threads: Sequence[threading.Thread]) -> None:
        for thread in threads:
            thread.join()
        self._out.flush()
        self._err.flush()
        stderr.unregister(self.replaced_stderr)
        if self.saved is not None and (sys.stdout, sys.stderr) == (self._out, self._err):
            sys.stdout, sys.stderr = self.saved  # unless the caller has replaced them since
        self.saved = None

    def replaced_stderr(self) -> TextIO | None:
        """The stderr this capture replaced, for a line meant for the operator."""
        if not self._fds and sys.stderr is not self._err:
            # In a caller's process, someone (a test runner, between tests) has
            # replaced the stream since: this capture is no longer in the way.
            return None
        stream: TextIO | None = self.saved[1] if self.saved is not None else None
        if self.saved_stderr is not None and (stream is None or _on_fd_2(stream)):
            return self.saved_stderr  # fd 2 itself goes to the log now: its copy
        if stream is not None and not stream.closed:
            return stream  # the stream that was there (a test runner's, say)
        return None

    def _capture_fds(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        saved_out, saved_err = os.dup(1), os.dup(2)
        for fd, writer in ((1, self._out), (2, self._err)):
            read_end, write_end = os.pipe()
            os.dup2(write_end, fd)
            os.close(write_end)
            pump = threading.Thread(
                target=_pump, args=(read_end, writer), name=f"agentops-output-{fd}", daemon=True
            )
            pump.start()
            self._pumps.append(pump)
        self._saved_fds = (saved_out, saved_err)
        self.saved_stderr = os.fdopen(os.dup(saved_err), "w", buffering=1, closefd=True)


def _pump(read_end: int, writer: _LineWriter) -> None:
    # Whatever reaches the file descriptor, line by line, into the log.
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            writer.write(chunk.decode("utf-8", errors="replace"))
    writer.flush()


class _LineWriter(io.TextIOBase):
    """A text stream that logs each whole line; safe to share between threads."""

    def __init__(
        self, log: EventLogger, stream: str, before_line: Callable[[], None] | None
    ) -> None:
        self._emit = log.info if stream == "stdout" else log.warning
        self._stream = stream
        self._before_line = before_line
        self._pending = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            lines = (self._pending + text).split("\n")
            self._pending = lines.pop()
            for line in lines:
                self._line(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self._line(self._pending)
                self._pending = ""

    def _line(self, line: str) -> None:
        if self._before_line is not None:
            self._before_line()
        self._emit("agent.output", stream=self._stream, line=line)
