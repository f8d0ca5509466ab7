"""``agentops run`` or ``agentops tick`` as PID 1 of a container: a supervisor stays behind.

A container started without an init (the CronJobs ``agentops export k8s``
writes run ``agentops ... run AGENT --scheduled`` as the container's command)
makes agentops its PID 1, which breaks two things a run relies on:

- when PID 1 exits, the kernel kills every other process of its namespace,
  so the **watcher** that says the hard-deadline line (:mod:`agentops.run.deadline`)
  is killed before it can, and ``kubectl logs`` never shows why the run ended;
- orphans are reparented to PID 1, which must reap them, or they stay zombies.

So when ``agentops run`` or ``agentops tick`` finds itself PID 1, it forks
once before doing anything: the child does the work as ever; the parent,
the **supervisor**, forwards SIGTERM, SIGINT, SIGHUP and SIGQUIT to it, reaps
every process reparented to it, waits until none is left (the watcher has
said its line), publishes the marker of a run its deadline ended to the
store (:mod:`agentops.run.markers`: every pod is a new host, and the next run
is in another), and exits with the child's exit code (128 + the signal if a
signal killed it). A process that outlives the child is waited for
:data:`LINGER_S` at most: the kernel ends it when the supervisor exits.

The run's keeper (:mod:`agentops.run.processes`) leaves the marker to the
supervisor (:func:`supervised`): it would be waited for, and publish it twice.

Only PID 1 pays for this: the command line checks ``os.getpid() == 1``
before it even imports this module.
"""

from __future__ import annotations

import os
import signal
import sys
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing before the block
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["FORWARDED", "LINGER_S", "supervise_as_init", "supervised"]

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
"""The signals the supervisor passes on to the run (a pod's stop is SIGTERM)."""

LINGER_S = 10.0
"""How long processes that outlive the run are waited for (the watcher needs a moment)."""

_SUPERVISED = ("run", "tick")
_HOME_ENV = "AGENTOPS_HOME"


class _Here:
    supervised = False
    """Set in the supervisor's child (and so in what it forks: a tick's runs, their keepers)."""


def supervised() -> bool:
    """Whether a PID-1 supervisor forked this process (or its parent), and outlives it.

    The supervisor publishes an ended run's marker once every process is
    gone, so the run's keeper leaves it that: a keeper trying a store that
    does not answer would hold the container's end for :data:`LINGER_S`.
    """
    return _Here.supervised


def supervise_as_init(argv: Sequence[str], environ: Mapping[str, str]) -> None:
    """As PID 1 running ``run`` or ``tick``: fork; return in the child, supervise and exit here."""
    if os.getpid() != 1:
        return
    home, command = _home_and_command(argv, environ)
    if command not in _SUPERVISED:
        return
    waited = {signal.SIGCHLD, *FORWARDED}
    # Blocked before the fork: a stop arriving meanwhile waits for the supervisor.
    before = signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
        _Here.supervised = True
        return
    code = _supervise(child, waited)
    try:
        if code != 0:
            _publish(home, environ)
    finally:
        os._exit(code)  # the run's code, whatever publishing did


def _home_and_command(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[str | None, str]:
    # The root group's --home (else $AGENTOPS_HOME), and the command after it.
    args = list(argv)
    home = environ.get(_HOME_ENV) or None
    if len(args) >= 2 and args[0] == "--home":  # noqa: PLR2004 - the option and its value
        home, args = args[1], args[2:]
    elif args and args[0].startswith("--home="):
        home, args = args[0].removeprefix("--home="), args[1:]
    return home, args[0] if args else ""


def _supervise(child: int, waited: set[signal.Signals]) -> int:
    """Forward stops to ``child`` and reap every process until none is left: its exit code."""
    code: int | None = None
    linger_until = 0.0
    while True:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # nobody left to wait for
                return 0 if code is None else code
            if pid == 0:
                break
            if pid == child:
                found = os.waitstatus_to_exitcode(status)
                code = found if found >= 0 else 128 - found
                linger_until = time.monotonic() + LINGER_S
        got: signal.struct_siginfo | None
        if code is None:
            got = signal.sigwaitinfo(waited)
        else:
            left = linger_until - time.monotonic()
            if left <= 0:
                return code
            got = signal.sigtimedwait(waited, left)
        if got is not None and got.si_signo != signal.SIGCHLD and code is None:
            os.kill(child, got.si_signo)


def _publish(home: str | None, environ: Mapping[str, str]) -> None:
    # Every process of the run is gone: no watcher reads the local marker any
    # more, and this pod's state/ goes with it, so the store keeps it instead.
    from agentops.errors import AgentOpsError  # noqa: PLC0415 - only after a failure
    from agentops.project.home import Project  # noqa: PLC0415
    from agentops.run.markers import publish_ended  # noqa: PLC0415

    try:
        project = Project.locate(home)
    except (AgentOpsError, OSError, ValueError):  # no project: the run said so, left no marker
        return
    try:
        problems = [p for p in publish_ended(project, environ=environ, remove=True).values() if p]
    except Exception as exc:  # noqa: BLE001 - the exit code is what must come out
        problems = [f"cannot publish the run's deadline marker: {type(exc).__name__}: {exc}"]
    for line in problems:
        print(f"agentops: {line}", file=sys.stderr, flush=True)  # noqa: T201 - like cron's line
