"""``agentops tick``: every agent due at this minute, each run in a child process of its own.

One crontab line a host (``* * * * * agentops tick``) instead of one a
agent: the tick finds the agents whose schedule fired at the minute it
started (and, for ``catch_up = true``, one that missed its last tick), claims
their ticks, and runs each won agent as ``agentops run AGENT --scheduled``
would: the same lock, lease, deadline, log and outcome.

- **The tick is when the process started**, not when a claim is made: a busy
  host claims late, but it claims the tick it was started for.
- **Claims**: a store shared by hosts claims every due agent's tick in one
  round trip (:meth:`~agentops.store.base.Store.claim_ticks`), so the hosts
  that lost start nothing; the file store claims each under the run's lock.
  The claims are held by this process's connection until its last child has
  started: each child starts its tick only while it is claimed and not
  started (by this tick, or another host's that took the claim over). A
  tick that dies (``kill -9``, a host lost) before starting every agent it
  won loses none of them: the next tick of any host takes the claims over
  and runs each once, late.
- **One child process per agent**, forked from this warm parent after it
  imported agentops, pydantic, structlog and the store's driver once: a child
  imports only its own agent's code. An agent's crash, hang (its hard
  deadline ends its child), or memory touches no other agent. Fork after
  import rather than a forkserver: the parent is single-threaded, and the one
  connection it holds (the claims') a child never uses: it lets go of its
  copy at once, without a word on it (so that a child never keeps the
  claims of a tick killed alone alive), opens its own, and ends in
  ``os._exit``; a fork costs less than a forkserver's round trip and
  pickling for each of hundreds of agents.
- **Concurrency**: at most ``[tick] parallel`` children at once on the host,
  and no more of a group's agents than its ``[groups]`` limit (a child then
  also takes a slot of the group in the store, which holds across hosts).
- **Deadline markers**: after a child that did not succeed, the parent
  publishes its run's deadline marker, if its hard deadline ended it (or it
  abandoned itself), to the store (:mod:`agentops.run.markers`), so that the
  agent's next run records it as a timeout on whichever host it runs; such
  a child said its line (its watcher did), so it counts as needing a human.
- **Cron's contract**: children that succeed or are skipped by policy print
  nothing; each agent that needs a human prints its one line. The tick exits
  0 when none did, 1 when at least one did (:data:`NEEDS_A_HUMAN`).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import select
import signal
import sys
import time
from typing import TYPE_CHECKING, NamedTuple

from agentops.errors import AgentOpsError, StateError
from agentops.model.status import ExitCode
from agentops.project.envfile import ENV_FILE, read_env_file
from agentops.project.schedule import cron_zone, previous_run
from agentops.run.markers import publish_ended
from agentops.run.options import RunOptions
from agentops.run.pid1 import supervised
from agentops.run.runner import run_agent
from agentops.store import StoreUnavailable, open_store

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime, tzinfo

    from agentops.project.home import AgentSpec, Project
    from agentops.store import Store
    from agentops.store.base import TickClaims

__all__ = ["NEEDS_A_HUMAN", "Due", "TickReport", "due_agents", "tick"]

NEEDS_A_HUMAN = ExitCode.FAILED
"""The tick's exit code when at least one agent printed its line (0 when none did)."""

_WARM = ("cronsim", "httpx", "agentops.context")
"""What most runs import besides the runner: imported once, by the parent, before any fork."""


_LONGEST_POLL_S = 86400.0
"""The longest one wait for a child lasts: poll() takes at most 2**31 - 1 milliseconds."""


class Due(NamedTuple):
    """An agent due at this tick."""

    name: str
    tick: datetime
    """The schedule's tick it runs for (a missed one, for a catch-up)."""
    group: str | None
    catch_up: bool = False
    """Whether it runs a tick missed: while no host ran, or claimed by a tick that died first."""
    timeout_s: float = math.inf
    """Its ``timeout``: the longest it waits for its group (in the tick's queue, then its run)."""


class TickReport(NamedTuple):
    """What one tick did on this host."""

    started: datetime
    due: tuple[Due, ...]
    """Every agent due, won or not."""
    ran: dict[str, int]
    """Each agent this host ran, and its child's exit code (negative: the signal that killed it)."""
    told: tuple[str, ...]
    """The agents that needed a human: each printed its line."""

    @property
    def exit_code(self) -> int:
        """0 when nobody needs to look, :data:`NEEDS_A_HUMAN` otherwise."""
        return NEEDS_A_HUMAN if self.told else ExitCode.OK


def due_agents(
    specs: Sequence[AgentSpec], at: datetime, *, store: Store, zone: tzinfo | None = None
) -> list[Due]:
    """The agents whose schedule fired in the minute of ``at``, and catch-ups that missed one.

    ``at`` is aware; schedules are read in ``zone`` (cron's, by default the
    machine's). A ``catch_up`` agent whose last tick claimed is older than
    its schedule's last fire is due for that fire, once: the next claim
    makes it the last. An agent never run before has nothing to catch up.
    """
    local = at.astimezone(zone or cron_zone())
    minute = local.replace(second=0, microsecond=0)
    due = []
    for spec in specs:
        schedule = spec.config.schedule
        fired = None if schedule is None else previous_run(schedule, local)
        if fired is None:
            continue
        catch_up = fired < minute
        if catch_up:  # due only if its agent catches up, and that fire was missed
            last = store.last_tick(spec.name) if spec.config.catch_up else None
            if last is None or last >= fired:
                continue
        due.append(_due(spec, fired, catch_up=catch_up))
    return due


def _due(spec: AgentSpec, tick: datetime, *, catch_up: bool) -> Due:
    config = spec.config
    return Due(spec.name, tick, config.group, catch_up=catch_up, timeout_s=config.timeout)


def tick(
    project: Project,
    *,
    started: datetime,
    say: Callable[[str], None],
    options: RunOptions | None = None,
) -> TickReport:
    """Run every agent of ``project`` due at ``started``, each in a child process.

    ``say`` prints one line for a human (in a child, for its agent; here,
    for an agent that could not be read or whose child was killed).
    ``options`` are each child's run options (tests pass a clock and an
    environment); ``scheduled``, ``tick`` and ``tick_claimer`` are set here.
    Raises :class:`~agentops.errors.ConfigError` if agentops.toml is bad, and
    :class:`~agentops.errors.StateError` if the store cannot take the claims.
    """
    base = options or RunOptions(exit_on_abandon=True)
    config = project.config
    specs, problems = project.agents()
    told = []
    for problem in problems:
        say(problem.message)
        told.append(problem.agent or "?")
    # Schedules are read in cron's zone: $TZ as the tick was started, never a
    # TZ of an env file (the agents' own), which status and check do not read.
    zone = cron_zone(os.environ if base.environ is None else base.environ)
    # The home's .env is every agent's (each child adds its agent's own): the
    # tick's store is opened in it as each run's is, so that a PGPASSWORD kept
    # there (libpq reads the process's environment) signs the claims in too.
    shared = read_env_file(project.home / ENV_FILE)
    if base.environ is None:
        os.environ.update(shared)
        environ: Mapping[str, str] = os.environ
    else:
        environ = {**base.environ, **shared}
    store = base.store or open_store(project, environ=environ)
    try:
        due = due_agents(specs, started, store=store, zone=zone)
        scheduled = [spec.name for spec in specs if spec.config.schedule is not None]
        # No agent scheduled: nothing is due, nor any claim to take over (the store is not asked).
        claims = (
            store.claim_ticks({d.name: d.tick for d in due}, scheduled=scheduled)
            if scheduled
            else None
        )
        runs, missed = _won(due, claims, specs, local=started.astimezone(zone))
        if claims is not None and missed:
            store.settle_ticks(claims.claimer, missed)
        for module in _WARM:
            with contextlib.suppress(ImportError):
                importlib.import_module(module)
        children = _Children(
            project,
            base._replace(
                scheduled=True,
                tick_claimer=None if claims is None else claims.claimer,
                zone=zone,
            ),
            parallel=config.tick.parallel,
            limits=config.groups,
            say=say,
            claims=store,
        )
        ran = children.run(runs)
    finally:
        if base.store is None:
            _close(store)  # the claims are held until here: every child has started
    return TickReport(started, tuple(due), ran, tuple(told + children.told))


def _won(
    due: Sequence[Due], claims: TickClaims | None, specs: Sequence[AgentSpec], *, local: datetime
) -> tuple[list[Due], list[str]]:
    # Each run this host won: the due agents it claimed, then the claims of
    # ticks that died before starting them, which it took over (late, once);
    # and the claims taken over whose agent's schedule fired again since
    # (``local`` is this tick, in cron's zone): missed, skipped as cron skips
    # a missed tick (an agent with catch_up is due for the latest fire).
    if claims is None:  # the store claims each tick in its run
        return list(due), []
    runs = [d for d in due if d.name in claims.ticks]
    claimed = {d.name for d in runs}
    by_name = {spec.name: spec for spec in specs}
    missed = []
    for name, at in sorted(claims.ticks.items()):
        if name in claimed:
            continue
        spec = by_name[name]
        schedule = spec.config.schedule
        fired = None if schedule is None else previous_run(schedule, local)
        if fired is not None and at < fired:
            missed.append(name)
        else:
            runs.append(_due(spec, at, catch_up=True))
    return runs, missed


def _close(store: Store) -> None:
    # Not in the Store protocol (a run's process simply ends); PostgreSQL's has one.
    close = getattr(store, "close", None)
    if callable(close):
        close()


def _forsake(store: Store) -> None:
    # In a child: its copy of the claims' connection must not keep the claims
    # alive once the tick has died (kill -9 of the tick alone): the next
    # tick takes over the agents still queued, while this child runs on.
    forsake = getattr(store, "forsake", None)
    if callable(forsake):
        forsake()


class _Children:
    """Forks a child per agent, at most ``parallel`` at once and a group's limit of its agents."""

    def __init__(
        self,
        project: Project,
        options: RunOptions,
        *,
        parallel: int,
        limits: Mapping[str, int],
        say: Callable[[str], None],
        claims: Store,
    ) -> None:
        self.project = project
        self.options = options
        self.claims = claims
        """The store holding the claims of ``options.tick_claimer`` (if any): the tick's own."""
        self.parallel = parallel
        self.limits = limits
        self.say = say
        self.told: list[str] = []
        self._running: dict[int, Due] = {}
        self._pidfds: dict[int, int] = {}
        self._told_bytes = b""
        self._told_r, self._told_w = os.pipe()
        os.set_blocking(self._told_r, False)
        self._blocked_since: dict[str, float] = {}
        """When each agent waiting found its group full here: its wait for a slot began."""
        self._store_down: StoreUnavailable | None = None
        """The store made the tick wait out a bound: no child is started against it after."""

    def run(self, queue: list[Due]) -> dict[str, int]:
        """Run every agent of ``queue``; each one's exit code."""
        ran: dict[str, int] = {}
        waiting = list(queue)
        try:
            while (waiting and self._store_down is None) or self._running:
                startable = next((d for d in waiting if self._may_start(d)), None)
                if startable is not None:
                    waiting.remove(startable)
                    self._start(startable)
                    continue
                ended = [
                    (self._running.pop(pid), status)
                    for pid, status in self._wait(self._next_expiry(waiting))
                ]
                for due, status in ended:
                    ran[due.name] = self._ended(due, status)
                self._settle([due.name for due, _ in ended])
                self._read_told()
        finally:
            os.close(self._told_w)
            self._read_told()
            os.close(self._told_r)
            self.told.extend(name for name in self._told_bytes.decode().split("\n") if name)
        if waiting and self._store_down is not None:
            # Each would wait out the same bound in turn (a tick of hundreds, for
            # hours): one line for them all. Their claims, this tick's until it
            # exits, are then free to another host's tick of this minute.
            names = [due.name for due in waiting]
            self.say(
                f"{self._store_down.message}: {len(names)} agent(s) due not started this "
                f"tick: {', '.join(names)}"
            )
            self.told.extend(names)
        # A child that ended needing a human without telling the tick said its
        # own line (a run the store gave no lease by its hard deadline ends
        # itself, saying so): it needs a human all the same.
        self.told.extend(
            name
            for name, code in ran.items()
            if code not in (ExitCode.OK, ExitCode.SKIPPED) and name not in self.told
        )
        return ran

    def _wait(self, within_s: float | None) -> list[tuple[int, int]]:
        # Only our own children, each through its pidfd: os.wait() would also
        # reap a child this process started otherwise (a caller's subprocess).
        # None ended within ``within_s``: an agent waiting for its group may
        # have waited its timeout.
        poller = select.poll()
        for pidfd in self._pidfds.values():
            poller.register(pidfd, select.POLLIN)
        timeout_ms = None
        if within_s is not None:  # looked at again a day later at most (a 30-day timeout)
            timeout_ms = max(0, math.ceil(min(within_s, _LONGEST_POLL_S) * 1000))
        ready = {fd for fd, _ in poller.poll(timeout_ms)}
        ended = []
        for pid, pidfd in list(self._pidfds.items()):
            if pidfd in ready:
                _, status = os.waitpid(pid, 0)
                os.close(self._pidfds.pop(pid))
                ended.append((pid, status))
        return ended

    def _settle(self, names: list[str]) -> None:
        # A child that ended without starting its tick (paused, its agent
        # busy, its group full, a bad configuration) skipped it: settled, so
        # that no tick takes the claim over once this one has ended. A store
        # that fails here leaves those claims to the next tick, whose runs
        # start them once (or skip them again): never a tick lost, never two.
        claimer = self.options.tick_claimer
        if claimer is not None and names:
            try:
                self.claims.settle_ticks(claimer, names)
            except StoreUnavailable as exc:  # waited out its bound: asked no more this tick
                self._store_down = exc
            except StateError:
                pass

    def _may_start(self, due: Due) -> bool:
        if self._store_down is not None or len(self._running) >= self.parallel:
            return False
        if not self._group_full(due):
            return True
        self._blocked_since.setdefault(due.name, time.monotonic())
        return self._waited_s(due) >= due.timeout_s

    def _group_full(self, due: Due) -> bool:
        # Full here: no slot is worth trying (another host may hold one too).
        limit = self.limits.get(due.group) if due.group else None
        if limit is None:  # no group, or one not configured (its run says so)
            return False
        return sum(1 for d in self._running.values() if d.group == due.group) >= limit

    def _waited_s(self, due: Due) -> float:
        # How long ``due`` has waited for its group (not for a place among ``parallel``).
        since = self._blocked_since.get(due.name)
        return 0.0 if since is None else time.monotonic() - since

    def _next_expiry(self, waiting: list[Due]) -> float | None:
        # The soonest an agent waiting for its group has waited its timeout:
        # it is started then, to try its slot once and be skipped if still
        # full (group_full), as a run that waited that long is. None while
        # every place is taken: a child must end first, whatever the groups.
        if len(self._running) >= self.parallel:
            return None
        left = [
            d.timeout_s - self._waited_s(d)
            for d in waiting
            if d.name in self._blocked_since and self._group_full(d)
        ]
        return min(left, default=None)

    def _start(self, due: Due) -> None:
        sys.stdout.flush()  # what the parent buffered is printed once, not by every child
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child ends in os._exit, which coverage cannot see
            self._child(due)
        self._running[pid] = due
        self._pidfds[pid] = os.pidfd_open(pid)  # readable once the child has ended

    def _child(self, due: Due) -> None:
        code: int = ExitCode.INTERNAL
        try:
            os.close(self._told_r)
            if self.options.store is None:  # the tick's own (a test's may be the child's too)
                _forsake(self.claims)
            options = self.options._replace(tick=due.tick, group_waited_s=self._waited_s(due))
            try:
                outcome = run_agent(self.project, due.name, options=options)
            except AgentOpsError as exc:  # the agent's name or files: before anything ran
                code = exc.exit_code
                self._tell(due, exc.message)
            else:
                code = outcome.exit_code
                if not outcome.quiet:
                    self._tell(due, f"{outcome.message} (log: {outcome.log_path})")
        except BaseException as exc:  # noqa: BLE001 - one line, never a traceback into cron's mail
            self._tell(due, f"{due.name}: internal error: {type(exc).__name__}: {exc} (a bug)")
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    def _tell(self, due: Due, line: str) -> None:
        self.say(line)
        os.write(self._told_w, f"{due.name}\n".encode())

    def _ended(self, due: Due, status: int) -> int:
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        if status != 0 and self._deadline_ended(due):
            # Its watcher said its line: ended by its watchdog, or killed by
            # its keeper once frozen past its deadline (which said so first).
            self.told.append(due.name)
        elif code < 0:  # it could not say so itself
            self.say(
                f"{due.name}: run killed by {signal.Signals(-code).name} "
                f"(log: {self.project.log_path(due.name)})"
            )
            self.told.append(due.name)
        return code

    def _deadline_ended(self, due: Due) -> bool:
        # The next run may be on another host: the store keeps the marker for
        # it (in a container, the PID-1 supervisor hands it over, once).
        ended = publish_ended(
            self.project,
            [due.name],
            store=self.options.store,
            environ=self.options.environ,
            publish=not supervised(),
        )
        for problem in ended.values():
            if problem is not None:
                self.say(problem)
        return due.name in ended

    def _read_told(self) -> None:
        # Drained as children end, so that a pipe never fills and blocks one.
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(self._told_r, 65536):
                self._told_bytes += chunk
