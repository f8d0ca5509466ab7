"""The hard deadline: a run's process ends by then, whatever its code is doing.

The timeout (:mod:`agentops.guards.interrupts`) stops agent code with a signal, but
Python runs signal handlers only between bytecodes: ``sum(range(10**13))``
or a blocking call inside a C library never sees it, and would hold the
agent's lock forever. So the CLI also arms :mod:`faulthandler`'s watchdog,
a C thread that needs no interpreter: at the hard deadline (the timeout, then
twice the grace a stop waits, then a second) it writes the stack the run was
stuck in and ends the process.

The deadline counts from the start of the invocation, not from the moment
its lease is held: until then (connecting, the lease, loading the state) a
:class:`StartWatch` thread ends the process at that same deadline with one
line, should the store keep it waiting longer than its own bounds would.

Where it writes is the run's **deadline marker**, ``state/<name>.deadline``:
its first line names the run; anything after it means the run was ended
(by the watchdog, or abandoned for swallowing its stop). The next run reads
it and records that run as ``timeout``, so it counts for the circuit breaker
instead of looking like a crash; a run that ends normally removes it.

The watchdog ends the process without a word, and cron mails only what a job
prints. So a **watcher** says the run's one line: a ``/bin/sh`` started with
the deadline, blocked on a pipe only the run's process holds. When that
process is gone (its pipe end closed, however it ended), the watcher reads
the marker: if the watchdog wrote in it, it prints the line on the run's
stderr; a run that ended in time has removed the marker, an abandoned one has
said its own line, and one killed (``kill -9``) is for the next run to tell.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import threading
from datetime import datetime
from typing import TYPE_CHECKING, NoReturn, Self

from agentops._infra.files import SIDE_FILE_LIMIT, load_json
from agentops._infra.fs import describe
from agentops._infra.timestamps import in_range, iso
from agentops.errors import StateError
from agentops.guards.interrupts import grace_s
from agentops.store.base import Marker

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import TracebackType

    from agentops._infra.fs import FileSystem

__all__ = [
    "MARKER_SUFFIX",
    "HardDeadline",
    "Marker",
    "StartWatch",
    "hard_deadline_s",
    "lease_ttl_s",
    "read_marker",
]

MARKER_SUFFIX = ".deadline"
"""A run's marker: ``state/<name>.deadline`` (a dry run's own: ``<name>.dry-run.deadline``)."""

_WATCHER = """\
read -r _ || :
[ -r "$1" ] || exit 0
{ read -r _; read -r said; } < "$1" || :
case $said in Timeout*) printf '%s\\n' "$2" >&2 ;; esac
"""
"""Waits for the run's process to close its pipe, then says ``$2`` if the watchdog ended it.

faulthandler's first line in the marker is ``Timeout (H:MM:SS)!``; an
abandoned run's is ``abandoned: ...``; a run that ended in time left no marker.
"""
_SHELL = "/bin/sh"


_MARKER_LIMIT = 4 * SIDE_FILE_LIMIT
"""A marker holds a line and a stack (of thousands of threads, at worst)."""


def hard_deadline_s(timeout_s: float) -> float:
    """Seconds from the start of a run to its hard deadline."""
    return timeout_s + 2 * grace_s(timeout_s) + 1


def lease_ttl_s(timeout_s: float) -> float:
    """How long a run may hold its agent's lease: past it, its process is gone."""
    return hard_deadline_s(timeout_s) + grace_s(timeout_s)


class StartWatch:
    """The hard deadline before the lease is held: ``expired()`` is called when it passes.

    A thread, not the watchdog: before the lease no agent code runs, only
    agentops waiting on its store (which lets other threads run), and a
    process that ends here must say why in one line, which a C thread
    cannot. It writes no marker: a run that never held the lease left
    nothing for the next run to record.
    """

    def __init__(self, seconds: float, expired: Callable[[], NoReturn]) -> None:
        """Call ``expired`` ``seconds`` from now, unless stopped first."""
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, args=(seconds, expired), name="agentops-start-watch", daemon=True
        )
        self._thread.start()

    def _watch(self, seconds: float, expired: Callable[[], NoReturn]) -> None:
        if not self._stopped.wait(max(0.0, seconds)):
            expired()

    def stop(self) -> None:
        """The lease is held (or the invocation ended): the watch is over."""
        self._stopped.set()


class HardDeadline:
    """Arms the watchdog for one run (a context manager); the marker lives while the run does."""

    def __init__(
        self,
        fs: FileSystem,
        path: Path,
        *,
        run_id: str,
        started: datetime,
        seconds: float,
        kind: str = "run",
        announce: tuple[int, str] | None = None,
    ) -> None:
        """A watchdog ending the invocation ``run_id`` (a ``kind``) ``seconds`` after entry.

        ``announce``: a file descriptor and the line the watcher writes there
        if the watchdog ends the process (none: nothing is said).
        """
        self._fs = fs
        self._announce = announce
        self._watcher: tuple[int, int] | None = None
        """The watcher's pid, and the end of its pipe this process holds."""
        self.path = path
        self.seconds = seconds
        self._begun = Marker(run_id, started, ended=False, last_words="", kind=kind)
        first = {"run_id": run_id, "started_at": iso(started), "kind": kind}
        self._first_line = json.dumps(first) + "\n"
        self._fd: int | None = None

    def __enter__(self) -> Self:
        """Write the marker and start the watchdog; ``StateError`` if the marker cannot be."""
        try:
            self._fs.mkdir(self.path.parent)  # a local file, whatever the store
            self._fs.unlink(self.path)
            fd = self._fs.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except OSError as exc:
            raise self._failed(exc) from exc
        try:
            self._fs.write(fd, self._first_line.encode())
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._fs.close(fd)
                self._fs.unlink(self.path)
            raise self._failed(exc) from exc
        self._fd = fd
        if self._announce is not None:
            self._watcher = _start_watcher(self.path, *self._announce)
        faulthandler.dump_traceback_later(self.seconds, exit=True, file=fd)
        return self

    def _failed(self, exc: OSError) -> StateError:
        return StateError(f"{self.path}: cannot write the run's deadline marker: {describe(exc)}")

    def abandoned(self, reason: str) -> Marker:
        """Say in the marker that the run is abandoned (the process exits next); the marker."""
        words = f"abandoned: {reason}"
        if self._fd is not None:
            os.write(self._fd, f"{words}\n".encode())
        return self._begun._replace(ended=True, last_words=words)

    def overdue(self) -> None:
        """Say in the marker that the run, alive past its deadline, is ended from outside.

        Called by the run's keeper (a forked process, which has not the
        marker's descriptor) before it kills a run frozen past its deadline,
        whose watchdog could not fire: the line starts as the watchdog's
        does, so the watcher says the run's one line and the next run
        records a timeout. A marker already removed (the run ended in time),
        or another run's since (its lease lapsed meanwhile), is left so.
        """
        first = self._first_line.encode()
        with contextlib.suppress(OSError):
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
            try:
                if os.pread(fd, len(first), 0) == first:
                    os.write(fd, b"Timeout: alive past the hard deadline; ended by its keeper\n")
            finally:
                os.close(fd)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """The run ended in time: stop the watchdog and remove the marker."""
        if self._fd is None:
            return
        faulthandler.cancel_dump_traceback_later()
        fd, self._fd = self._fd, None
        # The run is over: a marker left behind (a disk error) says nothing more
        # than its first line, which the next run reads as "ended in time".
        with contextlib.suppress(OSError):
            self._fs.close(fd)
        with contextlib.suppress(OSError):
            self._fs.unlink(self.path)
        self._stop_watcher()

    def _stop_watcher(self) -> None:
        # The marker is gone (or says the run ended in time): closing the pipe
        # lets the watcher find that and exit. Not waited for (cron pays every
        # millisecond): reaped now if it is done, else by init once we exit.
        if self._watcher is None:
            return
        pid, pipe = self._watcher
        self._watcher = None
        os.close(pipe)
        with contextlib.suppress(ChildProcessError):  # the agent's code may have reaped it
            os.waitpid(pid, os.WNOHANG)


def _start_watcher(marker: Path, fd: int, line: str) -> tuple[int, int] | None:
    """Start the watcher saying ``line`` on ``fd``: its pid and our pipe end; None if it cannot."""
    read_end, write_end = os.pipe()  # not inherited: only this process holds the write end
    try:
        pid = os.posix_spawn(
            _SHELL,
            [_SHELL, "-c", _WATCHER, "agentops-deadline", str(marker), line],
            {"PATH": os.defpath},
            file_actions=[
                (os.POSIX_SPAWN_DUP2, read_end, 0),
                (os.POSIX_SPAWN_DUP2, fd, 2),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            ],
        )
    except OSError:  # no shell: the run goes on, silent at its deadline as before
        os.close(write_end)
        return None
    finally:
        os.close(read_end)
    return pid, write_end


def read_marker(fs: FileSystem, path: Path) -> Marker | None:
    """The marker a run left at ``path``, None if there is none (or it says nothing usable)."""
    try:
        raw = fs.read(path, limit=_MARKER_LIMIT)
    except OSError:  # not a file, too large: nothing to rely on (the run moves it aside)
        return None
    if not raw:
        return None
    first, _, rest = raw.decode(errors="replace").partition("\n")
    try:
        document = load_json(first)
        run_id = str(document["run_id"])
        started = in_range(datetime.fromisoformat(document["started_at"]))
        kind = str(document.get("kind", "run"))
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
        return None  # damaged, or not ours: it says nothing to rely on
    return Marker(run_id, started, bool(rest.strip()), rest.strip()[-2000:], kind)
