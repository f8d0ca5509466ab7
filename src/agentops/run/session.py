"""One invocation of agentops for one agent: its run id, log, store and options.

Runs (:mod:`agentops.run.runner`) and operator edits (:mod:`agentops.ops.admin`) share
this machinery: take the agent's lease, load its state and recover the
journal of a run that died, build the guarded ``ctx``, commit the state (which
drops the journal it now holds), turn every expected error into an
:class:`~agentops.model.outcome.Outcome`, and leave a trace of the attempt.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from contextlib import nullcontext
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, NoReturn

import pydantic_core

from agentops._infra.clock import utcnow
from agentops._infra.fs import FileSystem, describe
from agentops._infra.log import RunLogSink, make_logger
from agentops._infra.redact import Redactor
from agentops._infra.stderr import real_stderr
from agentops._infra.timestamps import iso_second
from agentops.context import Context
from agentops.errors import (
    AgentOpsError,
    ConfigError,
    RateLimited,
    Skipped,
    StateError,
    UnknownAgent,
)
from agentops.guards import breaker, policies
from agentops.guards.facade import RunGuards
from agentops.guards.interrupts import RunInterrupts, StopRun
from agentops.model.journal import Begin, gc_paused
from agentops.model.outcome import Outcome
from agentops.model.state import LedgerSummary
from agentops.project.home import check_agent_name
from agentops.run.capture import OutputCapture
from agentops.run.deadline import (
    HardDeadline,
    StartWatch,
    hard_deadline_s,
    lease_ttl_s,
    read_marker,
)
from agentops.run.gatekeeper import Gatekeeper
from agentops.run.loader import load_agent
from agentops.run.recovery import recover_dead_run
from agentops.store import Attempt, open_store

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from datetime import datetime
    from pathlib import Path
    from typing import TextIO

    import httpx
    from pydantic import BaseModel

    from agentops._infra.clock import Clock
    from agentops.llm.client import LLMClient
    from agentops.memory.run import RunMemory
    from agentops.model.ledger import Ledger
    from agentops.model.state import AgentState
    from agentops.model.status import RunStatus
    from agentops.notify.notifier import Notifier
    from agentops.project.home import AgentSpec, Project
    from agentops.store import JournalWriter, Lease, ReplyStore, Store

__all__ = ["RunOptions", "Session", "new_run_id"]


class RunOptions(NamedTuple):
    """What a caller may vary about a run: mostly for tests, which drive time and faults."""

    dry_run: bool = False
    clock: Clock = utcnow
    sleep: Callable[[float], None] = time.sleep
    environ: Mapping[str, str] | None = None
    console: TextIO | None = None
    http_transport: httpx.BaseTransport | None = None
    exit_on_abandon: bool = False
    """Exit the process when agent code will not stop (the CLI sets this)."""
    fs: FileSystem | None = None
    """The file-system seam of the file store (tests make its steps fail)."""
    store: Store | None = None
    """The store to use instead of the one the project is configured for."""
    scheduled: bool = False
    """Started by cron (``--scheduled``): claim the schedule's tick first."""


def new_run_id(now: datetime) -> str:
    """A run id that sorts by time and is unique enough: ``20261122T031000Z-3fa2c1``."""
    return f"{now:%Y%m%dT%H%M%SZ}-{os.urandom(3).hex()}"


class Session:
    """The shared steps of everything that changes one agent's state."""

    def __init__(self, project: Project, name: str, options: RunOptions) -> None:
        """Check the name (before any path is built from it) and set up the log."""
        check_agent_name(name)
        self.project = project
        self.name = name
        self.options = options
        self.clock = options.clock
        self.run_id = new_run_id(self.clock())
        self.environ = os.environ if options.environ is None else options.environ
        self.redactor = Redactor(self.environ)
        # A model's key is a secret whatever its variable is called.
        keys = (self.environ.get(p.api_key_env or "") for p in project.config.providers.values())
        self.redactor.add(form for key in keys if key for form in (key, key.strip()))
        logs = project.config.logs
        self.sink = RunLogSink(
            project.log_path(name),
            console=options.console,
            fs=options.fs,
            max_size=logs.max_size,
            keep=logs.keep,
        )
        self.log = make_logger(
            self.sink, clock=self.clock, redactor=self.redactor, agent=name, run_id=self.run_id
        )
        if options.dry_run:  # every line of a dry run says so
            self.log = self.log.bind(dry_run=True)
        self.store = options.store or open_store(project, environ=self.environ, fs=options.fs)
        self.fs = options.fs or FileSystem()
        self.lease: Lease | None = None
        self._started = time.monotonic()
        """When the invocation started: its hard deadline counts from here."""
        self._watch: StartWatch | None = None
        self._deadline: HardDeadline | None = None
        self._opened_by_recovery: str | None = None
        self._dead_run: Outcome | None = None
        """A dead run this invocation recovered and recorded: people are told of it too."""
        self.threads_left = 0
        self._ledger: Ledger | None = None
        self._is_run = True

    def run(self, body: Callable[[], Outcome], *, attempt: bool = True) -> Outcome:
        """Call ``body``, turning an error that stopped it early into the outcome.

        With ``attempt`` (a run, not an operator's edit) the outcome is
        recorded as the agent's last attempt.
        """
        self._is_run = attempt
        outcome: Outcome | None = None
        capture = None
        if self.options.console is None:  # not on a terminal: what the run prints is logged
            capture = OutputCapture(
                self.log,
                before_line=lambda: self.redactor.learn(os.environ),
                fds=self.options.exit_on_abandon,  # only a process of its own
            )
            capture.start()
        try:
            outcome = body()._replace(threads_left=self.threads_left)
        except UnknownAgent:
            raise
        except AgentOpsError as exc:
            outcome = self.not_started(exc)
        except Exception:
            self.log.exception("run.crashed")
            raise
        finally:
            if self._watch is not None:  # a run that never got its lease
                self._watch.stop()
            if outcome is not None and attempt:
                self._leave_trace(outcome)
                self._notify(outcome)
            if capture is not None:
                # Threads still running may print until the process exits: it
                # goes to the log, never to cron's mail (the capture stays).
                if self.threads_left:
                    capture.keep()
                else:
                    capture.stop()
            self.sink.close()
        return outcome

    def _notify(self, outcome: Outcome) -> None:
        # After everything is saved: a webhook never changes what happened.
        try:
            config = self.project.config.notify
            if self.options.dry_run or not config.webhooks:
                return
            notifier = self.notifier()
            if self._dead_run is not None:  # it could not say so itself
                notifier.after_run(self._dead_run)
            notifier.after_run(outcome)
        except Exception as exc:  # noqa: BLE001 - never the run's outcome
            self.log.warning("notify.failed", error=f"{type(exc).__name__}: {exc}")

    def notifier(self) -> Notifier:
        """The project's notifications, sent and remembered for this agent."""
        from agentops.notify.notifier import Notifier  # noqa: PLC0415 - only projects that notify

        return Notifier(
            self.project.config.notify,
            self.store,
            clock=self.clock,
            log=self.log,
            redactor=self.redactor,
            transport=self.options.http_transport,
        )

    def _leave_trace(self, outcome: Outcome) -> None:
        # Every attempt leaves one, also those that never got the lease, so
        # health can tell "cron stopped calling us" from "runs are skipped".
        if self.options.dry_run:
            return
        attempt = Attempt(
            at=self.clock(),
            run_id=self.run_id,
            status=outcome.status,
            exit_code=outcome.exit_code,
            reason=outcome.reason,
            scheduled=self.options.scheduled,
        )
        try:
            self.store.record_attempt(self.name, attempt)
        except StateError as exc:
            self.log.warning("attempt.not_recorded", error=exc.message)

    @contextlib.contextmanager
    def locked(
        self, spec: AgentSpec, *, kind: str = "run"
    ) -> Iterator[tuple[AgentState, RunInterrupts]]:
        """Hold the agent's lease with its state loaded and any crashed run recovered.

        ``kind`` says what the invocation is (a ``run``, an ``approve``...), for
        its deadline marker. The timeout clock starts here. Threads the agent leaves running keep
        the lease held until the process exits, so no other run overlaps them.
        """
        self.watch_start(spec)
        before = set(threading.enumerate())
        abandon = self._abandon if self.options.exit_on_abandon else None
        with (
            self.store.lease(
                self.name, run_id=self.run_id, ttl_s=lease_ttl_s(spec.config.timeout)
            ) as lease,
            RunInterrupts(spec.config.timeout, on_abandon=abandon) as interrupts,
        ):
            self.lease = lease
            try:
                state = self.store.load(self.name)
                self._recover(state, spec)
                with self._hard_deadline(spec, kind):
                    yield state, interrupts
            finally:
                left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
                if left:
                    lease.keep_until_exit()
                    self.threads_left = len(left)
                    self.log.warning("run.threads_left", threads=[t.name for t in left][:10])

    def watch_start(self, spec: AgentSpec) -> None:
        """Arm the hard deadline, counted from the start, until the lease is held.

        Call it before the first use of the store: a store that keeps the
        invocation waiting longer ends it (74) with one line. Only a process of
        its own (the CLI's) is ended.
        """
        if self.options.exit_on_abandon and self._watch is None:
            seconds = hard_deadline_s(spec.config.timeout)
            self._watch = StartWatch(
                seconds - (time.monotonic() - self._started), lambda: self._stalled(seconds)
            )

    def _stalled(self, seconds: float) -> NoReturn:
        # In the watch's thread, while the main one waits on the store: say it, and end.
        message = (
            f"{self.name}: the store gave the run no lease and state within its hard "
            f"deadline ({seconds:g} s from its start); nothing was run"
        )
        print(
            f"agentops: {self.redactor.value(message)} (log: {self.sink.path})", file=real_stderr()
        )
        with contextlib.suppress(Exception):
            self.log.error("run.aborted", error=message, exit_code=StateError.exit_code)
            self.sink.close()
        os._exit(StateError.exit_code)

    def _hard_deadline(
        self, spec: AgentSpec, kind: str
    ) -> contextlib.AbstractContextManager[object]:
        # Only a process of its own may be ended: the CLI's, not a library caller's.
        if not self.options.exit_on_abandon:
            return nullcontext()
        if self._watch is not None:  # the watchdog takes over, with what is left
            self._watch.stop()
        left = hard_deadline_s(spec.config.timeout) - (time.monotonic() - self._started)
        self._deadline = HardDeadline(
            self.fs,
            self._marker_path(),
            run_id=self.run_id,
            started=self.clock(),
            seconds=max(left, 0.01),
            kind=kind,
        )
        return self._deadline

    def _marker_path(self) -> Path:
        # A dry run never consumes a real run's marker, so it keeps its own.
        suffix = ".dry-run.deadline" if self.options.dry_run else ".deadline"
        return self.project.state_dir / f"{self.name}{suffix}"

    def ledger(self) -> Ledger:
        """The agent's ledger, loaded on first use: a run without actions never reads it."""
        if self._ledger is None:
            self._ledger = self.store.load_ledger(self.name)
        return self._ledger

    def _recover(self, state: AgentState, spec: AgentSpec) -> None:
        # What a dead run left (its journal, its deadline marker) is folded in
        # and committed before anything else runs.
        marker = None if self.options.dry_run else read_marker(self.fs, self._marker_path())
        with gc_paused():
            records = self.store.pending(self.name)
            if records is None and marker is None:
                return
            before = state.last_run.run_id if state.last_run else None
            opened = recover_dead_run(
                state, spec, records=records, marker=marker, ledger=self.ledger, log=self.log
            )
        dead = state.last_run
        if dead is not None and dead.run_id != before and not self.options.dry_run:
            message = f"{self.name}: run {dead.run_id} {dead.status}: {dead.error}"
            self._dead_run = self.outcome(dead.status, 1, message)._replace(run_id=dead.run_id)
        if opened is not None:  # a dead run's failure opened the circuit: this run says so
            self._opened_by_recovery = self.circuit_opened(state, opened)
        self._commit(state, spec, drop_journal=records is not None)
        if marker is not None:
            try:
                self.fs.unlink(self._marker_path())
            except OSError as exc:  # read again next time, and recorded only once
                self.log.warning("deadline.marker_left", error=describe(exc))

    def _abandon(self, stop: StopRun) -> NoReturn:
        # Agent code swallowed every stop: end the process. Its journal stays,
        # and the next run recovers it as a crashed run.
        message = f"{self.name}: run abandoned: {stop.reason} and the agent code would not stop"
        self.log.error("run.abandoned", reason=stop.reason, signal=stop.signal_name)
        if self._deadline is not None:  # the next run records it as a timeout
            self._deadline.abandoned(stop.reason)
        self.sink.close()
        print(
            f"agentops: {self.redactor.value(message)} (log: {self.sink.path})", file=real_stderr()
        )
        os._exit(1)

    def load_code(self, spec: AgentSpec, interrupts: RunInterrupts) -> Gatekeeper:
        """Import the agent's code, under the timeout; return its gatekeeper.

        Environment variables the agent sets while importing (``load_dotenv()``)
        are learnt as secrets too.
        """
        try:
            with interrupts.armed():
                code = load_agent(spec)
        except StopRun as stop:
            raise stop.error(self.name, "importing agent.py", spec.config.timeout) from None
        self.redactor.learn(os.environ)
        return Gatekeeper(
            spec,
            code,
            log=self.log,
            interrupts=interrupts,
            sleep=self.options.sleep,
        )

    def journal(self, started: datetime, kind: Literal["run", "approve", "edit"]) -> JournalWriter:
        """Start the journal of this invocation.

        A dry run saves nothing but the money it really spent: its journal
        commits those records at once and drops the rest.
        """
        assert self.lease is not None  # noqa: S101 - only called under the lease
        if self.options.dry_run:
            from agentops.run.dryrun import DryRunJournal  # noqa: PLC0415 - dry runs only

            return DryRunJournal(self.store, self.lease, self.name, self.run_id)
        journal = self.store.journal(self.lease, self.run_id)
        begin = Begin.model_construct(run_id=self.run_id, at=started, agent=self.name, kind=kind)
        try:
            journal.append(begin)
        except StateError:
            journal.close()
            raise
        return journal

    def context(
        self,
        spec: AgentSpec,
        state: AgentState,
        interrupts: RunInterrupts,
        *,
        started: datetime,
        journal: JournalWriter | None,
        params: BaseModel | None = None,
        data: dict[str, Any] | None = None,
    ) -> tuple[Context, RunGuards]:
        """The ``ctx`` handed to agent code, and the guards behind it.

        ``ctx.state`` is ``data``, or a copy of the state's: never the state's own
        dict, which keeps only what a successful run hands back.
        """
        guards = RunGuards(
            agent=self.name,
            limits=spec.config.limits,
            state=state,
            ledger=self.ledger,
            journal=journal,
            interrupts=interrupts,
            log=self.log,
            redactor=self.redactor,
            clock=self.clock,
            sleep=self.options.sleep,
            permissions=spec.config.permissions,
            run_id=self.run_id,
            dry_run=self.options.dry_run,
            lease=self.lease,
        )
        ctx = Context(
            agent=self.name,
            run_id=self.run_id,
            now=started,
            home=self.project.home,
            state=pydantic_core.from_json(pydantic_core.to_json(state.data))
            if data is None
            else data,
            log=self.log,
            dry_run=self.options.dry_run,
            params=params,
            guards=guards,
            http_transport=self.options.http_transport,
            llm=lambda ctx: self._llm_client(spec, state, ctx, guards),
            memory=lambda: self._memory(spec, state, guards),
        )
        return ctx, guards

    def check_models(self, spec: AgentSpec) -> None:
        """Refuse to start (78) an agent whose models cannot be called as configured.

        An unknown model, a key that is not set, a model without prices while
        a USD cap is to be kept: found before anything is spent.
        """
        if not (spec.config.llm.chain() or spec.config.llm.tiers):
            return  # calls no model: nothing to check, nothing to import
        from agentops.llm.routes import problems  # noqa: PLC0415 - small, but only [llm] needs it

        found = problems(spec.config, self.project.config, self.environ)
        if found:
            more = (
                f" (and {len(found) - 1} more: agentops check lists them)" if len(found) > 1 else ""
            )
            raise ConfigError(f"{spec.directory / 'agent.toml'}: {found[0]}{more}", agent=self.name)

    def _llm_client(
        self, spec: AgentSpec, state: AgentState, ctx: Context, guards: RunGuards
    ) -> LLMClient:
        from agentops.llm.client import LLMClient  # noqa: PLC0415 - only agents that call models
        from agentops.llm.routes import route  # noqa: PLC0415

        config = spec.config.llm
        cache: ReplyStore | None = None
        if config.cache:  # zero, like none, keeps nothing
            # In the store when it keeps one (shared by hosts), else a file of this host's.
            cache = self.store.reply_cache(
                self.name, ttl_s=config.cache, max_entries=config.cache_entries
            )
            if cache is None:
                from agentops.llm.cache import ReplyCache  # noqa: PLC0415

                cache = ReplyCache(
                    self.fs,
                    self.project.state_dir / f"{self.name}.llm-cache.sqlite",
                    ttl_s=config.cache,
                    max_entries=config.cache_entries,
                )
        return LLMClient(
            config=config,
            route=lambda name: route(
                name, self.project.config, self.environ, capped=spec.config.limits.usd_capped
            ),
            http=lambda: ctx.http,
            guards=guards,
            retry=spec.config.retry,
            log=self.log,
            redactor=self.redactor,
            metrics=state.metrics,
            pii=spec.config.guard.pii,
            cache=cache,
            wall_clock=lambda: self.clock().timestamp(),
        )

    def _memory(self, spec: AgentSpec, state: AgentState, guards: RunGuards) -> RunMemory:
        # Made when an agent first touches ctx.memory: the others never import it.
        from agentops.memory.run import RunMemory  # noqa: PLC0415

        return RunMemory(
            agent=self.name,
            run_id=self.run_id,
            working=state.memory,
            config=spec.config.memory,
            path=self.project.memory_path(self.name),
            clock=self.clock,
            redactor=self.redactor,
            fs=self.fs,
            dry_run=self.options.dry_run,
            stop=guards.stop,
            shared=self.store.note_rows(self.name),
        )

    def save(self, state: AgentState, spec: AgentSpec, journal: JournalWriter | None) -> None:
        """Commit the state (and the ledger, if the run used it), dropping the run's journal."""
        if journal is not None:
            state.journal_folded = self.run_id
        try:
            self._commit(state, spec, drop_journal=journal is not None)
        except StateError as exc:
            self.log.error("state.save_failed", error=exc.message)
            raise
        finally:
            if journal is not None:
                journal.close()

    def save_notes(self, memory: RunMemory) -> None:
        """Write the notes the run made (after its state is committed), and log it.

        Raises :class:`~agentops.errors.StateError` if the file cannot be
        written, :class:`~agentops.errors.ConfigError` if SQLite lacks FTS5.
        """
        try:
            written, dropped = memory.save_notes()
        except AgentOpsError as exc:
            self.log.error("memory.save_failed", error=exc.message)
            raise
        if written:
            self.log.info("memory.saved", notes=written, dropped=dropped)

    def _commit(self, state: AgentState, spec: AgentSpec, *, drop_journal: bool) -> None:
        now = self.clock()
        if self._ledger is not None:
            self._ledger.prune(before=iso_second(now - timedelta(seconds=spec.config.keep_s)))
            if self._ledger.changed:  # a dry run reads the summary too
                state.ledger_summary = LedgerSummary.of(self._ledger.entries)
        if self.options.dry_run:
            return
        policies.prune(spec.config, state, now)
        state.forget_expired(now)
        assert self.lease is not None  # noqa: S101 - only called under the lease
        self.store.commit(self.lease, state, ledger=self._ledger, drop_journal=drop_journal)

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
            level("command.refused", error=exc.message, exit_code=exc.exit_code, reason=reason)
        elif isinstance(exc, RateLimited):
            wait = None if math.isinf(exc.retry_after_s) else round(exc.retry_after_s)
            self.log.info("run.skipped", reason=exc.reason, retry_after_s=wait)
        elif isinstance(exc, Skipped):
            self.log.info("run.skipped", reason=exc.reason)
        else:
            self.log.error("run.aborted", error=exc.message, exit_code=exc.exit_code)
        return self.outcome(exc.status, exc.exit_code, exc.message, reason=reason)

    def outcome(self, status: RunStatus, exit_code: int, message: str, **facts: Any) -> Outcome:
        """An :class:`Outcome`, its message redacted: cron mails it."""
        return Outcome(
            agent=self.name,
            run_id=self.run_id,
            status=status,
            exit_code=exit_code,
            message=self.redactor.value(message),
            log_path=self.project.log_path(self.name),
            **facts,
        )
