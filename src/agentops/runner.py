"""One run of one agent, step by step.

::

    resolve the agent -> take its lock -> load its state -> import its code
    -> gatekeeper: params -> admit -> execute -> output
    -> record the run in the state -> save the state atomically -> log run.finished

Every expected problem is an :mod:`agentops.errors` exception, turned here into
an :class:`Outcome` with the run's status and exit code, and logged.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pydantic_core

from agentops._clock import utcnow
from agentops.context import Context
from agentops.errors import (
    AgentOpsError,
    RateLimited,
    Skipped,
    StateError,
    TaskFailed,
    UnknownAgent,
)
from agentops.gatekeeper import Gatekeeper
from agentops.interrupts import RunInterrupts
from agentops.loader import load_agent
from agentops.log import RunLogSink, make_logger
from agentops.project import check_agent_name
from agentops.redact import Redactor
from agentops.state import AgentState, ErrorRecord, FileStateStore, LastRun

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime
    from pathlib import Path
    from typing import TextIO

    import httpx
    from pydantic import BaseModel
    from structlog.typing import FilteringBoundLogger

    from agentops._clock import Clock
    from agentops.project import Project

__all__ = ["SUCCEEDED", "Outcome", "new_run_id", "run_agent"]

SUCCEEDED = "succeeded"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended: what the CLI prints and exits with."""

    agent: str
    run_id: str
    status: str
    exit_code: int
    message: str
    log_path: Path

    @property
    def quiet(self) -> bool:
        """Success and skips print nothing under cron: only failures mail a human."""
        return self.exit_code in (0, Skipped.exit_code)


def new_run_id(now: datetime) -> str:
    """A run id that sorts by time and is unique enough: ``20261122T031000Z-3fa2c1``."""
    return f"{now:%Y%m%dT%H%M%SZ}-{os.urandom(3).hex()}"


def run_agent(
    project: Project,
    name: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    dry_run: bool = False,
    clock: Clock = utcnow,
    environ: Mapping[str, str] | None = None,
    console: TextIO | None = None,
    http_transport: httpx.BaseTransport | None = None,
) -> Outcome:
    """Run the agent called ``name`` once, through the gatekeeper.

    Raises :class:`~agentops.errors.UsageError` or
    :class:`~agentops.errors.UnknownAgent` before anything is written; every
    other problem is logged and returned as the :class:`Outcome`.
    """
    check_agent_name(name)
    run_id = new_run_id(clock())
    redactor = Redactor(os.environ if environ is None else environ)
    sink = RunLogSink(project.log_path(name), console=console)
    log = make_logger(sink, clock=clock, redactor=redactor, agent=name, run_id=run_id)
    run = _Run(
        project,
        name,
        run_id=run_id,
        log=log,
        clock=clock,
        redactor=redactor,
        store=FileStateStore(project.state_dir),
        dry_run=dry_run,
        http_transport=http_transport,
    )
    try:
        return run.execute(overrides or {})
    except UnknownAgent:
        raise
    except AgentOpsError as exc:
        return run.outcome_of(exc)
    except Exception:
        log.exception("run.crashed")
        raise
    finally:
        sink.close()


class _Run:
    def __init__(
        self,
        project: Project,
        name: str,
        *,
        run_id: str,
        log: FilteringBoundLogger,
        clock: Clock,
        redactor: Redactor,
        store: FileStateStore,
        dry_run: bool,
        http_transport: httpx.BaseTransport | None,
    ) -> None:
        self.project = project
        self.name = name
        self.run_id = run_id
        self.log = log
        self.clock = clock
        self.redactor = redactor
        self.store = store
        self.dry_run = dry_run
        self.http_transport = http_transport

    def execute(self, overrides: Mapping[str, Any]) -> Outcome:
        spec = self.project.agent(self.name)
        with self.store.lock(self.name), RunInterrupts(spec.config.timeout) as interrupts:
            state = self.store.load(self.name)
            code = load_agent(spec)
            gate = Gatekeeper(spec, code, log=self.log, interrupts=interrupts)
            params = gate.check_params(overrides)
            started = self.clock()
            try:
                gate.admit(state, started)
            except RateLimited:
                state.metrics.skipped += 1
                self._save(state)
                raise
            return self._execute(gate, params, state, started)

    def _execute(
        self, gate: Gatekeeper, params: BaseModel, state: AgentState, started: datetime
    ) -> Outcome:
        self.log.info("run.started", dry_run=self.dry_run, params=params.model_dump(mode="json"))
        ctx = Context(
            agent=self.name,
            run_id=self.run_id,
            now=started,
            home=self.project.home,
            # A copy: the agent's changes are kept only if the run succeeds.
            state=pydantic_core.from_json(pydantic_core.to_json(state.data)),
            log=self.log,
            dry_run=self.dry_run,
            http_transport=self.http_transport,
        )
        clock_start = time.monotonic()
        result: BaseModel | None = None
        error: AgentOpsError | None = None
        try:
            result = gate.check_output(gate.execute(params, ctx), ctx)
            state.data = self._agent_data(ctx.state)
        except AgentOpsError as exc:
            error = exc
            self._log_failure(exc)
        finally:
            ctx.close()
        duration_s = round(time.monotonic() - clock_start, 3)
        self._record(state, started=started, duration_s=duration_s, error=error)
        if error is None:
            outcome = self._outcome(SUCCEEDED, 0, f"{self.name}: succeeded")
        else:
            outcome = self._outcome(error.status, error.exit_code, error.message)
        try:
            self._save(state)
        except StateError as exc:
            outcome = self._outcome(outcome.status, exc.exit_code, exc.message)
        self.log.info(
            "run.finished",
            status=outcome.status,
            exit_code=outcome.exit_code,
            duration_s=duration_s,
            dry_run=self.dry_run,
            **({"result": result.model_dump(mode="json")} if result is not None else {}),
        )
        return outcome

    def outcome_of(self, exc: AgentOpsError) -> Outcome:
        """The outcome of a run that never started, logged as skipped or aborted."""
        if isinstance(exc, RateLimited):
            wait = None if math.isinf(exc.retry_after_s) else round(exc.retry_after_s)
            self.log.info("run.skipped", reason=exc.reason, retry_after_s=wait)
        elif isinstance(exc, Skipped):
            self.log.info("run.skipped", reason=exc.reason)
        else:
            self.log.error("run.aborted", error=exc.message, exit_code=exc.exit_code)
        return self._outcome(exc.status, exc.exit_code, exc.message)

    def _outcome(self, status: str, exit_code: int, message: str) -> Outcome:
        return Outcome(
            agent=self.name,
            run_id=self.run_id,
            status=status,
            exit_code=exit_code,
            # Printed to stderr, so mailed by cron: no secret may pass.
            message=self.redactor.value(message),
            log_path=self.project.log_path(self.name),
        )

    def _log_failure(self, exc: AgentOpsError) -> None:
        if isinstance(exc, TaskFailed):
            cause = exc.__cause__
            exc_info = (type(cause), cause, cause.__traceback__) if cause else False
            self.log.error("run.failed", status=exc.status, error=exc.message, exc_info=exc_info)

    def _record(
        self,
        state: AgentState,
        *,
        started: datetime,
        duration_s: float,
        error: AgentOpsError | None,
    ) -> None:
        finished = self.clock()
        status = error.status if error else SUCCEEDED
        message = self.redactor.value(error.message) if error else None
        state.last_run = LastRun(
            run_id=self.run_id,
            started_at=started,
            finished_at=finished,
            status=status,
            duration_s=duration_s,
            error=message,
        )
        metrics = state.metrics
        metrics.runs += 1
        if error is None:
            metrics.succeeded += 1
            state.last_success_at = finished
            return
        if error.status == "rejected":
            metrics.rejected += 1
        else:
            metrics.failed += 1
        state.record_error(
            ErrorRecord(at=finished, run_id=self.run_id, category=status, message=message or "")
        )

    def _save(self, state: AgentState) -> None:
        if self.dry_run:
            return
        try:
            self.store.save(state)
        except StateError as exc:
            self.log.error("state.save_failed", error=exc.message)
            raise

    def _agent_data(self, data: dict[str, Any]) -> dict[str, Any]:
        # Redacted on the way in; a value that is not JSON fails this run
        # cleanly instead of making the state file unwritable.
        try:
            redacted: dict[str, Any] = self.redactor.value(data)
        except pydantic_core.PydanticSerializationError as exc:
            raise TaskFailed(
                f"{self.name}: ctx.state holds a value that is not JSON: {exc}"
            ) from exc
        return redacted
