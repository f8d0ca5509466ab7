"""The gates every run passes through, in order.

1. params: ``[params]`` and command-line overrides validated by the Params model;
   a rejection means nothing is executed. A problem of agent.toml's own values
   (a required param it lacks, a value of the wrong type) is a configuration
   error (78) naming its line, as every other agent.toml problem is; one of
   the command line's overrides is a rejection (65).
2. admit: the run rate limit, the circuit breaker and the cost windows, all
   counted in the state file.
3. execute: ``run(params, ctx)`` under the timeout, retried on transient
   failures; if it still fails, the agent's ``fallback()`` (a degraded result).
4. output: the Result model, then the agent's ``validate()``; a rejected output
   is handed to ``rollback()`` and the run's committed actions are undone,
   newest first.
5. route: with an ``apply()``, the result's ``confidence`` decides: apply it
   now, hold it for review, or escalate it to a human.

Each gate raises the matching :mod:`agentops.errors` exception; the runner
turns it into the run's status and exit code. A gatekeeper gates one
:class:`~agentops.run.run.Run`, and reaches its ``ctx`` and its guards through it.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import BaseModel, ValidationError

from agentops.errors import AgentCodeFailed, ConfigError, OutputRejected, ParamsRejected
from agentops.guards import policies
from agentops.guards.facade import GuardStop
from agentops.guards.interrupts import StopRun
from agentops.guards.retry import call_with_retries
from agentops.model.state import check_readable
from agentops.run.loader import unknown_params

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from agentops.guards.facade import RunGuards
    from agentops.guards.failure import Failure
    from agentops.model.state import AgentState
    from agentops.run.loader import AgentCode
    from agentops.run.run import Run

__all__ = ["APPLIED", "ESCALATED", "HELD", "Gatekeeper"]

APPLIED = "applied"
HELD = "held"
ESCALATED = "escalated"


class Gatekeeper:
    """Applies one agent's gates to one run."""

    def __init__(self, run: Run, code: AgentCode) -> None:
        """Gate ``run``, of the agent implemented by ``code``."""
        self.run = run
        self.spec = run.spec
        self.code = code
        self.log = run.log
        self.interrupts = run.interrupts
        self.sleep = run.services.sleep

    @property
    def name(self) -> str:
        """The agent's name."""
        return self.spec.name

    # -- 1 params ----------------------------------------------------------------------

    def check_params(self, overrides: Mapping[str, Any]) -> BaseModel:
        """Gate 1: agent.toml's ``[params]`` with ``overrides`` on top, validated.

        A key the Params model does not know is refused (unless the model
        allows extra keys), so a typo never passes silently.
        """
        model = self.code.params_model
        typos = unknown_params(model, self.spec.config.params)
        if typos:  # the operator's file, not this run's input: a configuration error
            self._refuse_toml([(key, "unknown param") for key in typos])
        values = {**self.spec.config.params, **overrides}
        errors = [f"{key}: unknown param" for key in unknown_params(model, values)]
        if not errors:
            try:
                params = self._validate(model, values, "Params")
                # They are logged (a NaN as a string): only their depth matters.
                check_readable(params.model_dump(mode="json"), inside=1, finite=False)
            except ValidationError as exc:
                # An error of a key no override touched is agent.toml's; one of the
                # whole model is too, when there is no override to blame it on.
                own = [
                    (".".join(str(part) for part in error["loc"]) or "params", error["msg"])
                    for error in exc.errors(include_url=False, include_input=False)
                    if (str(error["loc"][0]) not in overrides if error["loc"] else not overrides)
                ]
                if own:
                    self._refuse_toml(own)
                errors = _describe(exc)
            except AgentCodeFailed as exc:  # a validator raised something else
                if not overrides:
                    self._refuse_toml([("params", exc.message)])
                errors = [exc.message]
            except ValueError as exc:  # nested too deeply, or a number that is not finite
                errors = [f"params: {exc}"]
            else:
                return params
        self.log.warning("gate.rejected", stage="params", errors=errors)
        raise ParamsRejected(
            f"{self.name}: params rejected: {'; '.join(errors)}", agent=self.name, errors=errors
        )

    def _refuse_toml(self, problems: list[tuple[str, str]]) -> NoReturn:
        # agent.toml's own [params] is wrong: 78, naming the line of the first.
        from agentops.project.tomlfile import key_line  # noqa: PLC0415 - only a broken file

        path = self.spec.directory / "agent.toml"
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError):
            text = ""
        line = key_line(text, ("params", *problems[0][0].split(".")))
        where = f"{path}:{line}" if line else str(path)
        said = "; ".join(f"{key}: {message}" for key, message in problems)
        raise ConfigError(f"{where}: [params] {said}", agent=self.name)

    def _validate(self, model: type[BaseModel], data: Any, what: str) -> BaseModel:
        # Models run the agent's own validators: agent code, so under the timeout.
        try:
            validated: BaseModel = self.call_agent(f"{what} validation", model.model_validate, data)
        except AgentCodeFailed as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise exc.__cause__ from None
            raise
        return validated

    # -- 2 admit -----------------------------------------------------------------------

    def admit(self, state: AgentState, now: datetime) -> None:
        """Gate 2: refuse the run while the circuit is open or a window is full."""
        policies.admit(self.spec.config, state, now)

    # -- 3 execute ---------------------------------------------------------------------

    def execute(
        self, params: BaseModel, *, fresh_state: Callable[[], dict[str, Any]]
    ) -> tuple[Any, bool]:
        """Gate 3: ``run()`` with retries, then ``fallback()``; return (output, degraded).

        Each attempt starts from the state (and ``ctx.memory``) as loaded: only
        a successful attempt's changes are kept.
        """
        run, ctx, guards = self.run, self.run.ctx, self.run.guards

        def attempt() -> Any:
            run.restart(fresh_state())
            guards.new_attempt()
            output = self.call_agent("run()", self.code.run, params, ctx)
            _raise_if_stopped(guards)
            return output

        try:
            output = call_with_retries(
                attempt, self.spec.config.retry, sleep=self._sleep, before_sleep=self._log_retry
            )
        except AgentCodeFailed as exc:
            fallback = self.code.hook("fallback")
            if fallback is None:
                raise
            cause = exc.__cause__ or exc
            self.log.warning("run.degraded", error=exc.message)
            run.restart(fresh_state())
            try:
                output = self.call_agent("fallback()", fallback, params, ctx, cause)
            except AgentCodeFailed as fallback_exc:
                raise AgentCodeFailed(
                    f"{exc.message}; then {fallback_exc.message}", agent=self.name
                ) from fallback_exc.__cause__
            _raise_if_stopped(guards)
            return output, True
        return output, False

    def _sleep(self, seconds: float) -> None:
        # Armed, so the timeout or a SIGTERM ends a long Retry-After wait too.
        try:
            with self.interrupts.armed():
                self.sleep(seconds)
        except StopRun as stop:
            raise stop.error(
                self.name, "the wait before a retry", self.spec.config.timeout
            ) from None

    def _log_retry(self, attempt: int, failure: Failure, wait_s: float) -> None:
        self.log.warning(
            "retry.attempt",
            attempt=attempt,
            category=failure.category,
            wait_s=round(wait_s, 3),
            error=failure.message,
        )

    # -- 4 output ----------------------------------------------------------------------

    def check_output(self, output: Any) -> BaseModel:
        """Gate 4: the Result model, then ``validate()``; a rejection rolls back."""
        ctx = self.run.ctx
        try:
            result = self._as_result(output)
            self._check_confidence(result)
            validate = self.code.hook("validate")
            if validate is not None:
                try:
                    self.call_agent("validate()", validate, result, ctx)
                except AgentCodeFailed as exc:
                    cause = exc.__cause__ or exc
                    raise OutputRejected(
                        f"{self.name}: output rejected by validate(): {cause}",
                        agent=self.name,
                        errors=[str(cause)],
                    ) from cause
        except OutputRejected as rejected:
            self.log.warning("gate.rejected", stage="output", errors=rejected.errors)
            self.roll_back(output)
            raise
        return result

    def _check_confidence(self, result: BaseModel) -> None:
        # Only where it routes (an apply() hook): NaN would pass every threshold.
        confidence = getattr(result, "confidence", None)
        if confidence is None or self.code.hook("apply") is None:
            return
        number = isinstance(confidence, int | float) and not isinstance(confidence, bool)
        if not number or not 0 <= confidence <= 1:
            error = f"confidence must be a number from 0 to 1, not {confidence!r}"
            raise OutputRejected(
                f"{self.name}: output rejected: {error}", agent=self.name, errors=[error]
            )

    def roll_back(self, output: Any) -> None:
        """Call ``rollback()`` on a rejected output, then undo the run's committed actions."""
        rollback = self.code.hook("rollback")
        if rollback is not None:
            self.log.info("rollback.started")
            try:
                self.call_agent("rollback()", rollback, output, self.run.ctx)
            except AgentCodeFailed as exc:
                self.log.error("rollback.failed", error=exc.message)
            else:
                self.log.info("rollback.finished")
        self.run.guards.undo_committed(self.call_agent)

    def _as_result(self, output: Any) -> BaseModel:
        model = self.code.result_model
        if not isinstance(output, dict | BaseModel):
            errors = [f"run() returned {type(output).__name__}, not {model.__name__}"]
        else:
            # An instance is checked again: it may have been changed after it was
            # made, or made with model_construct(), which validates nothing.
            data = output.model_dump(warnings=False) if isinstance(output, BaseModel) else output
            try:
                result = self._validate(model, data, "Result")
                _check_json(result)
            except ValidationError as exc:
                errors = _describe(exc)
            except AgentCodeFailed as exc:  # a validator raised something else
                errors = [exc.message]
            except ValueError as exc:  # not serializable, NaN, UnicodeDecodeError
                errors = [f"the result is not JSON: {exc}"]
            else:
                return result
        raise OutputRejected(
            f"{self.name}: output rejected: {'; '.join(errors)}", agent=self.name, errors=errors
        )

    # -- 5 route -----------------------------------------------------------------------

    def route(self, result: BaseModel) -> str:
        """Gate 5: apply the result now, or say it must be held or escalated.

        Without an ``apply()`` hook there is nothing to route: the run is done.
        """
        apply = self.code.hook("apply")
        if apply is None:
            return APPLIED
        confidence = getattr(result, "confidence", None)
        guard = self.spec.config.guard
        if confidence is not None and confidence < guard.auto_threshold:
            return HELD if confidence >= guard.review_threshold else ESCALATED
        self.apply(result)
        return APPLIED

    def apply(self, result: BaseModel) -> None:
        """Perform a result with the agent's ``apply()``, under the run's guards."""
        apply = self.code.hook("apply")
        if apply is not None:
            self.call_agent("apply()", apply, result, self.run.ctx)
            _raise_if_stopped(self.run.guards)

    # -- calling agent code --------------------------------------------------------------

    def call_agent(self, what: str, function: Callable[..., Any], *args: Any) -> Any:
        """Call agent code under the timeout; however it ends badly becomes an agentops error.

        A copy of the run the agent forked (``os.fork()``) that comes back out
        of its code ends there, as a ``multiprocessing`` child does: it is
        one of the run's processes, not the run, and must not end the run.
        """
        pid = os.getpid()
        try:
            with self.interrupts.armed():
                try:
                    return function(*args)
                finally:
                    if os.getpid() != pid:
                        _end_forked_copy()
        except StopRun as stop:
            raise stop.error(self.name, what, self.spec.config.timeout) from None
        except GuardStop as stop:
            raise stop.error from None
        except BaseException as exc:  # sys.exit(), CancelledError: still a failed task
            raise AgentCodeFailed(
                f"{self.name}: {what} raised {type(exc).__name__}: {exc}", agent=self.name
            ) from exc


def _end_forked_copy() -> NoReturn:
    # Gone before any of the run's own ending runs in it: no state saved, no
    # lock, pipe or log touched. Not even a flush: the output's capture may
    # wait on a lock a thread of the run held at the fork, which no thread
    # of the copy will ever release.
    os._exit(1 if sys.exc_info()[0] is not None else 0)


def _check_json(result: BaseModel) -> None:
    # A result is logged and may be held for review (in the state file, three
    # levels down): JSON, every number finite, and not nested too deeply.
    check_readable(result.model_dump(mode="json"), inside=3)


def _raise_if_stopped(guards: RunGuards) -> None:
    # A guard tripped but the agent swallowed the stop: the run ends anyway.
    if guards.stopped is not None:
        raise guards.stopped


def _describe(exc: ValidationError) -> list[str]:
    # Input values are left out: a rejected param may well be a secret.
    return [
        f"{'.'.join(str(p) for p in error['loc']) or 'value'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    ]
