"""The gates every run passes through, in order.

1. params: ``[params]`` and command-line overrides validated by the Params model;
   a rejection means nothing is executed.
2. admit: the run rate limit (``[limits] runs``), counted in the state file.
3. execute: ``run(params, ctx)`` under the agent's timeout.
4. output: the Result model, then the agent's ``validate()``; a rejected output
   is handed to the agent's ``rollback()``.

Each gate raises the matching :mod:`agentops.errors` exception; the runner
turns it into the run's status and exit code.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from agentops import ratelimit
from agentops.errors import (
    Interrupted,
    OutputRejected,
    ParamsRejected,
    RateLimited,
    RunTimeout,
    TaskFailed,
)
from agentops.interrupts import StopRun

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from structlog.typing import FilteringBoundLogger

    from agentops.context import Context
    from agentops.interrupts import RunInterrupts
    from agentops.loader import AgentCode
    from agentops.project import AgentSpec
    from agentops.state import AgentState

__all__ = ["RUNS", "Gatekeeper"]

RUNS = "runs"
"""The ``rate_limits`` key under which admitted runs are counted."""


class Gatekeeper:
    """Applies one agent's gates to one run."""

    def __init__(
        self,
        spec: AgentSpec,
        code: AgentCode,
        *,
        log: FilteringBoundLogger,
        interrupts: RunInterrupts,
    ) -> None:
        """Gate runs of the agent described by ``spec`` and implemented by ``code``."""
        self.spec = spec
        self.code = code
        self.log = log
        self.interrupts = interrupts

    def check_params(self, overrides: Mapping[str, Any]) -> BaseModel:
        """Gate 1: agent.toml's ``[params]`` with ``overrides`` on top, validated."""
        values = {**self.spec.config.params, **overrides}
        try:
            return self.code.params_model.model_validate(values)
        except ValidationError as exc:
            errors = _describe(exc)
            self.log.warning("gate.rejected", stage="params", errors=errors)
            raise ParamsRejected(
                f"{self.spec.name}: params rejected: {'; '.join(errors)}",
                agent=self.spec.name,
                errors=errors,
            ) from exc

    def admit(self, state: AgentState, now: datetime) -> None:
        """Gate 2: refuse the run if its rate limit is spent, else count it."""
        rate = self.spec.config.limits.runs
        if rate is None:
            return
        recent = ratelimit.prune(state.rate_limits.get(RUNS, []), rate, now)
        wait = ratelimit.wait_s(recent, rate, now)
        if wait > 0:
            state.rate_limits[RUNS] = recent
            when = "it allows no runs" if math.isinf(wait) else f"room again in {wait:.0f}s"
            raise RateLimited(
                f"{self.spec.name}: run rate limit {rate} reached; {when}",
                agent=self.spec.name,
                retry_after_s=wait,
            )
        state.rate_limits[RUNS] = [*recent, now]

    def execute(self, params: BaseModel, ctx: Context) -> Any:
        """Gate 3: ``run(params, ctx)``, stopped by the timeout or a signal."""
        return self._call_agent("run", self.code.run, params, ctx)

    def check_output(self, output: Any, ctx: Context) -> BaseModel:
        """Gate 4: the Result model, then ``validate()``; a rejection calls ``rollback()``."""
        try:
            result = self._as_result(output)
            validate = self.code.hook("validate")
            if validate is not None:
                try:
                    self._call_agent("validate", validate, result, ctx)
                except TaskFailed as exc:
                    if isinstance(exc, RunTimeout | Interrupted):
                        raise
                    raise OutputRejected(
                        f"{self.spec.name}: output rejected by validate(): {exc.__cause__ or exc}",
                        agent=self.spec.name,
                        errors=[str(exc.__cause__ or exc)],
                    ) from exc.__cause__
        except OutputRejected as rejected:
            self.log.warning("gate.rejected", stage="output", errors=rejected.errors)
            self.rollback(output, ctx)
            raise
        return result

    def rollback(self, output: Any, ctx: Context) -> None:
        """Call the agent's ``rollback()`` on a rejected output; a failure is logged."""
        rollback = self.code.hook("rollback")
        if rollback is None:
            return
        self.log.info("rollback.started")
        try:
            self._call_agent("rollback", rollback, output, ctx)
        except TaskFailed as exc:
            self.log.error("rollback.failed", error=str(exc))
        else:
            self.log.info("rollback.finished")

    def _as_result(self, output: Any) -> BaseModel:
        model = self.code.result_model
        if isinstance(output, model):
            return output
        if not isinstance(output, dict | BaseModel):
            errors = [f"run() returned {type(output).__name__}, not {model.__name__}"]
        else:
            data = output.model_dump() if isinstance(output, BaseModel) else output
            try:
                return model.model_validate(data)
            except ValidationError as exc:
                errors = _describe(exc)
        raise OutputRejected(
            f"{self.spec.name}: output rejected: {'; '.join(errors)}",
            agent=self.spec.name,
            errors=errors,
        )

    def _call_agent(self, what: str, function: Callable[..., Any], *args: Any) -> Any:
        try:
            with self.interrupts.armed():
                return function(*args)
        except StopRun as stop:
            if stop.reason == "timeout":
                raise RunTimeout(
                    f"{self.spec.name}: {what}() passed the timeout of "
                    f"{self.spec.config.timeout:g}s",
                    agent=self.spec.name,
                ) from None
            raise Interrupted(
                f"{self.spec.name}: {what}() interrupted by {stop.signal_name}",
                agent=self.spec.name,
            ) from None
        except (Exception, SystemExit) as exc:  # sys.exit() must not skip saving the state
            raise TaskFailed(
                f"{self.spec.name}: {what}() raised {type(exc).__name__}: {exc}",
                agent=self.spec.name,
            ) from exc


def _describe(exc: ValidationError) -> list[str]:
    # Input values are left out: a rejected param may well be a secret.
    return [
        f"{'.'.join(str(p) for p in error['loc']) or 'value'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    ]
