"""Processes as Linux's ``/proc`` shows them, and the kernel's help in keeping them in view.

What a run starts can leave its process group (``setsid()``), lose its
parent (a double fork) or outlive it. These are the pieces the run's keeper
(:mod:`agentops.run.processes`) is built from:

- :func:`snapshot` and :func:`descendants`: every process, and those
  descending from one through their parents (``/proc/<pid>/stat``);
- :func:`set_child_subreaper`: ``prctl(PR_SET_CHILD_SUBREAPER)``, after
  which a descendant orphaned by a double fork becomes a child of the
  caller rather than of init, so it stays a descendant;
- :func:`command_of`, for the log;
- :func:`flock_holders` and :func:`holding_open`: who holds a lock file
  (``/proc/locks``) and who has it open, so ``status`` can name a process
  that keeps an agent's lock without being a run of it;
- :class:`Watch`: one process waiting for another to say a word on a pipe,
  or to end (a pidfd); :func:`lead_a_group`.

On a system without ``/proc`` every function here finds nothing.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ProcessInfo",
    "Watch",
    "alive",
    "command_of",
    "descendants",
    "flock_holders",
    "holding_open",
    "lead_a_group",
    "read_process",
    "set_child_subreaper",
    "snapshot",
]

PROC = Path("/proc")

_PR_SET_CHILD_SUBREAPER = 36
_COMMAND_CHARS = 300
_FOREVER = 365 * 86400.0
_POLL_GONE_S = 0.05


class ProcessInfo(NamedTuple):
    """One process, as ``/proc/<pid>/stat`` describes it."""

    pid: int
    ppid: int
    pgid: int
    state: str
    """``R``, ``S``, ``D``...; ``Z`` for a zombie (ended, not yet reaped)."""


def read_process(pid: int) -> ProcessInfo | None:
    """The process ``pid``, None if there is none."""
    try:
        raw = (PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    _, _, rest = raw.rpartition(b")")
    fields = rest.split()
    try:
        return ProcessInfo(pid, int(fields[1]), int(fields[2]), fields[0].decode())
    except (IndexError, ValueError):
        return None


def alive(pid: int) -> bool:
    """Whether ``pid`` is a process still running (a zombie has ended)."""
    info = read_process(pid)
    return info is not None and info.state not in ("Z", "X")


def snapshot() -> list[ProcessInfo]:
    """Every process this user can see."""
    try:
        names = [entry.name for entry in PROC.iterdir()]
    except OSError:
        return []
    found = (read_process(int(name)) for name in names if name.isdigit())
    return [info for info in found if info is not None]


def descendants(root: int, processes: list[ProcessInfo] | None = None) -> list[int]:
    """The pids descending from ``root`` through their parents, nearest first."""
    children: dict[int, list[int]] = {}
    for info in snapshot() if processes is None else processes:
        children.setdefault(info.ppid, []).append(info.pid)
    found: list[int] = []
    frontier = [root]
    while frontier:
        pid = frontier.pop(0)
        for child in children.get(pid, ()):
            if child not in found and child != root:
                found.append(child)
                frontier.append(child)
    return found


def command_of(pid: int) -> str:
    """The command line of ``pid`` (cut to a few hundred characters), ``?`` if unknown."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()[: _COMMAND_CHARS * 4]
        if not raw:  # a kernel thread, or a zombie: its name only
            raw = b"[" + (PROC / str(pid) / "comm").read_bytes().strip() + b"]"
    except OSError:
        return "?"
    command = raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    return command[:_COMMAND_CHARS]


def set_child_subreaper(*, on: bool = True) -> bool:
    """Make this process the reaper of its orphaned descendants; False if the kernel says no."""
    import ctypes  # noqa: PLC0415 - only runs that fall back to the subreaper pay for it

    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the C library Python itself is linked to
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0)
    except (OSError, AttributeError):  # no prctl: not Linux
        return False


def flock_holders(path: Path) -> list[int] | None:
    """The pids ``/proc/locks`` names as holding a ``flock`` on ``path``; None if unknown.

    The pid is the process that took the lock: it may have died since, while a
    child it forked keeps the lock through the descriptor it inherited.
    """
    try:
        target = path.stat()
        table = (PROC / "locks").read_text()
    except OSError:
        return None
    where = f"{os.major(target.st_dev):02x}:{os.minor(target.st_dev):02x}:{target.st_ino}"
    holders = []
    for line in table.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 8171 fe:00:2147250 0 EOF"; waiters have "->".
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == where:  # noqa: PLR2004
            with contextlib.suppress(ValueError):
                holders.append(int(fields[4]))
    return holders


def holding_open(path: Path) -> list[int]:
    """The pids of the processes with ``path`` open (those this user may look into)."""
    try:
        target = path.stat()
        processes = [entry for entry in PROC.iterdir() if entry.name.isdigit()]
    except OSError:
        return []
    found = []
    for process in processes:
        try:
            fds = list((process / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                opened = fd.stat()
            except OSError:
                continue
            if (opened.st_dev, opened.st_ino) == (target.st_dev, target.st_ino):
                found.append(int(process.name))
                break
    return found


class Watch:
    """One process watched by another: what it said on a pipe, or that it died.

    A pidfd tells a death at once; without one (before Linux 5.3) it is
    polled. A pipe that reaches its end says nothing: the pidfd decides.
    """

    def __init__(
        self, pid: int, pipe: int | None = None, *, words: Mapping[bytes, str] | None = None
    ) -> None:
        """Watch ``pid``; ``pipe`` (a read end) carries ``words``, one byte each."""
        self.pid = pid
        self.pipe = pipe
        self.words = words or {}
        try:
            self.death: int | None = os.pidfd_open(pid)
        except (OSError, AttributeError):  # before Linux 5.3: polled instead
            self.death = None

    def wait(self, until: float | None) -> str:
        """A word said on the pipe, ``died`` or ``deadline``: whichever comes first.

        ``until`` is a ``time.monotonic()``; without it the wait lasts as long as it takes.
        """
        while (left := _FOREVER if until is None else until - time.monotonic()) > 0:
            watched = [fd for fd in (self.pipe, self.death) if fd is not None]
            slice_s = left if self.death is not None else min(left, _POLL_GONE_S)
            ready, _, _ = select.select(watched, [], [], slice_s)
            if self.pipe is not None and self.pipe in ready:
                word = os.read(self.pipe, 1)
                if word:
                    return self.words.get(word, "died")
                # Its end was closed: the process said what it had to, or died.
                os.close(self.pipe)
                self.pipe = None
                continue
            if (ready and self.pipe not in ready) or (self.death is None and self._gone()):
                return "died"
        return "deadline"

    def close(self) -> None:
        """Stop watching (the pidfd is closed)."""
        if self.death is not None:
            os.close(self.death)
            self.death = None

    def _gone(self) -> bool:
        if self.pid == os.getppid():
            return False  # the parent still lives
        with contextlib.suppress(ChildProcessError):
            return os.waitpid(self.pid, os.WNOHANG)[0] != 0
        return not alive(self.pid)


def lead_a_group() -> bool:
    """Lead a new process group (True if this process leads one now).

    Not when this process is a terminal's foreground job without leading
    it: moved out, Ctrl-C would no longer reach it.
    """
    if os.getpgrp() == os.getpid():
        return True
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
                return False
    try:
        os.setpgid(0, 0)
    except OSError:
        return False
    return True
