"""One invocation of agentops for one agent: from its log opened to its trace left.

Runs (:mod:`agentops.run.runner`) and operator edits (:mod:`agentops.ops.admin`)
share it. An :class:`Invocation`:

- assembles its services (:class:`~agentops.run.services.RunServices`);
- logs what agent code prints, when not on a terminal (:mod:`.capture`);
- holds the agent's lease (:meth:`Invocation.locked`), with its state loaded
  and what a dead run left recovered and committed before anything else
  runs; the hard deadline armed (:mod:`.deadline`); threads the agent leaves
  running keep the lease until the process exits;
- turns every expected error into an :class:`~agentops.model.outcome.Outcome`;
- leaves a trace of a run's attempt in the store, then notifies people (and
  the agent's check, which also hears when the run starts: :meth:`Invocation.started`).
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import threading
import time
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, NoReturn

from agentops._infra.files import Unreadable, check_regular
from agentops._infra.fs import describe
from agentops._infra.stderr import real_stderr
from agentops._infra.timestamps import iso
from agentops.errors import (
    AgentOpsError,
    ConfigError,
    RateLimited,
    Skipped,
    StateError,
    UnknownAgent,
)
from agentops.guards import breaker
from agentops.guards.interrupts import RunInterrupts, StopRun, grace_s
from agentops.model.journal import gc_paused
from agentops.model.outcome import Outcome
from agentops.model.status import RunStatus
from agentops.run.capture import OutputCapture
from agentops.run.commit import commit
from agentops.run.deadline import (
    MARKER_SUFFIX,
    HardDeadline,
    StartWatch,
    hard_deadline_s,
    lease_ttl_s,
    read_marker,
)
from agentops.run.markers import publish_ended
from agentops.run.pid1 import supervised
from agentops.run.processes import RunProcesses
from agentops.run.recovery import marker_of, recorded, recover_dead_run
from agentops.run.run import Run
from agentops.run.services import RunServices
from agentops.store import Attempt

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from datetime import datetime
    from pathlib import Path

    from agentops._infra.fs import MovedAside
    from agentops._infra.log import EventLogger
    from agentops.model.state import AgentState
    from agentops.notify.notifier import Notifier
    from agentops.project.home import AgentSpec, Project
    from agentops.run.options import RunOptions
    from agentops.store.base import Marker

__all__ = ["Invocation"]


class Invocation:
    """The shared steps of everything that changes one agent's state."""

    def __init__(self, project: Project, name: str, options: RunOptions) -> None:
        """Check the name (before any path is built from it) and set up the services."""
        self._started = time.monotonic()
        """When the invocation started: its hard deadline counts from here."""
        self.services = RunServices.assemble(project, name, options)
        self._watch: StartWatch | None = None
        self.threads_left = 0
        """Threads the agent left running: they hold the lease until the process exits."""
        self._left: list[threading.Thread] = []
        self._deadline: HardDeadline | None = None
        self._processes: RunProcesses | None = None
        self._opened_by_recovery: str | None = None
        self._dead_run: Outcome | None = None
        """A dead run this invocation recovered and recorded: people are told of it too."""
        self._is_run = True
        self._run: Run | None = None
        """The run under the lease, once it is held: its agent.toml and state tell the notifier."""
        self._notifier: Notifier | None = None

    @property
    def name(self) -> str:
        """The agent's name."""
        return self.services.name

    @property
    def log(self) -> EventLogger:
        """The invocation's logger."""
        return self.services.log

    # -- the invocation, start to end --------------------------------------------------

    def run(self, body: Callable[[], Outcome], *, attempt: bool = True) -> Outcome:
        """Call ``body``, turning an error that stopped it early into the outcome.

        With ``attempt`` (a run, not an operator's edit) the outcome is
        recorded as the agent's last attempt, and people are notified.
        """
        self._is_run = attempt
        services = self.services
        # A log that cannot be written is said once the outcome is known: alone, or
        # in the outcome's own line (cron gets one line, never two).
        services.sink.defer_problem = True
        outcome: Outcome | None = None
        capture = None
        if services.options.console is None:  # not on a terminal: what the run prints is logged
            capture = OutputCapture(
                services.log,
                before_line=lambda: services.redactor.learn(os.environ),
                fds=services.options.exit_on_abandon,  # only a process of its own
            )
            capture.start()
        try:
            outcome = body()._replace(threads_left=self.threads_left)
        except UnknownAgent:
            raise
        except AgentOpsError as exc:
            outcome = self.not_started(exc)
        except Exception:
            services.log.exception("run.crashed")
            raise
        finally:
            try:
                if self._watch is not None:  # a run that never got its lease
                    self._watch.stop()
                if outcome is not None and attempt:
                    self._leave_trace(outcome)  # the store may fail here too
                    self._notify(outcome)
                self._say_moved_aside()
            finally:  # whatever failed above, the caller gets its streams back
                if capture is not None:
                    # Threads still running may print until the process exits: it
                    # goes to the log, never to cron's mail (the capture stays).
                    if self.threads_left:
                        capture.keep(self._left)
                    else:
                        capture.stop()
                services.close()
                services.sink.defer_problem = False  # what threads left running log after this
        return self._said_with_the_log(outcome)

    def _said_with_the_log(self, outcome: Outcome) -> Outcome:
        # A log that could not be written: said alone after a quiet outcome,
        # else in the outcome's own line.
        sink = self.services.sink
        if sink.problem is None:
            return outcome
        if outcome.quiet:
            sink.say_problem()
            return outcome
        return outcome._replace(log_unwritable=sink.problem)

    def _say_moved_aside(self, moved: MovedAside | None = None) -> None:
        # Files the store (or this invocation) could not read and moved out of
        # the way to rebuild them: the run went on, the log says what and where.
        found = getattr(self.services.store, "moved_aside", None)  # the file store's
        for each in [*(found or ()), *([] if moved is None else [moved])]:
            self.log.warning(
                "file.moved_aside", path=str(each.path), moved_to=str(each.moved_to), why=each.why
            )
        if found:
            found.clear()

    def _leave_trace(self, outcome: Outcome) -> None:
        # Every attempt leaves one, also those that never got the lease, so
        # health can tell "cron stopped calling us" from "runs are skipped".
        services = self.services
        if services.dry_run:
            return
        attempt = Attempt.of(outcome, at=services.clock(), scheduled=services.options.scheduled)
        try:
            services.store.record_attempt(self.name, attempt)
        except (StateError, ConfigError) as exc:  # a store that cannot be opened, too
            services.log.warning("attempt.not_recorded", error=exc.message)

    def started(self, *, params: dict[str, Any], tick: datetime | None = None) -> None:
        """Log ``run.started``, and tell the channels that hear runs (the agent's ping).

        ``params`` are the run's, as JSON; ``tick``, the schedule's tick it
        claimed (started by cron: a catch-up's is earlier than its start). A
        ping waits no more than its short timeout, and never changes the run.
        """
        self.log.info("run.started", params=params, **({} if tick is None else {"tick": iso(tick)}))
        try:
            notifier = self._notifier_for(None)
            if notifier is not None and self._tells_its_own():
                notifier.started(self.name, self.services.run_id)
        except Exception as exc:  # noqa: BLE001 - never the run's outcome
            self.log.warning("notify.failed", kind="start", error=f"{type(exc).__name__}: {exc}")

    def _notify(self, outcome: Outcome) -> None:
        # After everything is saved: a webhook or a ping never changes what happened.
        try:
            notifier = self._notifier_for(outcome)
            if notifier is None:
                return
            if self._dead_run is not None:  # it could not say so itself
                notifier.after_run(self._dead_run)
            if self._tells_its_own():
                notifier.after_run(outcome, state=None if self._run is None else self._run.state)
        except Exception as exc:  # noqa: BLE001 - never the run's outcome
            self.log.warning("notify.failed", error=f"{type(exc).__name__}: {exc}")

    def _tells_its_own(self) -> bool:
        # A run started by hand tells nobody when [notify] manual_runs is false
        # (a dead run it recovered still is told: cron most likely started that one).
        services = self.services
        return services.options.scheduled or services.project.config.notify.manual_runs

    def _notifier_for(self, outcome: Outcome | None) -> Notifier | None:
        # Built once, and only when someone listens: webhooks, or the agent's ping.
        services = self.services
        if services.dry_run:
            return None
        if self._notifier is None:
            spec = self._run.spec if self._run is not None else self._spec_if_readable(outcome)
            agent = None if spec is None else spec.config
            if not (services.project.config.notify.webhooks or (agent and agent.notify.ping)):
                return None
            self._notifier = services.notifier(agent)
        return self._notifier

    def _spec_if_readable(self, outcome: Outcome | None) -> AgentSpec | None:
        # A run stopped before its lease: its agent.toml says where its check is,
        # if it can be read (a skip is no run: its check hears nothing of it).
        if outcome is None or outcome.status == RunStatus.SKIPPED:
            return None
        try:
            return self.services.project.agent(self.name)
        except AgentOpsError:
            return None

    # -- the lease ---------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, spec: AgentSpec, *, kind: str = "run") -> Iterator[Run]:
        """Hold the agent's lease: the run, its state loaded and any crashed run recovered.

        ``kind`` says what the invocation is (a ``run``, an ``approve``...), for
        its deadline marker. The timeout clock starts here. Threads the agent leaves running keep
        the lease held until the process exits, so no other run overlaps them.
        """
        services = self.services
        self.watch_start(spec)
        before = set(threading.enumerate())
        abandon = self._abandon if services.options.exit_on_abandon else None
        with (
            services.store.lease(
                self.name, run_id=services.run_id, ttl_s=lease_ttl_s(spec.config.timeout)
            ) as lease,
            RunInterrupts(
                spec.config.timeout, on_abandon=abandon, on_stop=self._stopping
            ) as interrupts,
        ):
            try:
                run = Run(services, spec, services.store.load(self.name), interrupts, lease)
                self._run = run
                self._recover(run)
                with self._hard_deadline(spec, kind), self._own_processes(spec):
                    yield run
            finally:
                left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
                if left:
                    lease.keep_until_exit()
                    self.threads_left = len(left)
                    self._left = left
                    self.log.warning("run.threads_left", threads=[t.name for t in left][:10])

    def watch_start(self, spec: AgentSpec) -> None:
        """Arm the hard deadline, counted from the start, until the lease is held.

        Call it before the first use of the store: a store that keeps the
        invocation waiting longer ends it (74) with one line. Only a process of
        its own (the CLI's) is ended.
        """
        if self.services.options.exit_on_abandon and self._watch is None:
            seconds = hard_deadline_s(spec.config.timeout)
            self._watch = StartWatch(
                seconds - (time.monotonic() - self._started), lambda: self._stalled(seconds)
            )

    @contextlib.contextmanager
    def deadline_paused(self, spec: AgentSpec) -> Iterator[None]:
        """A wait by policy (for a slot of the agent's group), not a stall: uncounted.

        The watch over the start stops while the block lasts (the wait has its
        own bound), and the hard deadline counts again from its end, so a run
        that waited keeps all its time.
        """
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        try:
            yield
        finally:
            self._started = time.monotonic()
            self.watch_start(spec)

    def _stalled(self, seconds: float) -> NoReturn:
        # In the watch's thread, while the main one waits on the store: say it, and end.
        services = self.services
        message = (
            f"{self.name}: the store gave the run no lease and state within its hard "
            f"deadline ({seconds:g} s from its start); nothing was run"
        )
        print(
            f"agentops: {services.redactor.value(message)} (log: {services.sink.path})",
            file=real_stderr(),
        )
        with contextlib.suppress(Exception):
            self.log.error("run.aborted", error=message, exit_code=StateError.exit_code)
            services.close()
        os._exit(StateError.exit_code)

    def _hard_deadline(
        self, spec: AgentSpec, kind: str
    ) -> contextlib.AbstractContextManager[object]:
        # Only a process of its own may be ended: the CLI's, not a library caller's.
        services = self.services
        if not services.options.exit_on_abandon:
            return nullcontext()
        if self._watch is not None:  # the watchdog takes over, with what is left
            self._watch.stop()
        path = self._marker_path()
        try:
            check_regular(path)
        except Unreadable as exc:  # the marker is ours to rebuild; a link is simply removed
            if exc.errno != errno.ELOOP:
                self._say_moved_aside(services.fs.set_aside(path, why=describe(exc)))
        seconds = hard_deadline_s(spec.config.timeout)
        left = seconds - (time.monotonic() - self._started)
        self._deadline = HardDeadline(
            services.fs,
            path,
            run_id=services.run_id,
            started=services.clock(),
            seconds=max(left, 0.01),
            kind=kind,
            announce=self._deadline_line(seconds),
        )
        return self._deadline

    def _own_processes(self, spec: AgentSpec) -> contextlib.AbstractContextManager[object]:
        # The processes agent code starts end with the run: only a process of
        # its own (the CLI's) tracks them, as only it has a hard deadline.
        services = self.services
        if not services.options.exit_on_abandon:
            return nullcontext()
        self._processes = RunProcesses(
            name=self.name,
            home=services.project.home,
            run_id=services.run_id,
            grace_s=grace_s(spec.config.timeout),
            # The hard deadline counts from the start of agentops run: what is left of it.
            deadline_s=hard_deadline_s(spec.config.timeout) - (time.monotonic() - self._started),
            log=services.log,
            keeper_log=services.own_log,
            environ=services.environ,
            # A PID-1 supervisor publishes the marker itself, once every process is gone.
            after_death=None if services.dry_run or supervised() else self._hand_marker_over,
            overdue=None if self._deadline is None else self._deadline.overdue,
        )
        return self._processes

    def _hand_marker_over(self, log: EventLogger) -> None:
        # In the keeper, once this process died without ending its run: if its
        # hard deadline ended it, the next run may be on another host, which
        # never sees the local marker, so the store keeps a copy (a kill -9's
        # marker says nothing and opens no store). The local one stays: the
        # watcher may still be reading it, and this host's next run finds the
        # two to be one run.
        services = self.services
        try:
            ended = publish_ended(services.project, [self.name], environ=services.environ)
        except Exception as exc:  # noqa: BLE001 - the keeper's only voice is the log
            ended = {self.name: f"{self.name}: cannot publish: {type(exc).__name__}: {exc}"}
        for problem in ended.values():
            if problem is not None:
                log.warning("deadline.marker_unpublished", error=problem)

    def _stopping(self, stop: StopRun, signum: int) -> None:
        # In the signal handler: the run's processes get the run's signal now.
        if self._processes is not None:
            self._processes.stopping(stop.reason, signum)

    def _deadline_line(self, seconds: float) -> tuple[int, str] | None:
        # What the watcher says if the watchdog ends this process: the one line
        # cron mails, on the stream the operator sees (not the captured one).
        try:
            fd = real_stderr().fileno()
        except (OSError, ValueError):  # no stderr to say it on
            return None
        message = f"{self.name}: the run passed its hard deadline ({seconds:g}s) and was ended"
        line = f"agentops: {self.services.redactor.value(message)} (log: {self.services.sink.path})"
        return fd, line

    def _marker_path(self) -> Path:
        # A dry run never consumes a real run's marker, so it keeps its own.
        suffix = f".dry-run{MARKER_SUFFIX}" if self.services.dry_run else MARKER_SUFFIX
        return self.services.project.state_dir / f"{self.name}{suffix}"

    def _recover(self, run: Run) -> None:
        # What a dead run left (its journal, its deadline marker: published to
        # the store by whoever saw it end, or the local file) is folded in and
        # committed before anything else runs. A dry run reads no marker.
        services = self.services
        local = None if services.dry_run else read_marker(services.fs, self._marker_path())
        with gc_paused():
            records, published = services.store.remains(self.name)
            if services.dry_run:
                published = ()
            markers = [*published, *([] if local is None else [local])]
            if records is None and not markers:
                return
            dead = recover_dead_run(
                run.state,
                run.spec,
                records=records,
                marker=marker_of(run.state, records, markers),
                ledger=run.ledger,
                log=self.log,
                log_path=services.log_path,
            )
        if dead is not None and not services.dry_run:
            message = f"{self.name}: run {dead.run_id} {dead.status}: {dead.message}"
            self._dead_run = self.outcome(dead.status, dead.exit_code, message)._replace(
                run_id=dead.run_id
            )
        if dead is not None and dead.circuit == "opened":  # this run says so
            self._opened_by_recovery = self.circuit_opened(run.state, dead.message)
        # A marker is dropped with the state that records its run (or knows it
        # recorded already: one found again is no second death); one of another
        # run, not recorded yet, stays for the next run to record.
        done = [m for m in markers if not m.ended or recorded(run.state, m.run_id)]
        commit(
            run,
            drop_journal=records is not None,
            drop_markers=[m.run_id for m in published if m in done],
        )
        if local is not None and local in done:
            try:
                services.fs.unlink(self._marker_path())
            except OSError as exc:  # read again next time, and recorded only once
                self.log.warning("deadline.marker_left", error=describe(exc))

    def _abandon(self, stop: StopRun) -> NoReturn:
        # Agent code swallowed every stop: end the process. Its journal stays,
        # and the next run recovers it as a crashed run.
        services = self.services
        message = f"{self.name}: run abandoned: {stop.reason} and the agent code would not stop"
        self.log.error("run.abandoned", reason=stop.reason, signal=stop.signal_name)
        if self._deadline is not None and self._run is not None:  # recorded as a timeout
            grace = grace_s(self._run.spec.config.timeout)
            self._publish(self._deadline.abandoned(stop.reason), within=grace)
        if self._processes is not None:
            self._processes.kill_now("abandoned")
        services.close()
        said = self.outcome(RunStatus.TIMEOUT, 1, message)._replace(
            log_unwritable=services.sink.problem
        )
        print(f"agentops: {said.summary}", file=real_stderr())
        os._exit(1)

    def _publish(self, marker: Marker, *, within: float) -> None:
        # The next run may start on another host: the store keeps the marker for
        # it. In a thread, waited for ``within`` at most: this is a signal
        # handler, and the code it interrupted may be using the store's connection.
        store, name = self.services.store, self.name

        def publish() -> None:
            with contextlib.suppress(Exception):  # the local marker still tells this host
                store.publish_marker(name, marker)

        thread = threading.Thread(target=publish, name="agentops-marker", daemon=True)
        thread.start()
        thread.join(within)

    # -- how it ended ------------------------------------------------------------------

    def circuit_opened(self, state: AgentState, message: str) -> str:
        """Log that the circuit opened; the loud line that says so."""
        return breaker.opened(state, message, self.log)

    def not_started(self, exc: AgentOpsError) -> Outcome:
        """The outcome of an invocation stopped before its work, logged as skipped or aborted.

        An operator's command (not a run) logs ``command.refused`` instead.
        """
        reason = getattr(exc, "reason", None)
        if self._opened_by_recovery is not None:  # said once, by this invocation
            return self.outcome(
                exc.status, exc.exit_code, self._opened_by_recovery, reason=reason, circuit="opened"
            )
        if not self._is_run:
            # An operator's command starts no run, so it ends none either: a
            # refusal logged as run.aborted would count as a run in reports.
            level = self.log.info if isinstance(exc, Skipped) else self.log.error
            why = {} if reason is None else {"reason": reason}  # a skip's reason, if it has one
            level("command.refused", error=exc.message, exit_code=exc.exit_code, **why)
        elif isinstance(exc, RateLimited):
            wait = None if math.isinf(exc.retry_after_s) else round(exc.retry_after_s)
            self.log.info("run.skipped", reason=exc.reason, retry_after_s=wait)
        elif isinstance(exc, Skipped):
            self.log.info("run.skipped", reason=exc.reason)
        else:
            self.log.error("run.aborted", error=exc.message, exit_code=exc.exit_code)
        return self.outcome(exc.status, exc.exit_code, exc.message, reason=reason)

    def outcome(self, status: RunStatus, exit_code: int, message: str, **facts: Any) -> Outcome:
        """An :class:`Outcome` of this invocation, its message redacted: cron mails it."""
        services = self.services
        return Outcome(
            agent=self.name,
            run_id=services.run_id,
            status=status,
            exit_code=exit_code,
            message=services.redactor.value(message),
            log_path=services.log_path,
            **facts,
        )
