"""One run of one agent, step by step.

::

    resolve the agent -> refuse if paused -> take its lock -> load its state
    (recovering the journal of a run that died) -> claim the tick -> import its code
    -> gatekeeper: params -> admit -> (journal begun) execute -> output -> route
    -> record the run, update the circuit breaker -> save the state atomically,
    dropping the run's journal -> write its notes -> log run.finished

:func:`approve_held` is the same machinery around the ``apply()`` of a result
that was held for review. Every expected problem is an :mod:`agentops.errors`
exception, turned into an :class:`~agentops.model.outcome.Outcome` by the
:class:`~agentops.run.invocation.Invocation`.
"""

from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING, Any

import pydantic_core

from agentops._infra.timestamps import iso, iso_second
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
    ToolCallHeld,
    UsageError,
)
from agentops.model.state import Held
from agentops.model.status import ExitCode, RunStatus
from agentops.project.schedule import cron_zone, previous_run
from agentops.project.tomlfile import key_place
from agentops.run.commit import keep_data, keep_memory, kept_data, save, save_notes
from agentops.run.ending import record_run
from agentops.run.gatekeeper import APPLIED, ESCALATED, HELD, Gatekeeper
from agentops.run.groups import group_slot
from agentops.run.invocation import Invocation
from agentops.run.options import RunOptions

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from pydantic import BaseModel

    from agentops._infra.log import EventLogger
    from agentops._infra.redact import Redactor
    from agentops.context import Context
    from agentops.guards.failure import Failure
    from agentops.model.outcome import Outcome
    from agentops.project.home import AgentSpec, Project
    from agentops.run.run import Run
    from agentops.run.services import RunServices

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

    Options are given as a :class:`~agentops.run.options.RunOptions` or as its
    fields. Raises :class:`~agentops.errors.UsageError` or
    :class:`~agentops.errors.UnknownAgent` before anything is written; every
    other problem is logged and returned as the outcome.
    """
    invocation = Invocation(project, name, options or RunOptions(**option_fields))
    return invocation.run(lambda: _run(invocation, overrides or {}))


def approve_held(
    project: Project, name: str, held_id: str, *, options: RunOptions | None = None, **fields: Any
) -> Outcome:
    """Perform a held result with the agent's ``apply()``, under the same guards as a run."""
    invocation = Invocation(project, name, options or RunOptions(**fields))
    return invocation.run(lambda: _approve(invocation, held_id), attempt=False)


def _run(invocation: Invocation, overrides: Mapping[str, Any]) -> Outcome:
    services = invocation.services
    spec = services.project.agent(services.name)
    _check_models(services, spec)
    _refuse_if_paused(invocation, spec)
    with group_slot(services, spec, invocation), invocation.locked(spec) as run:
        tick = _claim_tick(run)
        gate = Gatekeeper(run, run.import_code())
        params = gate.check_params(overrides)
        services.redactor.learn_secret_params(params.model_dump(mode="json"))
        started = services.clock()
        _admit(gate, run, started)
        run.open_journal(started, "run")
        invocation.started(params=params.model_dump(mode="json"), tick=tick)  # logged, pinged
        loaded = pydantic_core.to_json(run.state.data)
        ctx = run.open_context(started=started, params=params, data=pydantic_core.from_json(loaded))
        clock_start = time.monotonic()
        result: BaseModel | None = None
        route, degraded, error, notes = APPLIED, False, None, False
        try:
            run.guards.reconcile(gate.code.hook("reconcile"), ctx, gate.call_agent)
            output, degraded = gate.execute(
                params, fresh_state=lambda: pydantic_core.from_json(loaded)
            )
            services.redactor.learn(os.environ)  # the agent may have set a key while running
            result = gate.check_output(output)
            try:
                data = kept_data(run, ctx.state)
            except TaskFailed:
                gate.roll_back(output)
                result = None
                raise
            route = gate.route(result)
            # apply() may have changed ctx.state too; checked again, not rolled back:
            # what it did is done (its actions are journaled). Without it, checked once.
            applied = route == APPLIED and gate.code.hook("apply") is not None
            keep_data(run, kept_data(run, ctx.state) if applied else data)
            notes = keep_memory(run)
        except AgentOpsError as exc:
            error = exc
            _log_failure(run.log, exc)
        finally:
            run.close()
        duration_s = round(time.monotonic() - clock_start, 3)
        route, error = _held(run, result, route, error)
        outcome = _conclude(
            invocation,
            run,
            started=started,
            duration_s=duration_s,
            error=error,
            held=route == HELD,
            degraded=degraded,
        )
        try:
            save(run)
            if notes:  # after the state: a crash between the two loses notes, never repeats them
                save_notes(run)
        except (StateError, ConfigError) as exc:  # state unsaved (the journal stays) or notes
            outcome = outcome._replace(exit_code=exc.exit_code, message=exc.message)
    _log_finished(services.log, outcome, result, error)
    return outcome


def _check_models(services: RunServices, spec: AgentSpec) -> None:
    # Refuse to start (78) an agent whose models cannot be called as configured:
    # an unknown model, a key that is not set, a model without prices while a
    # USD cap is to be kept. Found before anything is spent.
    if not (spec.config.llm.chain() or spec.config.llm.tiers):
        return  # calls no model: nothing to check, nothing to import
    from agentops.llm.routes import problems  # noqa: PLC0415 - small, but only [llm] needs it

    found = problems(spec.config, services.project.config, services.environ)
    if found:
        more = f" (and {len(found) - 1} more: agentops check lists them)" if len(found) > 1 else ""
        where = key_place(spec.directory / "agent.toml", ("llm", "model"))
        raise ConfigError(f"{where}: {found[0]}{more}", agent=spec.name)


def _refuse_if_paused(invocation: Invocation, spec: AgentSpec) -> None:
    # Before the lease: a pause works even while a run holds it. The store's
    # first use: the hard deadline is armed before it.
    invocation.watch_start(spec)
    services = invocation.services
    pause = services.store.pause(services.name)
    if pause is not None and pause.holds(services.clock()):
        until = f" until {iso_second(pause.until)}" if pause.until else ""
        raise Paused(
            f"{services.name} is paused{until}" + (f": {pause.reason}" if pause.reason else ""),
            agent=services.name,
        )


def _claim_tick(run: Run) -> datetime | None:
    # Started by cron: one run per tick of the schedule, however many crontabs
    # (hosts, or a line installed twice) start it. The tick is the schedule's
    # last fire time, so clocks a few seconds apart claim the same one; under
    # agentops tick, the last at the tick's start (it may have claimed it already).
    # The tick claimed (None: none, the run was started by hand).
    services, schedule = run.services, run.spec.config.schedule
    options = services.options
    if not options.scheduled or schedule is None:
        return None
    if options.tick_claimer is not None and options.tick is not None:
        # Claimed by agentops tick, which may have died since: another host's
        # tick then took the claim over, and only one of the two starts it.
        if not services.store.claim_tick(run.lease, options.tick, claimed=True):
            raise TickTaken(
                f"{run.name}: the tick of {iso(options.tick)} was taken over by another tick",
                agent=run.name,
            )
        return options.tick
    at = options.tick or services.clock()
    tick = previous_run(schedule, at.astimezone(options.zone or cron_zone()))
    if tick is not None and not services.store.claim_tick(run.lease, tick):
        raise TickTaken(f"{run.name}: the tick of {iso(tick)} was run already", agent=run.name)
    return tick


def _admit(gate: Gatekeeper, run: Run, started: datetime) -> None:
    # A skip by a rate limit, the breaker or a budget is counted, and saved.
    try:
        gate.admit(run.state, started)
    except RateLimited:
        run.state.metrics.count(RunStatus.SKIPPED)
        save(run)
        raise


def _conclude(
    invocation: Invocation,
    run: Run,
    *,
    started: datetime,
    duration_s: float,
    error: AgentOpsError | None,
    held: bool,
    degraded: bool,
) -> Outcome:
    """Say how the run ended, and record it in its state."""
    redactor = run.services.redactor
    status = error.status if error else (RunStatus.HELD if held else RunStatus.SUCCEEDED)
    if not status.executed:  # a file it met mid-run could not be read or written (74)
        status = RunStatus.FAILED
    message = redactor.value(error.message) if error else f"{run.name}: {status}"
    failure = _failure(error, message, redactor) if error else None
    outcome = invocation.outcome(
        status,
        error.exit_code if error else ExitCode.OK,
        message,
        reason=getattr(error, "reason", None) or (failure.category if failure else None),
        degraded=degraded,
        spent_usd=round(run.guards.usd, 9),
        tokens=run.guards.tokens,
        duration_s=duration_s,
        started_at=started,
        finished_at=run.services.clock(),
    )
    circuit = record_run(run.state, outcome, run.spec.config.circuit, failure=failure)
    outcome = _budget_filled(run, outcome)
    if circuit == "opened":
        loud = invocation.circuit_opened(run.state, message)
        return outcome._replace(circuit=circuit, message=redactor.value(loud))
    return outcome._replace(circuit=circuit)


def _budget_filled(run: Run, outcome: Outcome) -> Outcome:
    # A cap reached exactly stopped nothing, but skips every run after this
    # one: this run says so (a run that a cap stopped has said it already).
    if run.services.dry_run or outcome.status == RunStatus.BUDGET_EXCEEDED:
        return outcome
    from agentops.guards.costs import filled_line  # noqa: PLC0415 - already loaded by the guards

    filled = filled_line(run.spec.config.limits, run.state.budget, run.services.clock())
    if filled is None:
        return outcome
    window, room_in, line = filled
    run.log.warning(
        "budget.filled",
        window=window.name,
        cap_usd=window.cap_usd,
        room_in_s=None if math.isinf(room_in) else round(room_in, 3),
    )
    return outcome._replace(message=f"{outcome.message}; {line}", budget_filled=True)


def _approve(invocation: Invocation, held_id: str) -> Outcome:
    services = invocation.services
    spec = services.project.agent(services.name)
    _check_models(services, spec)
    with invocation.locked(spec, kind="approve") as run:
        held = next((h for h in run.state.review if h.id == held_id), None)
        if held is None:
            raise UsageError(f"{run.name} holds no result {held_id!r} for review")
        gate = Gatekeeper(run, run.import_code())
        if held.tool is None and gate.code.hook("apply") is None:
            raise ConfigError(f"{spec.code_path}: no apply(): there is nothing to approve with")
        params = gate.check_params({})
        run.open_journal(services.clock(), "approve")
        ctx = run.open_context(started=services.clock(), params=params)
        try:
            if held.tool is None:
                gate.apply(gate.check_output(held.result))
            else:
                _perform_call(run, gate, ctx, held)
            keep_data(run, kept_data(run, ctx.state))
            notes = keep_memory(run)
        except AgentOpsError as exc:
            _log_failure(run.log, exc)
            save(run)  # keeps what apply() committed
            return invocation.outcome(exc.status, exc.exit_code, exc.message)
        finally:
            run.close()
        run.state.review = [h for h in run.state.review if h.id != held_id]
        run.log.info("review.approved", id=held_id)
        save(run)
        message = f"{run.name}: {held_id} approved and applied"
        try:
            if notes:
                save_notes(run)
        except (StateError, ConfigError) as exc:  # applied and saved all the same: said
            return invocation.outcome(
                RunStatus.SUCCEEDED, exc.exit_code, f"{message}; {exc.message}"
            )
    return invocation.outcome(RunStatus.SUCCEEDED, ExitCode.OK, message)


def _perform_call(run: Run, gate: Gatekeeper, ctx: Context, held: Held) -> None:
    # The approved call, once, under the same guards: the guarded action of the tool and
    # key the model's call was held under, whose result the agent's next run then sees.
    from agentops.llm.tools import Tool, ToolDeclarationError  # noqa: PLC0415 - pydantic models

    code_path = run.spec.code_path
    function = getattr(gate.code.module, str(held.tool), None)
    if function is None:
        raise ConfigError(f"{code_path}: no tool {held.tool}: there is nothing to approve with")
    try:
        tool = Tool.of(function)
        arguments = tool.validate(held.result)
    except ToolDeclarationError as exc:
        raise ConfigError(str(exc), agent=run.name) from None
    except ValueError as exc:
        raise UsageError(f"{held.tool}'s held arguments no longer fit it: {exc}") from None
    key = str(held.key)
    started = time.perf_counter()
    logged = {"tool": tool.name, "kind": tool.kind, "key": key, "approved": True}
    try:
        gate.call_agent(
            f"tool {tool.name}",
            lambda: run.guards.action(tool.action, key, lambda: tool.call(arguments, ctx)),
        )
    except AgentOpsError as exc:
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        run.log.info(
            "llm.tool_call", **logged, ok=False, duration_ms=duration_ms, error=exc.message
        )
        raise
    duration_ms = round((time.perf_counter() - started) * 1000, 3)
    run.log.info("llm.tool_call", **logged, ok=True, duration_ms=duration_ms)


def _hold(run: Run, result: BaseModel, *, escalated: bool) -> AgentOpsError | None:
    services = run.services
    confidence = getattr(result, "confidence", None)
    dropped = run.state.hold(
        Held(
            id=run.run_id,
            run_id=run.run_id,
            at=services.clock(),
            confidence=confidence,
            escalated=escalated,
            result=services.redactor.value(result.model_dump(mode="json")),
        )
    )
    run.log.info("review.held", id=run.run_id, confidence=confidence, escalated=escalated)
    for old in dropped:  # the queue is bounded: the oldest plain holds go first
        run.log.warning("review.dropped", id=old.id, escalated=old.escalated)
    if not escalated:
        return None
    return Escalated(
        f"{run.name}: result escalated: confidence {confidence:g} is below "
        f"review_threshold {run.spec.config.guard.review_threshold:g}; "
        f"see agentops review list {run.name}",
        agent=run.name,
    )


def _held(
    run: Run, result: BaseModel | None, route: str, error: AgentOpsError | None
) -> tuple[str, AgentOpsError | None]:
    """The run's ``(route, error)`` once what waits for a human is held."""
    if isinstance(error, ToolCallHeld):
        _hold_call(run, error)
        return HELD, None
    if result is not None and route in (HELD, ESCALATED):
        return route, _hold(run, result, escalated=route == ESCALATED)
    return route, error


def _hold_call(run: Run, held: ToolCallHeld) -> None:
    # A destructive tool call waits for a human, its arguments as the model gave
    # them (validated, free of secrets); the run ends held, its committed actions
    # kept. A call held already is not held twice.
    services = run.services
    held_id = f"{held.tool}-{held.key}"
    if any(h.id == held_id for h in run.state.review):
        run.log.info("review.held", id=held_id, tool=held.tool, again=True)
        return
    dropped = run.state.hold(
        Held(
            id=held_id,
            run_id=run.run_id,
            at=services.clock(),
            result=held.arguments,
            tool=held.tool,
            key=held.key,
        )
    )
    run.log.info("review.held", id=held_id, tool=held.tool, again=False)
    for old in dropped:
        run.log.warning("review.dropped", id=old.id, escalated=old.escalated)


def _log_finished(
    log: EventLogger, outcome: Outcome, result: BaseModel | None, error: AgentOpsError | None
) -> None:
    # The result is logged when the run produced one that stands (or was escalated).
    done = result is not None and (error is None or isinstance(error, Escalated))
    log.info(
        "run.finished",
        status=outcome.status,
        exit_code=outcome.exit_code,
        duration_s=outcome.duration_s,
        degraded=outcome.degraded,
        **({"result": result.model_dump(mode="json")} if done and result else {}),
    )


def _log_failure(log: EventLogger, exc: AgentOpsError) -> None:
    if isinstance(exc, TaskFailed):
        cause = exc.__cause__
        if cause is None:
            log.error("run.failed", status=exc.status, error=exc.message)
            return
        # The category says whether it was expected (a network error, a
        # timeout, a refused request) or a bug ("error"): a terminal shows
        # the traceback only of a bug; the log keeps every one.
        from agentops.guards.failure import classify  # noqa: PLC0415 - only failed runs need it

        log.error(
            "run.failed",
            status=exc.status,
            error=exc.message,
            category=classify(cause).category,
            exc_info=(type(cause), cause, cause.__traceback__),
        )
    elif isinstance(exc, Skipped):
        log.warning("run.stopped", status=exc.status, reason=exc.reason, error=exc.message)


def _failure(error: AgentOpsError, message: str, redactor: Redactor) -> Failure:
    # What the breaker compares: the agent's own exception when there is one,
    # redacted, since the breaker keeps its message in the state file.
    from agentops.guards.failure import Failure, classify  # noqa: PLC0415 - only failed runs need it

    cause = error.__cause__
    if isinstance(error, AgentCodeFailed) and cause is not None:
        failure = classify(cause)
        return failure._replace(message=redactor.value(failure.message))
    return Failure(str(error.status), message, transient=False)
