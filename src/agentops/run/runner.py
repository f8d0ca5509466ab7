"""One run of one agent, step by step.

::

    resolve the agent -> take its lock -> load its state (recovering the journal
    of a run that died) -> import its code
    -> gatekeeper: params -> admit -> execute -> output -> route
    -> record the run, update the circuit breaker -> save the state atomically
    -> remove the run's journal -> log run.finished

:func:`approve_held` is the same machinery around the ``apply()`` of a result
that was held for review. Every expected problem is an :mod:`agentops.errors`
exception, turned into an :class:`~agentops.run.session.Outcome`.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import pydantic_core

from agentops._infra.timestamps import iso
from agentops.errors import (
    AgentCodeFailed,
    AgentOpsError,
    ConfigError,
    Escalated,
    Paused,
    RateLimited,
    Skipped,
    StateError,
    TaskFailed,
    TickTaken,
    UsageError,
)
from agentops.model.state import Held, check_readable
from agentops.model.status import RunStatus
from agentops.project.schedule import cron_zone, previous_run
from agentops.run.gatekeeper import APPLIED, ESCALATED, HELD
from agentops.run.record import FinishedRun, record_run
from agentops.run.session import RunOptions, Session

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from pydantic import BaseModel

    from agentops.guards.facade import RunGuards
    from agentops.guards.failure import Failure
    from agentops.memory.run import RunMemory
    from agentops.model.outcome import Outcome
    from agentops.model.state import AgentState
    from agentops.project.home import AgentSpec, Project
    from agentops.run.gatekeeper import Gatekeeper

__all__ = ["approve_held", "run_agent"]


def run_agent(
    project: Project,
    name: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    options: RunOptions | None = None,
    **option_fields: Any,
) -> Outcome:
    """Run the agent called ``name`` once, through the gatekeeper.

    Options are given as a :class:`~agentops.run.session.RunOptions` or as its
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
    return session.run(lambda: _approve(session, held_id), attempt=False)


def _run(session: Session, overrides: Mapping[str, Any]) -> Outcome:
    spec = session.project.agent(session.name)
    session.check_models(spec)
    _refuse_if_paused(session, spec)
    with session.locked(spec) as (state, interrupts):
        _claim_tick(session, spec)
        gate = session.load_code(spec, interrupts)
        params = gate.check_params(overrides)
        session.redactor.learn_secret_params(params.model_dump(mode="json"))
        started = session.clock()
        _admit(session, gate, state, spec, started)
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
        route, degraded, error, notes = APPLIED, False, None, False
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
            # what it did is done (its actions are journaled). Without it, checked once.
            applied = route == APPLIED and gate.code.hook("apply") is not None
            state.data = _agent_data(session, ctx.state) if applied else data
            notes = _keep_memory(state, ctx.memory_used)
        except AgentOpsError as exc:
            error = exc
            _log_failure(session, exc)
        finally:
            ctx.close()
        duration_s = round(time.monotonic() - clock_start, 3)
        if result is not None and route in (HELD, ESCALATED):
            error = _hold(session, state, result, escalated=route == ESCALATED, spec=spec)
        outcome = _conclude(
            session,
            state,
            spec,
            started=started,
            duration_s=duration_s,
            error=error,
            held=route == HELD,
            degraded=degraded,
            guards=guards,
        )
        try:
            session.save(state, spec, journal)
            if notes:  # after the state: a crash between the two loses notes, never repeats them
                session.save_notes(ctx.memory)
        except (StateError, ConfigError) as exc:  # state unsaved (the journal stays) or notes
            outcome = outcome._replace(exit_code=exc.exit_code, message=exc.message)
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


def _admit(
    session: Session, gate: Gatekeeper, state: AgentState, spec: AgentSpec, started: datetime
) -> None:
    # A skip by a rate limit, the breaker or a budget is counted, and saved.
    try:
        gate.admit(state, started)
    except RateLimited:
        state.metrics.count(RunStatus.SKIPPED)
        session.save(state, spec, None)
        raise


def _conclude(
    session: Session,
    state: AgentState,
    spec: AgentSpec,
    *,
    started: datetime,
    duration_s: float,
    error: AgentOpsError | None,
    held: bool,
    degraded: bool,
    guards: RunGuards,
) -> Outcome:
    """Record the run in ``state`` and say how it ended."""
    status = error.status if error else (RunStatus.HELD if held else RunStatus.SUCCEEDED)
    if not status.executed:  # a file it met mid-run could not be read or written (74)
        status = RunStatus.FAILED
    message = session.redactor.value(error.message) if error else f"{session.name}: {status}"
    failure = _failure(error, message, session) if error else None
    circuit = record_run(
        state,
        FinishedRun(
            run_id=session.run_id,
            status=status,
            started_at=started,
            finished_at=session.clock(),
            duration_s=duration_s,
            message=message if error else None,
            failure=failure,
            degraded=degraded,
        ),
        spec.config.circuit,
    )
    if circuit == "opened":
        message = session.circuit_opened(state, message)
    return session.outcome(
        status,
        error.exit_code if error else 0,
        message,
        reason=getattr(error, "reason", None) or (failure.category if failure else None),
        circuit=circuit,
        degraded=degraded,
        spent_usd=round(guards.usd, 9),
        tokens=guards.tokens,
        duration_s=duration_s,
    )


def _claim_tick(session: Session, spec: AgentSpec) -> None:
    # Started by cron: one run per tick of the schedule, however many crontabs
    # (hosts, or a line installed twice) start it. The tick is the schedule's
    # last fire time, so clocks a few seconds apart claim the same one.
    schedule = spec.config.schedule
    if not session.options.scheduled or schedule is None:
        return
    tick = previous_run(schedule, session.clock().astimezone(cron_zone(session.environ)))
    assert session.lease is not None  # noqa: S101 - under the lease
    if tick is not None and not session.store.claim_tick(session.lease, tick):
        raise TickTaken(
            f"{session.name}: the tick of {iso(tick)} was run already", agent=session.name
        )


def _refuse_if_paused(session: Session, spec: AgentSpec) -> None:
    # Before the lease: a pause works even while a run holds it. The store's
    # first use: the hard deadline is armed before it.
    session.watch_start(spec)
    pause = session.store.pause(session.name)
    if pause is not None:
        raise Paused(
            f"{session.name} is paused" + (f": {pause.reason}" if pause.reason else ""),
            agent=session.name,
        )


def _approve(session: Session, held_id: str) -> Outcome:
    spec = session.project.agent(session.name)
    session.check_models(spec)
    with session.locked(spec, kind="approve") as (state, interrupts):
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
            notes = _keep_memory(state, ctx.memory_used)
        except AgentOpsError as exc:
            _log_failure(session, exc)
            session.save(state, spec, journal)  # keeps what apply() committed
            return session.outcome(exc.status, exc.exit_code, exc.message)
        finally:
            ctx.close()
        state.review = [h for h in state.review if h.id != held_id]
        session.log.info("review.approved", id=held_id)
        session.save(state, spec, journal)
        message = f"{session.name}: {held_id} approved and applied"
        try:
            if notes:
                session.save_notes(ctx.memory)
        except (StateError, ConfigError) as exc:  # applied and saved all the same: said
            return session.outcome(RunStatus.SUCCEEDED, exc.exit_code, f"{message}; {exc.message}")
    return session.outcome(RunStatus.SUCCEEDED, 0, message)


def _hold(
    session: Session, state: AgentState, result: BaseModel, *, escalated: bool, spec: AgentSpec
) -> AgentOpsError | None:
    confidence = getattr(result, "confidence", None)
    dropped = state.hold(
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
    for old in dropped:  # the queue is bounded: the oldest plain holds go first
        session.log.warning("review.dropped", id=old.id, escalated=old.escalated)
    if not escalated:
        return None
    return Escalated(
        f"{session.name}: result escalated: confidence {confidence:g} is below "
        f"review_threshold {spec.config.guard.review_threshold:g}; "
        f"see agentops review list {session.name}",
        agent=session.name,
    )


def _agent_data(session: Session, data: object) -> dict[str, Any]:
    # Redacted on the way in; a value that is not JSON fails this run cleanly
    # instead of making the state file unwritable.
    if not isinstance(data, dict):
        raise TaskFailed(f"{session.name}: ctx.state must stay a dict, not {type(data).__name__}")
    try:
        redacted: dict[str, Any] = session.redactor.value(data)
        check_readable(redacted, inside=1)  # the state file holds it under "data"
    except ValueError as exc:  # not JSON, NaN or infinity, nested too deeply
        raise TaskFailed(
            f"{session.name}: ctx.state holds a value that is not JSON: {exc}"
        ) from exc
    return redacted


def _keep_memory(state: AgentState, memory: RunMemory | None) -> bool:
    # Kept exactly when ctx.state is: the working memory now, the notes once
    # the state is saved. Whether there are notes to save.
    if memory is None:  # untouched: the state keeps what it holds
        return False
    state.memory = memory.kept()
    state.metrics.notes += memory.pending
    return memory.pending > 0


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
    from agentops.guards.failure import Failure, classify  # noqa: PLC0415 - only failed runs need it

    cause = error.__cause__
    if isinstance(error, AgentCodeFailed) and cause is not None:
        failure = classify(cause)
        return failure._replace(message=session.redactor.value(failure.message))
    return Failure(str(error.status), message, transient=False)
