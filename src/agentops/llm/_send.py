"""One request to one model: money reserved, sent, read by its wire format, settled, retried.

For each attempt the worst case (the prompt's bound plus ``max_tokens``, at
the dearest price its prompt may have) is reserved through the budget
guard, so a call that could pass a cap is refused before any request leaves
the machine. The request goes through ``ctx.http`` (logged,
``[permissions] hosts``, ``requests_per_minute``). The provider's wire
format says whether the answer is an error (settled to 0: nothing was
billed) and reads the reply, whose ``usage`` settles the reservation (an
estimate where it says nothing, never zero). A reply that never came keeps
the reservation, and so does one that came garbled without a word of its
usage: money that may have been spent is never forgotten. Each attempt that
got no usable reply logs ``llm.error`` with the provider's own words.
Transient failures are retried by the agent's ``[retry]`` policy; a wait
longer than the run has left gives up on the model at once, before saying
it would wait.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import httpx

from agentops.guards.facade import GuardStop
from agentops.guards.failure import Failure, classify
from agentops.guards.retry import call_with_retries
from agentops.llm._block import Blocks
from agentops.llm._replies import Paid
from agentops.llm.providers.base import UnreadableReply
from agentops.llm.tokens import Sizes, estimate

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from agentops._infra.log import EventLogger
    from agentops._infra.redact import Redactor
    from agentops.guards.facade import RunGuards
    from agentops.llm.providers.base import (
        ChatReply,
        ChatRequest,
        Usage,
        WireError,
        WireFormat,
        WireRequest,
    )
    from agentops.llm.routes import Route
    from agentops.model.state import Metrics
    from agentops.project.config import Llm, Retry

__all__ = ["ErrorAnswer", "ModelFailed", "Sender", "Unsupported", "category_of"]

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

_TOOL_OVERHEAD = 16
"""Tokens a tool offered costs beyond its name, description and schema (the format's own)."""

_OTHER_TOKEN_PARAM = {"max_tokens": "max_completion_tokens", "max_completion_tokens": "max_tokens"}


class ModelFailed(Exception):
    """The model gave no usable reply: the next one is tried."""


class Unsupported(ModelFailed):
    """The provider refused a part of the request (``feature``): asked plainer, it may answer."""

    def __init__(self, message: str, feature: str) -> None:
        """``feature``: what it refused (:data:`~agentops.llm.providers.base.Unsupported`)."""
        super().__init__(message)
        self.feature = feature


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
        self._logged_names: dict[str, str] = {}  # a model's name as the log may hold it
        self._funds: RunGuards | Blocks = guards  # where each attempt's worst case is held

    @contextlib.contextmanager
    def in_blocks(self, *, turns: int) -> Iterator[None]:
        """Hold the money of the calls made inside in blocks (:mod:`._block`): a tool loop's."""
        outer, blocks = self._funds, Blocks(self._guards, turns=turns)
        self._funds = blocks
        try:
            yield
        finally:
            self._funds = outer
            blocks.close()

    def send(
        self,
        route: Route,
        wire: WireFormat,
        request: ChatRequest,
        built: WireRequest,
        *,
        sizes: Sizes | None = None,
    ) -> Paid:
        """Send ``built`` (``request`` in ``wire``'s format); ``ModelFailed`` if no reply came.

        :class:`Unsupported` when the provider refused a part of the request.
        ``sizes``: the conversation's token figures, kept from turn to turn (a tool loop's).
        """
        logged = self._logged_names.get(route.name)
        if logged is None:  # redacted once: llm.call is written without a second pass
            logged = self._logged_names[route.name] = str(self._redactor.value(route.name))
        sizes = Sizes() if sizes is None else sizes  # one call: its own figures
        call = _Call(route, wire, request, built, logged_name=logged, sizes=sizes)
        attempt = 0

        def attempt_once() -> Paid:
            nonlocal attempt
            attempt += 1
            try:
                return self._attempt(call, attempt)
            except Exception as exc:
                self._tell_failed(route, attempt, exc)
                raise

        def retrying(number: int, failure: Failure, wait_s: float) -> None:
            left = self._guards.interrupts.remaining_s()
            if wait_s >= left:  # said before any llm.retry: no wait is announced and not taken
                raise _NoTimeLeft(
                    f"a retry would wait {wait_s:.0f}s, and the run has {left:.0f}s left"
                )
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
                attempt_once,
                self._retry,
                sleep=self._guards.sleep,
                before_sleep=retrying,
                classify=_failure_of,
            )
        except _NoTimeLeft as exc:
            raise ModelFailed(str(exc)) from None
        except ErrorAnswer as exc:
            if exc.error.unsupported is not None:
                raise Unsupported(str(exc), exc.error.unsupported) from None
            raise ModelFailed(str(exc)) from None
        except (httpx.HTTPError, ValueError) as exc:
            raise ModelFailed(f"{type(exc).__name__}: {exc}") from None
        return paid

    def _attempt(self, call: _Call, attempt: int) -> Paid:
        client = self._http()  # made before the clock starts: latency is the request's alone
        # Refused here, before anything is sent, if it could pass a cap.
        funds = self._funds  # the same for the attempt's settling, whatever happens meanwhile
        reservation = funds.reserve(usd=call.worst_usd, tokens=call.worst_tokens)
        started = time.perf_counter()
        try:
            response = client.post(
                call.built.url,
                content=call.content,
                headers=call.headers,
                timeout=self._config.timeout,
            )
        except (GuardStop, *_NOT_SENT):
            # Never sent (a refused host, the request limit, no connection): nothing billed.
            funds.settle(reservation, usd=0.0, tokens=0)
            raise
        # A timeout or a broken answer may have been billed: the reservation stands.
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        error = call.wire.error(response)
        if error is not None:  # an error answer: nothing was billed
            funds.settle(reservation, usd=0.0, tokens=0)
            raise ErrorAnswer(error, self._described(call.route, error, response))
        try:
            reply = call.wire.parse(response)
        except UnreadableReply as exc:
            if exc.usage is not None and exc.usage.said:  # what it said it cost, it cost
                self._settle(funds, call, reservation, exc.usage)
            raise
        usage = _estimated(reply, call.estimate_in)
        cost = self._settle(funds, call, reservation, usage)
        self._metrics.llm_calls += 1
        self._log_call(call, reply, usage, cost=cost, latency_ms=latency_ms, attempt=attempt)
        return Paid(reply, usage, cost, latency_ms)

    def _settle(
        self, funds: RunGuards | Blocks, call: _Call, reservation: str, usage: Usage
    ) -> float | None:
        cost = call.route.cost_of(usage)
        tokens = usage.input_tokens + usage.output_tokens
        funds.settle(reservation, usd=cost or 0.0, tokens=tokens)
        if tokens > call.worst_tokens or (cost or 0.0) > call.worst_usd:
            # Tokens the provider added itself (a chat template, hidden reasoning):
            # paid all the same, and counted, so the next cost past a cap is refused.
            self._log.warning(
                "budget.overrun",
                model=call.route.name,
                reserved_tokens=call.worst_tokens,
                tokens=tokens,
                reserved_usd=call.worst_usd,
                usd=cost,
            )
        return cost

    def _log_call(
        self,
        call: _Call,
        reply: ChatReply,
        usage: Usage,
        *,
        cost: float | None,
        latency_ms: float,
        attempt: int,
    ) -> None:
        line: dict[str, str | float | None] = {
            "model": call.logged_name,
            "tokens_in": usage.input_tokens,
            "tokens_out": usage.output_tokens,
            "cost_usd": cost,
            "latency_ms": latency_ms,
            "cached": False,
            "attempt": attempt,
            "finish_reason": None if reply.finish_reason is None else str(reply.finish_reason),
        }
        line.update(
            (name, value)
            for name, value in (
                ("tokens_cached", usage.cached_tokens),
                ("tokens_cache_write", usage.cache_write_tokens),
                ("tokens_reasoning", usage.reasoning_tokens),
            )
            if value
        )
        if not self._config.log_bodies:
            # Numbers, and words redacted already: the line needs no second pass.
            self._log.info_redacted("llm.call", **line)
            return
        request = [
            {**message, "content": self._loggable(str(message.get("content") or ""))}
            for message in call.request.messages
        ]
        reply_text = None if reply.text is None else self._loggable(reply.text)
        self._log.info("llm.call", **line, request=request, reply=reply_text)

    def _tell_failed(self, route: Route, attempt: int, exc: Exception) -> None:
        failure = _failure_of(exc)
        self._log.warning(
            "llm.error",
            model=route.name,
            attempt=attempt,
            status=exc.error.status if isinstance(exc, ErrorAnswer) else None,
            category=failure.category,
            transient=failure.transient,
            error=failure.message,
        )

    def _described(self, route: Route, error: WireError, response: httpx.Response) -> str:
        # The status as HTTP names it (or the 2xx that carried the error), then the
        # provider's words, redacted: a body may echo what was sent.
        status = response.status_code
        if 200 <= status < 300:  # noqa: PLR2004 - HTTP semantics
            said = f"an error in a {status} answer"
        else:
            said = f"HTTP {status} {response.reason_phrase}".rstrip()
        if error.message is not None:
            said += f": {self._redactor.value(str(error.message))}"
        if error.unsupported == "token_param":
            other = _OTHER_TOKEN_PARAM.get(route.token_param, "max_completion_tokens")
            said += f' (try token_param = "{other}" in [models."{route.name}"])'
        return said


class _Call:
    """One request ready to send, whatever its attempt: its bytes and what it may cost."""

    __slots__ = (
        "built",
        "content",
        "estimate_in",
        "headers",
        "logged_name",
        "request",
        "route",
        "wire",
        "worst_tokens",
        "worst_usd",
    )

    def __init__(
        self,
        route: Route,
        wire: WireFormat,
        request: ChatRequest,
        built: WireRequest,
        *,
        logged_name: str,
        sizes: Sizes,
    ) -> None:
        self.route = route
        self.logged_name = logged_name
        self.wire = wire
        self.request = request
        self.built = built
        self.headers = {**_HEADERS, **built.headers}
        # Encoded once, before any reservation: a body that cannot be sent holds no money.
        self.content = json.dumps(built.body, ensure_ascii=False, allow_nan=False).encode()
        # The reservation must be a true bound: the tools offered are sent too.
        tools = sum(
            _TOOL_OVERHEAD
            + len(json.dumps([spec.name, spec.description, spec.parameters]).encode())
            for spec in request.tools
        )
        most_in = sizes.bound(request.messages) + tools
        self.estimate_in = sizes.estimate(request.messages) + tools // 3
        self.worst_tokens = most_in + request.max_tokens
        worst = route.worst_usd(most_in, request.max_tokens, cache_write=request.cache_system)
        self.worst_usd = worst or 0.0


def _estimated(reply: ChatReply, estimate_in: int) -> Usage:
    """The reply's usage, an estimate where it says nothing: never zero."""
    usage = reply.usage
    if usage.input_tokens and usage.output_tokens:  # the provider said both: the common case
        return usage
    return replace(
        usage,
        input_tokens=usage.input_tokens or estimate_in,
        output_tokens=usage.output_tokens or estimate(reply.text or ""),
    )


def _failure_of(exc: BaseException) -> Failure:
    # An error answer is what its wire format says; anything else (a timeout, a
    # refused connection, a garbled reply) is classified as for any HTTP call.
    return exc.failure if isinstance(exc, ErrorAnswer) else classify(exc)
