"""One request to one model: money reserved, sent, read by its wire format, settled, retried.

For each attempt the worst case (the prompt's bound plus ``max_tokens``, at
the model's prices) is reserved through the budget guard, so a call that
could pass a cap is refused before any request leaves the machine. The
request goes through ``ctx.http`` (logged, ``[permissions] hosts``,
``requests_per_minute``). The provider's wire format says whether the answer
is an error (settled to 0: nothing was billed) and reads the reply, whose
``usage`` settles the reservation (an estimate when it has none, never
zero); a reply that never came, or came garbled, keeps the reservation:
money that may have been spent is never forgotten. Transient failures are
retried by the agent's ``[retry]`` policy; a wait longer than the run has
left gives up on the model at once.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import httpx

from agentops.guards.facade import GuardStop
from agentops.guards.failure import Failure, classify
from agentops.guards.retry import call_with_retries
from agentops.llm._replies import Paid
from agentops.llm.tokens import bound_messages, estimate, estimate_messages

if TYPE_CHECKING:
    from collections.abc import Callable

    from agentops._infra.log import EventLogger
    from agentops._infra.redact import Redactor
    from agentops.guards.facade import RunGuards
    from agentops.llm.providers.base import (
        ChatReply,
        ChatRequest,
        WireError,
        WireFormat,
        WireRequest,
    )
    from agentops.llm.routes import Route
    from agentops.model.state import Metrics
    from agentops.project.config import Llm, Retry

__all__ = ["ErrorAnswer", "ModelFailed", "Sender", "category_of"]

_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
    httpx.InvalidURL,
)
"""Failures before a request reached the provider: nothing can have been billed."""

_HEADERS = {"Content-Type": "application/json"}


class ModelFailed(Exception):
    """The model gave no usable reply: the next one is tried."""


class ErrorAnswer(Exception):
    """The provider answered with an error, as its wire format read the answer."""

    def __init__(self, error: WireError, described: str) -> None:
        """``described``: what the operator reads of it."""
        super().__init__(described)
        self.error = error

    @property
    def failure(self) -> Failure:
        """The failure it is, for the retry policy and the log."""
        return Failure(
            category_of(self.error.status),
            str(self),
            transient=self.error.transient,
            retry_after_s=self.error.retry_after_s,
        )


class _NoTimeLeft(Exception):
    """A retry's wait would outlast the run."""


def category_of(status: int) -> str:
    """The failure category of an HTTP status, named as ``guards.failure.classify`` names it."""
    if status == 429:  # noqa: PLR2004 - HTTP semantics
        return "http_429"
    if status >= 500:  # noqa: PLR2004
        return "http_5xx"
    if status == 408:  # noqa: PLR2004
        return "timeout"
    return "permission" if status in (401, 403) else "http_4xx"


class Sender:
    """Sends a model's requests for the run's ``ctx.llm``."""

    def __init__(
        self,
        *,
        config: Llm,
        http: Callable[[], httpx.Client],
        guards: RunGuards,
        retry: Retry,
        log: EventLogger,
        redactor: Redactor,
        metrics: Metrics,
        loggable: Callable[[str], str],
    ) -> None:
        """``loggable``: text as the log may keep it (personal data filtered: ``[guard] pii``)."""
        self._config = config
        self._http = http
        self._guards = guards
        self._retry = retry
        self._log = log
        self._redactor = redactor
        self._metrics = metrics
        self._loggable = loggable

    def send(
        self, route: Route, wire: WireFormat, request: ChatRequest, built: WireRequest
    ) -> Paid:
        """Send ``built`` (``request`` in ``wire``'s format); ``ModelFailed`` if no reply came."""
        headers = {**_HEADERS, **built.headers}
        # Encoded once, before any reservation: a body that cannot be sent holds no money.
        content = json.dumps(built.body, ensure_ascii=False, allow_nan=False).encode()
        estimate_in = estimate_messages(request.messages)
        most_in = bound_messages(request.messages)  # the reservation must be a true bound
        worst_tokens = most_in + request.max_tokens
        worst_usd = route.cost_usd(most_in, request.max_tokens) or 0.0
        attempt = 0

        def call() -> Paid:
            nonlocal attempt
            attempt += 1
            # Refused here, before anything is sent, if it could pass a cap.
            reservation = self._guards.reserve(usd=worst_usd, tokens=worst_tokens)
            started = time.perf_counter()
            try:
                response = self._http().post(
                    built.url, content=content, headers=headers, timeout=self._config.timeout
                )
                reply = self._read(wire, response)
            except (ErrorAnswer, GuardStop, *_NOT_SENT):
                # Answered with an error, or never sent (a refused host, the request
                # limit, no connection): nothing was billed.
                self._guards.settle(reservation, usd=0.0, tokens=0)
                raise
            # Anything else (a timeout, a garbled reply) may have been billed:
            # the reservation stands.
            tokens_in = reply.usage.input_tokens or estimate_in
            tokens_out = reply.usage.output_tokens or estimate(reply.text)
            cost = route.cost_usd(tokens_in, tokens_out)
            self._guards.settle(reservation, usd=cost or 0.0, tokens=tokens_in + tokens_out)
            if tokens_in + tokens_out > worst_tokens:
                # Tokens the provider added itself (a chat template, hidden reasoning):
                # paid all the same, and counted, so the next cost past a cap is refused.
                self._log.warning(
                    "budget.overrun",
                    model=route.name,
                    reserved_tokens=worst_tokens,
                    tokens=tokens_in + tokens_out,
                    reserved_usd=worst_usd,
                    usd=cost,
                )
            latency_ms = round((time.perf_counter() - started) * 1000, 1)
            self._metrics.llm_calls += 1
            extra = (
                {
                    "request": [
                        {**message, "content": self._loggable(message["content"])}
                        for message in request.messages
                    ],
                    "reply": self._loggable(reply.text),
                }
                if self._config.log_bodies
                else {}
            )
            self._log.info(
                "llm.call",
                model=route.name,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                cost_usd=cost,
                latency_ms=latency_ms,
                cached=False,
                attempt=attempt,
                **extra,
            )
            return Paid(reply.text, tokens_in, tokens_out, cost, latency_ms)

        def retrying(number: int, failure: Failure, wait_s: float) -> None:
            self._log.warning(
                "llm.retry",
                model=route.name,
                attempt=number,
                category=failure.category,
                wait_s=round(wait_s, 3),
                error=failure.message,
            )

        try:
            paid: Paid = call_with_retries(
                call, self._retry, sleep=self._wait, before_sleep=retrying, classify=_failure_of
            )
        except (_NoTimeLeft, ErrorAnswer) as exc:
            raise ModelFailed(str(exc)) from None
        except (httpx.HTTPError, ValueError) as exc:
            raise ModelFailed(f"{type(exc).__name__}: {exc}") from None
        return paid

    def _read(self, wire: WireFormat, response: httpx.Response) -> ChatReply:
        error = wire.error(response)
        if error is not None:
            raise ErrorAnswer(error, self._described(error, response))
        return wire.parse(response)

    def _described(self, error: WireError, response: httpx.Response) -> str:
        # httpx's own words for an error status, as operators have always read them,
        # then the provider's (redacted: a body may echo what was sent).
        try:
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            said = f"HTTPStatusError: {exc}"
        else:  # a 2xx the format read as an error
            said = f"an error in a {response.status_code} answer"
        if error.message is None:
            return said
        return f"{said}: {self._redactor.value(str(error.message))}"

    def _wait(self, seconds: float) -> None:
        left = self._guards.interrupts.remaining_s()
        if seconds >= left:
            raise _NoTimeLeft(
                f"a retry would wait {seconds:.0f}s, and the run has {left:.0f}s left"
            )
        self._guards.sleep(seconds)


def _failure_of(exc: BaseException) -> Failure:
    # An error answer is what its wire format says; anything else (a timeout, a
    # refused connection, a garbled reply) is classified as for any HTTP call.
    return exc.failure if isinstance(exc, ErrorAnswer) else classify(exc)
