"""One invocation of agentops for one agent: its run id, log, state store and options.

Runs (:mod:`agentops.runner`) and operator edits (:mod:`agentops.admin`) share
this machinery: take the agent's lock, load its state and recover the journal
of a run that died, build the guarded ``ctx``, save the state and only then
remove the journal, and turn every expected error into an :class:`Outcome`.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from contextlib import nullcontext
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

import pydantic_core

from agentops import ratelimit
from agentops._clock import utcnow
from agentops.context import Context
from agentops.errors import AgentOpsError, RateLimited, Skipped, StateError, UnknownAgent
from agentops.gatekeeper import Gatekeeper
from agentops.guards import RunGuards
from agentops.interrupts import RunInterrupts, StopRun
from agentops.ledger import iso_second, prune
from agentops.loader import load_agent
from agentops.log import RunLogSink, captured_output, make_logger
from agentops.project import check_agent_name
from agentops.redact import Redactor
from agentops.state import FileStateStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from datetime import datetime
    from pathlib import Path
    from typing import TextIO

    import httpx
    from pydantic import BaseModel

    from agentops._clock import Clock
    from agentops.journal import Journal
    from agentops.project import AgentSpec, Project
    from agentops.state import AgentState

__all__ = ["Outcome", "RunOptions", "Session", "new_run_id"]


class Outcome(NamedTuple):
    """How an invocation ended: what the CLI prints and exits with.

    ``threads_left`` counts threads the agent started that were still running
    at the end: the process holds the agent's lock until it exits, and the CLI
    exits at once rather than wait for them.
    """

    agent: str
    run_id: str
    status: str
    exit_code: int
    message: str
    log_path: Path
    threads_left: int = 0

    @property
    def quiet(self) -> bool:
        """Success and skips print nothing under cron: only failures mail a human."""
        return self.exit_code in (0, Skipped.exit_code)


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
        environ = os.environ if options.environ is None else options.environ
        self.redactor = Redactor(environ)
        self.sink = RunLogSink(project.log_path(name), console=options.console)
        self.log = make_logger(
            self.sink, clock=self.clock, redactor=self.redactor, agent=name, run_id=self.run_id
        )
        if options.dry_run:  # every line of a dry run says so
            self.log = self.log.bind(dry_run=True)
        self.store = FileStateStore(project.state_dir)
        self.threads_left = 0

    def run(self, body: Callable[[], Outcome]) -> Outcome:
        """Call ``body``, turning an error that stopped it early into the outcome."""
        try:
            return body()._replace(threads_left=self.threads_left)
        except UnknownAgent:
            raise
        except AgentOpsError as exc:
            return self.not_started(exc)
        except Exception:
            self.log.exception("run.crashed")
            raise
        finally:
            self.sink.close()

    @contextlib.contextmanager
    def locked(self, spec: AgentSpec) -> Iterator[tuple[AgentState, RunInterrupts]]:
        """Hold the agent's lock with its state loaded and any crashed run recovered.

        The timeout clock starts here. Threads the agent leaves running keep
        the lock held until the process exits, so no other run overlaps them.
        """
        before = set(threading.enumerate())
        abandon = self._abandon if self.options.exit_on_abandon else None
        with (
            self.store.lock(self.name) as held,
            RunInterrupts(spec.config.timeout, on_abandon=abandon) as interrupts,
        ):
            try:
                state = self.store.load(self.name)
                recovered = self.store.recover(state, persist=not self.options.dry_run)
                if recovered is not None and recovered.records:
                    self.log.warning(
                        "run.recovered",
                        crashed_run=recovered.run_id,
                        records=recovered.records,
                        unresolved=[f"{a}:{k}" for a, k in recovered.unresolved[:20]],
                    )
                yield state, interrupts
            finally:
                left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
                if left:
                    held.keep_until_exit()
                    self.threads_left = len(left)
                    self.log.warning("run.threads_left", threads=[t.name for t in left][:10])

    def _abandon(self, stop: StopRun) -> NoReturn:
        # Agent code swallowed every stop: end the process. Its journal stays,
        # and the next run recovers it as a crashed run.
        message = f"{self.name}: run abandoned: {stop.reason} and the agent code would not stop"
        self.log.error("run.abandoned", reason=stop.reason, signal=stop.signal_name)
        self.sink.close()
        os.write(2, f"agentops: {self.redactor.value(message)} (log: {self.sink.path})\n".encode())
        os._exit(1)

    def load_code(self, spec: AgentSpec, interrupts: RunInterrupts) -> Gatekeeper:
        """Import the agent's code, under the timeout; return its gatekeeper.

        Environment variables the agent sets while importing (``load_dotenv()``)
        are learnt as secrets too.
        """
        capture = self.options.console is None
        try:
            with interrupts.armed(), captured_output(self.log) if capture else nullcontext():
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
            capture_output=capture,
        )

    def journal(self, started: datetime, kind: str) -> Journal | None:
        """Start the journal of this invocation (None in a dry run, which saves nothing)."""
        if self.options.dry_run:
            return None
        journal = self.store.journal(self.name, self.run_id)
        journal.append("begin", started, kind=kind, agent=self.name)
        return journal

    def context(
        self,
        spec: AgentSpec,
        state: AgentState,
        interrupts: RunInterrupts,
        *,
        started: datetime,
        journal: Journal | None,
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
            journal=journal,
            interrupts=interrupts,
            log=self.log,
            redactor=self.redactor,
            clock=self.clock,
            sleep=self.options.sleep,
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
        )
        return ctx, guards

    def save(self, state: AgentState, spec: AgentSpec, journal: Journal | None) -> None:
        """Prune the ledger, save the state, then remove the journal it now holds."""
        if self.options.dry_run:
            return
        now = self.clock()
        prune(state.ledger, before=iso_second(now - timedelta(seconds=spec.config.ledger.keep)))
        _prune_rate_limits(state, spec, now)
        if journal is not None:
            state.journal_folded = self.run_id
        try:
            self.store.save(state)
        except StateError as exc:
            self.log.error("state.save_failed", error=exc.message)
            raise
        if journal is not None:  # only now: the saved state holds every record
            journal.discard()

    def not_started(self, exc: AgentOpsError) -> Outcome:
        """The outcome of an invocation stopped before its work, logged as skipped or aborted."""
        if isinstance(exc, RateLimited):
            wait = None if math.isinf(exc.retry_after_s) else round(exc.retry_after_s)
            self.log.info("run.skipped", reason=exc.reason, retry_after_s=wait)
        elif isinstance(exc, Skipped):
            self.log.info("run.skipped", reason=exc.reason)
        else:
            self.log.error("run.aborted", error=exc.message, exit_code=exc.exit_code)
        return self.outcome(exc.status, exc.exit_code, exc.message)

    def outcome(self, status: str, exit_code: int, message: str) -> Outcome:
        """An :class:`Outcome`, its message redacted: cron mails it."""
        return Outcome(
            agent=self.name,
            run_id=self.run_id,
            status=status,
            exit_code=exit_code,
            message=self.redactor.value(message),
            log_path=self.project.log_path(self.name),
        )


def _prune_rate_limits(state: AgentState, spec: AgentSpec, now: datetime) -> None:
    # Keep each list to its window, and drop lists no limit reads any more:
    # an action commits often and would otherwise grow its list forever.
    rates = spec.config.limits.rates()
    for key in list(state.rate_limits):
        rate = rates.get(key)
        if rate is None:
            del state.rate_limits[key]
        else:
            state.rate_limits[key] = ratelimit.prune(state.rate_limits[key], rate, now)
