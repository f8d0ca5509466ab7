"""One run of one agent, step by step.

::

    resolve the agent -> take its lock -> load its state (recovering the journal
    of a run that died) -> import its code
    -> gatekeeper: params -> admit -> execute -> output -> route
    -> record the run, update the circuit breaker -> save the state atomically
    -> remove the run's journal -> log run.finished

:func:`approve_held` is the same machinery around the ``apply()`` of a result
that was held for review. Every expected problem is an :mod:`agentops.errors`
exception, turned into an :class:`~agentops.session.Outcome`.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import pydantic_core

from agentops import breaker
from agentops.errors import (
    AgentCodeFailed,
    AgentOpsError,
    ConfigError,
    Escalated,
    RateLimited,
    Skipped,
    StateError,
    TaskFailed,
    UsageError,
)
from agentops.gatekeeper import APPLIED, ESCALATED, HELD
from agentops.ledger import iso_second
from agentops.session import Outcome, RunOptions, Session
from agentops.state import ErrorRecord, Held, LastRun

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from pydantic import BaseModel

    from agentops.failure import Failure
    from agentops.project import AgentSpec, Project
    from agentops.state import AgentState

__all__ = ["SUCCEEDED", "approve_held", "run_agent"]

SUCCEEDED = "succeeded"
# The metric each status of an executed run counts in.
_METRIC = {
    SUCCEEDED: "succeeded",
    HELD: "held",
    ESCALATED: "escalated",
    "rejected": "rejected",
    "failed": "failed",
    "timeout": "failed",
    "interrupted": "failed",
    "rate_limited": "stopped",
    "budget_exceeded": "stopped",
}
_TRIPS_BREAKER = frozenset({"failed", "timeout", "rejected"})


def run_agent(
    project: Project,
    name: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    options: RunOptions | None = None,
    **option_fields: Any,
) -> Outcome:
    """Run the agent called ``name`` once, through the gatekeeper.

    Options are given as a :class:`~agentops.session.RunOptions` or as its
    fields. Raises :class:`~agentops.errors.UsageError` or
    :class:`~agentops.errors.UnknownAgent` before anything is written; every
    other problem is logged and returned as the outcome.
    """
    session = Session(project, name, options or RunOptions(**option_fields))
    return session.run(lambda: _run(session, overrides or {}))


def approve_held(
    project: Project, name: str, held_id: str, *, options: RunOptions | None = None, **fields: Any
) -> Outcome:
    """Perform a held result with the agent's ``apply()``, under the same guards as a run."""
    session = Session(project, name, options or RunOptions(**fields))
    return session.run(lambda: _approve(session, held_id))


def _run(session: Session, overrides: Mapping[str, Any]) -> Outcome:
    spec = session.project.agent(session.name)
    with session.locked(spec) as (state, interrupts):
        gate = session.load_code(spec, interrupts)
        params = gate.check_params(overrides)
        session.redactor.learn_secret_params(params.model_dump(mode="json"))
        started = session.clock()
        try:
            gate.admit(state, started)
        except RateLimited:
            state.metrics.skipped += 1
            session.save(state, spec, None)
            raise
        journal = session.journal(started, "run")
        session.log.info("run.started", params=params.model_dump(mode="json"))
        loaded = pydantic_core.to_json(state.data)
        ctx, guards = session.context(
            spec,
            state,
            interrupts,
            started=started,
            journal=journal,
            params=params,
            data=pydantic_core.from_json(loaded),
        )
        clock_start = time.monotonic()
        result: BaseModel | None = None
        route, degraded, error = SUCCEEDED, False, None
        try:
            guards.reconcile(gate.code.hook("reconcile"), ctx, gate.call_agent)
            output, degraded = gate.execute(
                params, ctx, guards, fresh_state=lambda: pydantic_core.from_json(loaded)
            )
            session.redactor.learn(os.environ)  # the agent may have set a key while running
            result = gate.check_output(output, ctx, guards)
            try:
                data = _agent_data(session, ctx.state)
            except TaskFailed:
                gate.roll_back(output, ctx, guards)
                result = None
                raise
            route = gate.route(result, ctx, guards)
            # apply() may have changed ctx.state too; checked again, not rolled back:
            # what it did is done (its actions are journaled).
            state.data = _agent_data(session, ctx.state) if route == APPLIED else data
        except AgentOpsError as exc:
            error = exc
            _log_failure(session, exc)
        finally:
            ctx.close()
        duration_s = round(time.monotonic() - clock_start, 3)
        if result is not None and route in (HELD, ESCALATED):
            error = _hold(session, state, result, escalated=route == ESCALATED, spec=spec)
        status = error.status if error else (HELD if route == HELD else SUCCEEDED)
        message = _record(
            session,
            state,
            spec,
            started=started,
            duration_s=duration_s,
            status=status,
            error=error,
            degraded=degraded,
        )
        outcome = session.outcome(status, error.exit_code if error else 0, message)
        try:
            session.save(state, spec, journal)
        except StateError as exc:  # the journal stays: the next run recovers it
            outcome = session.outcome(status, exc.exit_code, exc.message)
    done = result is not None and (error is None or isinstance(error, Escalated))
    session.log.info(
        "run.finished",
        status=outcome.status,
        exit_code=outcome.exit_code,
        duration_s=duration_s,
        degraded=degraded,
        **({"result": result.model_dump(mode="json")} if done and result else {}),
    )
    return outcome


def _approve(session: Session, held_id: str) -> Outcome:
    spec = session.project.agent(session.name)
    with session.locked(spec) as (state, interrupts):
        held = next((h for h in state.review if h.id == held_id), None)
        if held is None:
            raise UsageError(f"{session.name} holds no result {held_id!r} for review")
        gate = session.load_code(spec, interrupts)
        if gate.code.hook("apply") is None:
            raise ConfigError(f"{spec.code_path}: no apply(): there is nothing to approve with")
        params = gate.check_params({})
        journal = session.journal(session.clock(), "approve")
        ctx, guards = session.context(
            spec, state, interrupts, started=session.clock(), journal=journal, params=params
        )
        try:
            gate.apply(gate.check_output(held.result, ctx, guards), ctx, guards)
            state.data = _agent_data(session, ctx.state)
        except AgentOpsError as exc:
            _log_failure(session, exc)
            session.save(state, spec, journal)  # keeps what apply() committed
            return session.outcome(exc.status, exc.exit_code, exc.message)
        finally:
            ctx.close()
        state.review = [h for h in state.review if h.id != held_id]
        session.log.info("review.approved", id=held_id)
        session.save(state, spec, journal)
    return session.outcome(SUCCEEDED, 0, f"{session.name}: {held_id} approved and applied")


def _hold(
    session: Session, state: AgentState, result: BaseModel, *, escalated: bool, spec: AgentSpec
) -> AgentOpsError | None:
    confidence = getattr(result, "confidence", None)
    state.review.append(
        Held(
            id=session.run_id,
            run_id=session.run_id,
            at=session.clock(),
            confidence=confidence,
            escalated=escalated,
            result=session.redactor.value(result.model_dump(mode="json")),
        )
    )
    session.log.info("review.held", id=session.run_id, confidence=confidence, escalated=escalated)
    if not escalated:
        return None
    return Escalated(
        f"{session.name}: result escalated: confidence {confidence:g} is below "
        f"review_threshold {spec.config.guard.review_threshold:g}; "
        f"see agentops review list {session.name}",
        agent=session.name,
    )


def _record(
    session: Session,
    state: AgentState,
    spec: AgentSpec,
    *,
    started: datetime,
    duration_s: float,
    status: str,
    error: AgentOpsError | None,
    degraded: bool,
) -> str:
    """Record the run in ``state``; return the one-line message for the operator."""
    finished = session.clock()
    message = session.redactor.value(error.message) if error else f"{session.name}: {status}"
    state.last_run = LastRun(
        run_id=session.run_id,
        started_at=started,
        finished_at=finished,
        status=status,
        duration_s=duration_s,
        error=message if error else None,
        degraded=degraded,
    )
    metrics = state.metrics
    metrics.runs += 1
    metrics.degraded += degraded
    if status in (SUCCEEDED, HELD):
        state.last_success_at = finished
        breaker.record_success(state.circuit)
    metric = _METRIC[status]
    setattr(metrics, metric, getattr(metrics, metric) + 1)
    if error is None:
        return message
    state.record_error(
        ErrorRecord(at=finished, run_id=session.run_id, category=status, message=message)
    )
    if status in _TRIPS_BREAKER and breaker.record_failure(
        state.circuit, _failure(error, message, session), spec.config.circuit, finished
    ):
        until = iso_second(state.circuit.until) if state.circuit.until else "?"
        session.log.error(
            "circuit.opened",
            fingerprint=state.circuit.fingerprint,
            failures=state.circuit.failures,
            until=until,
        )
        return (
            f"{session.name}: CIRCUIT OPEN after {state.circuit.failures} identical failures, "
            f"runs skipped until {until} (agentops reset {session.name} --circuit to close): "
            f"{message}"
        )
    return message


def _agent_data(session: Session, data: object) -> dict[str, Any]:
    # Redacted on the way in; a value that is not JSON fails this run cleanly
    # instead of making the state file unwritable.
    if not isinstance(data, dict):
        raise TaskFailed(f"{session.name}: ctx.state must stay a dict, not {type(data).__name__}")
    try:
        redacted: dict[str, Any] = session.redactor.value(data)
    except pydantic_core.PydanticSerializationError as exc:
        raise TaskFailed(
            f"{session.name}: ctx.state holds a value that is not JSON: {exc}"
        ) from exc
    return redacted


def _log_failure(session: Session, exc: AgentOpsError) -> None:
    if isinstance(exc, TaskFailed):
        cause = exc.__cause__
        exc_info = (type(cause), cause, cause.__traceback__) if cause else False
        session.log.error("run.failed", status=exc.status, error=exc.message, exc_info=exc_info)
    elif isinstance(exc, Skipped):
        session.log.warning("run.stopped", status=exc.status, reason=exc.reason, error=exc.message)


def _failure(error: AgentOpsError, message: str, session: Session) -> Failure:
    # What the breaker compares: the agent's own exception when there is one,
    # redacted, since the breaker keeps its message in the state file.
    from agentops.failure import Failure, classify  # noqa: PLC0415 - only failed runs need it

    cause = error.__cause__
    if isinstance(error, AgentCodeFailed) and cause is not None:
        failure = classify(cause)
        return failure._replace(message=session.redactor.value(failure.message))
    return Failure(error.status, message, transient=False)
