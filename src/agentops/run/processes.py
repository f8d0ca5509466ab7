"""The processes a run starts are the run's: they end with it, and never keep its lock.

An agent may start processes (a CLI tool, a browser, a ``multiprocessing``
pool) and leave them running, detached or not. While the CLI's run is in
agent code, :class:`RunProcesses` keeps them in view with the best means the
kernel offers, tried in this order (``AGENTOPS_PROCESS_TRACKING`` names one
to start from: ``cgroup``, ``subreaper`` or ``group``):

``cgroup``
    the run moves itself into a cgroup of its own (:mod:`agentops._infra.cgroup`):
    everything it starts is born there and stays there, however it detaches;
``subreaper``
    ``PR_SET_CHILD_SUBREAPER``: a descendant orphaned by a double fork is
    re-parented to the run rather than to init, so it stays a descendant;
``group``
    the run leads a process group of its own (unless it is a terminal's
    foreground job): what does not ``setsid()`` stays in it.

Without a cgroup, a process is the run's if it descends from the run or
shares its process group.

When the run stops (its timeout, SIGTERM, SIGINT), its processes get the
same signal at once (SIGTERM for the timeout); when it ends, those still
running get SIGTERM, and SIGKILL when the run's grace has passed since the
first signal. The run then logs ``run.processes_ended`` naming each (pid and
command). A run abandoned for not stopping kills them at once.

A run stuck in C code never gets that far: its hard deadline
(:mod:`.deadline`) ends the process. So a **keeper**, a small process forked
when tracking starts, watches the run: just before the hard deadline it
kills the run's processes (after the run's death an orphan could no longer
be found without a cgroup), and if the run dies without saying it is done
(the watchdog, ``kill -9``) it kills what the run's cgroup, or its process
group, still holds, and then does what the run asked of it after its death
(with a shared store, the run's deadline marker is handed to it: see
:mod:`agentops.run.markers`), once the run is gone: one still alive past
its deadline (frozen, without a cgroup to end it) is waited for. A run
that ends leaving threads running (a ``multiprocessing`` pool's, which
start workers again) keeps its tracking until the process exits, and the
keeper ends what they started then.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Self

from agentops._infra import procs
from agentops._infra.cgroup import RunCgroup
from agentops.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from types import TracebackType

    from agentops._infra.log import EventLogger

__all__ = ["KEEPER_LEAD_S", "TRACKINGS", "RunProcesses", "cgroup_prefix"]

TRACKINGS = ("cgroup", "subreaper", "group")
"""The means of keeping a run's processes in view, best first."""

KEEPER_LEAD_S = 0.5
"""How long before the hard deadline the keeper ends the run's processes."""

_POLL_S = 0.02
_SETTLE_S = 5.0
"""How long a SIGKILL is given to take effect, at most."""
_LOGGED = 20
"""The processes named in a ``run.processes_ended`` line, at most."""
_DONE = b"d"
_KEEP = b"k"
_WORDS = {_DONE: "done", _KEEP: "kept"}
"""What the run says to its keeper: it is done, or it ended leaving threads running."""
_MAX_FD = 1 << 20


def cgroup_prefix(name: str, home: Path) -> str:
    """How the cgroups of the runs of agent ``name`` of the home ``home`` are named.

    The home's digest is in it: another home may have an agent of that name,
    and its runs' cgroups are none of this agent's.
    """
    where = hashlib.sha256(str(home).encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"agentops-{name}-{where}-"


class RunProcesses:
    """Keeps the processes one run starts in view, and ends them with it (a context manager)."""

    def __init__(
        self,
        *,
        name: str,
        home: Path,
        run_id: str,
        grace_s: float,
        deadline_s: float,
        log: EventLogger,
        keeper_log: Callable[[], EventLogger],
        environ: Mapping[str, str],
        after_death: Callable[[EventLogger], None] | None = None,
        overdue: Callable[[], None] | None = None,
    ) -> None:
        """Track the processes of the run ``run_id`` of agent ``name`` of the project at ``home``.

        ``grace_s`` is how long they get between SIGTERM and SIGKILL;
        ``deadline_s`` is how far away the run's hard deadline is. The keeper
        logs through a logger of its own, made by ``keeper_log()``. Once the
        run died without saying it is done, and its processes are gone, the
        keeper calls ``after_death`` with that logger. Should the run itself
        outlive its deadline (frozen, or stuck in the kernel) where its cgroup
        ends it with its processes, the keeper first calls ``overdue``, to say
        so where the run's watchdog would have.
        """
        self.name = name
        self.run_id = run_id
        self._prefix = cgroup_prefix(name, home)
        self.grace_s = grace_s
        self.deadline_s = deadline_s
        self.log = log
        self._keeper_log = keeper_log
        self._after_death = after_death
        self._overdue = overdue
        wanted = environ.get("AGENTOPS_PROCESS_TRACKING", "").strip().lower() or TRACKINGS[0]
        if wanted not in TRACKINGS:
            raise ConfigError(
                f"AGENTOPS_PROCESS_TRACKING is {wanted!r}: it must be one of {', '.join(TRACKINGS)}"
            )
        self._wanted = wanted
        self.tracking = "group"
        """The means in use: one of :data:`TRACKINGS`."""
        self._pid = os.getpid()
        self._cgroup: RunCgroup | None = None
        self._subreaper = False
        self._own_group = False
        self._before: set[int] = set()
        self._keeper: int | None = None
        self._to_keeper: int | None = None
        self._first_signal_at: float | None = None
        self._ended = _Ended()
        self._stop_reason = ""
        self._threads = set(threading.enumerate())

    # -- start -------------------------------------------------------------------------

    def __enter__(self) -> Self:
        """Start keeping the run's processes in view, and the keeper watching the run."""
        deadline_at = time.monotonic() + self.deadline_s
        if self._wanted == "cgroup":
            self._enter_cgroup()
        if self._cgroup is None:
            if self._wanted != "group" and procs.set_child_subreaper(on=True):
                self._subreaper, self.tracking = True, "subreaper"
            self._own_group = procs.lead_a_group()
            # Children this process had before the run (a library caller's) are not the run's.
            self._before = set(self.members())
        else:
            self._sweep()
        self._start_keeper(deadline_at)
        return self

    def _enter_cgroup(self) -> None:
        cgroup, _ = RunCgroup.create(f"{self._prefix}{self.run_id}")
        if cgroup is None:
            return
        if cgroup.enter() is not None:
            cgroup.remove()
            return
        self._cgroup, self.tracking = cgroup, "cgroup"

    def _start_keeper(self, deadline_at: float) -> None:
        read_end, write_end = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError:  # no process to spare: the run ends its processes itself, if it can
            os.close(read_end)
            os.close(write_end)
            return
        if pid == 0:  # the keeper: never returns
            code = 1
            try:
                os.close(write_end)
                self._keep(read_end, deadline_at)
                code = 0
            finally:
                os._exit(code)
        os.close(read_end)
        self._keeper, self._to_keeper = pid, write_end
        if self._cgroup is not None:
            self._cgroup.leave(pid)  # out of the run's cgroup: not one of its processes

    # -- the run's processes -------------------------------------------------------------

    def members(self) -> list[int]:
        """The run's processes still running: neither the run itself nor its keeper."""
        if self._cgroup is not None:
            found = self._cgroup.pids()
        else:
            everything = procs.snapshot()
            found = procs.descendants(self._pid, everything)
            if self._own_group:
                found += [p.pid for p in everything if p.pgid == self._pid and p.pid not in found]
        outside = {self._pid, self._keeper, os.getpid(), *self._before}
        return [pid for pid in found if pid not in outside and procs.alive(pid)]

    def stopping(self, reason: str, signum: int) -> None:
        """The run is stopping (``reason``) on ``signum``: its processes get it now.

        A timeout (SIGALRM, the run's own timer) sends them SIGTERM.
        """
        self._stop_reason = self._stop_reason or reason
        if signum == signal.SIGALRM:
            signum = signal.SIGTERM
        self._signal(self.members(), signum)

    def kill_now(self, reason: str) -> None:
        """The run is abandoned: kill its processes at once, and say so."""
        self._signal(self.members(), signal.SIGKILL)
        self._settle(self.members)
        self._say(reason)

    def _signal(self, pids: list[int], signum: int) -> None:
        if pids and self._first_signal_at is None:
            self._first_signal_at = time.monotonic()
        for pid in pids:
            self._ended.add(pid, signum)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)

    # -- end ---------------------------------------------------------------------------

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """The run ends: its processes still running get SIGTERM, then SIGKILL after the grace.

        Threads the run leaves running (a ``multiprocessing`` pool's, which
        starts workers again) may start more until the process exits: then
        the tracking stays, and the keeper ends what they start once it has.
        """
        threads_left = any(t not in self._threads and t.is_alive() for t in threading.enumerate())
        if self._cgroup is not None and not threads_left:
            self._cgroup.leave()
        try:
            self._end(self._stop_reason or "run_ended", threads_left=threads_left)
        finally:
            if threads_left:
                self._dismiss_keeper(_KEEP)
            else:
                if self._cgroup is not None:
                    self._cgroup.remove()  # left for the next run's sweep if something is stuck
                if self._subreaper:
                    procs.set_child_subreaper(on=False)
                self._dismiss_keeper(_DONE)

    def _end(self, reason: str, *, threads_left: bool) -> None:
        self._signal([p for p in self.members() if p not in self._ended.commands], signal.SIGTERM)
        if self._first_signal_at is None:
            return  # nothing was left running
        members = self.members
        if threads_left:  # they may start more (a pool its workers): those go at the exit
            signalled = list(self._ended.commands)
            members = lambda: [pid for pid in signalled if procs.alive(pid)]  # noqa: E731
        until = self._first_signal_at + self.grace_s
        while (left := members()) and time.monotonic() < until:
            time.sleep(_POLL_S)
        if left:
            self._signal(left, signal.SIGKILL)
            if self._cgroup is not None and not threads_left:
                self._cgroup.kill()  # whatever was forked in between too
            self._settle(members)
        self._say(reason)

    def _settle(self, members: Callable[[], list[int]]) -> None:
        # SIGKILL until none is left: at once, unless a process is inside the
        # kernel (uninterruptible I/O). Given a few seconds, then left be.
        until = time.monotonic() + _SETTLE_S
        while (left := members()) and time.monotonic() < until:
            self._signal(left, signal.SIGKILL)
            time.sleep(_POLL_S)

    def _say(self, reason: str, log: EventLogger | None = None) -> None:
        ended, self._ended = self._ended, _Ended()
        if ended.commands:
            (log or self.log).warning(
                "run.processes_ended", reason=reason, tracking=self.tracking, **ended.facts()
            )

    def _sweep(self) -> None:
        # Cgroups of this agent's earlier runs that died with their keeper: under
        # the lease no other run of the agent is alive, so what is in them is left over.
        assert self._cgroup is not None  # noqa: S101 - only with a cgroup
        for stale in self._cgroup.siblings(self._prefix):
            self._settle(stale.pids)  # a zombie is no longer listed
            stale.remove()
        self._say("left_by_an_earlier_run")

    def _dismiss_keeper(self, word: bytes) -> None:
        keeper, self._keeper = self._keeper, None
        to_keeper, self._to_keeper = self._to_keeper, None
        if keeper is None or to_keeper is None:
            return
        with contextlib.suppress(OSError):
            os.write(to_keeper, word)
        os.close(to_keeper)
        if word == _KEEP:
            return  # it stays until this process exits
        # It leaves at once (unless it is ending the run's processes at the
        # deadline): waited for a few seconds at most, then ended.
        watch = procs.Watch(keeper)
        try:
            if watch.wait(time.monotonic() + _SETTLE_S) != "died":
                os.kill(keeper, signal.SIGKILL)
            os.waitpid(keeper, 0)
        except (ChildProcessError, ProcessLookupError):  # reaped already (agent code's wait())
            pass
        finally:
            watch.close()

    # -- the keeper ----------------------------------------------------------------------

    def _keep(self, from_run: int, deadline_at: float) -> None:
        # In the forked keeper: no thread but this one, no lock another held,
        # no descriptor of the run's but the pipe (its lock above all).
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
            signal.signal(signum, signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, from_run)
        os.closerange(from_run + 1, _MAX_FD)
        self._ended = _Ended()
        watch = procs.Watch(self._pid, from_run, words=_WORDS)
        how = watch.wait(deadline_at - KEEPER_LEAD_S)
        if how == "deadline":  # end the run's processes while they can still be found
            self._settle(self.members)
            self._say("hard_deadline", self._keeper_log())
            how = watch.wait(deadline_at + _SETTLE_S)
        if how == "done":
            return
        reason = "run_died"
        if how == "kept":  # ended, with threads left: what they start ends when it exits
            watch.wait(None)
            reason = "started_by_threads_left"
        # The run is gone: what its cgroup (or, without one, its process
        # group) still holds goes too. Or it is not (frozen past its deadline):
        # its cgroup's kill ends it as well, its watchdog having said nothing.
        self._signal(self.members(), signal.SIGKILL)
        if self._cgroup is not None:
            if how == "deadline" and self._overdue is not None:
                self._overdue()
            self._cgroup.kill()
        self._settle(self.members)
        if self._cgroup is not None:
            self._cgroup.remove()
        log = self._keeper_log()
        self._say(reason, log)
        if reason == "run_died":
            self._after(watch, how, log)

    def _after(self, watch: procs.Watch, how: str, log: EventLogger) -> None:
        # What the run asked of its keeper after its death, once it is dead: a
        # run still alive past its deadline (frozen, say; no cgroup ended it)
        # is waited for, as its watchdog ends it when it runs again.
        if self._after_death is None:
            return
        if how == "deadline" and watch.wait(None) == "done":
            return
        self._after_death(log)


class _Ended:
    """The processes a run signalled, for its ``run.processes_ended`` line."""

    def __init__(self) -> None:
        self.commands: dict[int, str] = {}
        self.first_signal = ""
        self.killed: set[int] = set()

    def add(self, pid: int, signum: int) -> None:
        if pid not in self.commands:
            self.commands[pid] = procs.command_of(pid)
        self.first_signal = self.first_signal or signal.Signals(signum).name
        if signum == signal.SIGKILL:
            self.killed.add(pid)

    def facts(self) -> dict[str, Any]:
        return {
            "count": len(self.commands),
            "signal": self.first_signal,
            "killed": len(self.killed),
            "processes": [
                {"pid": pid, "command": command}
                for pid, command in list(self.commands.items())[:_LOGGED]
            ],
        }
