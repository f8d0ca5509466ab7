"""Retries on transient failures, built on tenacity from ``[retry]``: one policy, two users.

A run retries ``run()`` (its failures reach it wrapped in
:class:`~agentops.errors.AgentCodeFailed`: :func:`failure_of`), and
``ctx.llm`` retries each model call (its failures are httpx's own:
:func:`~agentops.guards.failure.classify`). Only failures classified transient are
retried: timeouts, connection errors, 429 and 5xx responses, and the agent's
own :class:`~agentops.errors.TransientError`. The wait grows exponentially
with jitter from ``initial`` up to ``max``; a ``Retry-After`` is honoured
instead, capped by ``max``. ``sleep`` is a parameter so tests run instantly.

The first attempt is a plain call: tenacity is imported only when a run has
to retry, because cron pays every import on every tick.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

from agentops.errors import AgentCodeFailed

if TYPE_CHECKING:
    from collections.abc import Callable

    import tenacity

    from agentops.guards.failure import Failure
    from agentops.project.config import Retry

__all__ = ["call_with_retries", "failure_of", "wait_s"]


def failure_of(exc: BaseException) -> Failure | None:
    """The classified failure behind :class:`AgentCodeFailed`, else None.

    Timeouts, interrupts and tripped guards are other errors: never retried.
    """
    if isinstance(exc, AgentCodeFailed) and exc.__cause__ is not None:
        from agentops.guards.failure import classify  # noqa: PLC0415 - only runs that fail need it

        return classify(exc.__cause__)
    return None


def wait_s(
    spec: Retry, attempt: int, failure: Failure, *, jitter: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first)."""
    asked = failure.retry_after_s
    if asked is not None and math.isfinite(asked):
        return min(max(asked, 0.0), spec.max)
    return min(spec.max, spec.initial * 2.0 ** (attempt - 1) + jitter() * spec.initial)


def call_with_retries(
    call: Callable[[], Any],
    spec: Retry,
    *,
    sleep: Callable[[float], None],
    before_sleep: Callable[[int, Failure, float], None],
    classify: Callable[[BaseException], Failure | None] = failure_of,
) -> Any:
    """``call()``, retried on transient failures up to ``spec.attempts`` attempts in all.

    ``classify`` says what an exception is (None: not a failure to retry,
    such as a guard's stop); the default reads a run's wrapped failures.
    ``before_sleep(attempt, failure, wait_s)`` is told of each retry, to log
    it; ``sleep`` may raise to give up instead of waiting.
    """
    try:
        return call()
    except Exception as exc:
        first = classify(exc)
        if first is None or not first.transient or spec.attempts < 2:  # noqa: PLR2004
            raise
    wait = wait_s(spec, 1, first)
    before_sleep(1, first, wait)
    sleep(wait)
    return _retrying(spec, sleep=sleep, before_sleep=before_sleep, classify=classify)(call)


def _retrying(
    spec: Retry,
    *,
    sleep: Callable[[float], None],
    before_sleep: Callable[[int, Failure, float], None],
    classify: Callable[[BaseException], Failure | None],
) -> tenacity.Retrying:
    import tenacity  # noqa: PLC0415 - only calls that retry pay for it

    # tenacity counts from the second attempt, hence the + 1 below.
    def transient(exc: BaseException) -> bool:
        failure = classify(exc)
        return failure is not None and failure.transient

    def failure(state: tenacity.RetryCallState) -> Failure:
        exc = state.outcome.exception() if state.outcome else None
        found = classify(exc) if exc else None
        if found is None:  # only transient failures are retried, so this cannot happen
            raise RuntimeError("retry without a classified failure")
        return found

    def wait(state: tenacity.RetryCallState) -> float:
        return wait_s(spec, state.attempt_number + 1, failure(state))

    def announce(state: tenacity.RetryCallState) -> None:
        pause = state.next_action.sleep if state.next_action else 0.0
        before_sleep(state.attempt_number + 1, failure(state), pause)

    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(spec.attempts - 1),
        wait=wait,
        retry=tenacity.retry_if_exception(transient),
        sleep=sleep,
        before_sleep=announce,
        reraise=True,
    )
