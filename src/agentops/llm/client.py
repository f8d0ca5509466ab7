"""``ctx.llm``: calls to the models of ``agentops.toml``, guarded, whatever their provider.

One :meth:`LLMClient.complete` goes down the agent's chain of models (the
one asked for, or ``[llm] model``, then ``fallbacks``). For each model:

1. the conversation is pruned to the model's context window;
2. the cache (``[llm] cache``) and the replies of this run's earlier
   attempts are looked up: a hit sends nothing and costs nothing
   (:mod:`._replies`);
3. the request is made in the wire format of the model's provider
   (:mod:`agentops.llm.providers`) and sent with its worst case reserved
   through the budget guard, retried on transient failures, and settled to
   the reply's ``usage`` (:mod:`._send`);
4. secrets and personal data in the reply are redacted (or the reply is
   refused), and with ``schema`` the reply is parsed and validated; a
   malformed one is asked again with the error, ``max_reasks`` times
   (:mod:`._prompt`).

A model that still fails hands over to the next. When every model has
failed, :class:`~agentops.errors.LLMUnavailable` reaches the agent (and its
``fallback()``), and the run does not retry it: that would send every
earlier prompt again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from agentops.errors import LLMUnavailable, PromptTooLarge, ReplyRejected
from agentops.llm._prompt import ask_for_json, check_temperature, messages_of, parse_reply, reask
from agentops.llm._replies import Replies
from agentops.llm._send import ModelFailed, Sender
from agentops.llm.cache import request_key
from agentops.llm.content import MAX_UNTRUSTED_CHARS, filter_reply, wrap_untrusted
from agentops.llm.providers import wire_format
from agentops.llm.providers.base import ChatRequest
from agentops.llm.tokens import estimate_messages, prune

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import httpx

    from agentops._infra.log import EventLogger
    from agentops._infra.redact import Redactor
    from agentops.guards.facade import RunGuards
    from agentops.llm._replies import Paid
    from agentops.llm.content import UntrustedText
    from agentops.llm.routes import Route
    from agentops.model.state import Metrics
    from agentops.project.config import Llm, Retry
    from agentops.store import ReplyStore

__all__ = ["Completion", "LLMClient"]

_S = TypeVar("_S", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Completion:
    """A model's reply, and what it cost."""

    text: str
    """The reply, secrets and personal data redacted (``[guard] pii``)."""
    parsed: Any
    """With ``schema``: the reply as that pydantic model; else None."""
    model: str
    """The model that answered (its name in ``[models]``)."""
    tokens_in: int
    tokens_out: int
    cost_usd: float | None
    """What it cost (0 from the cache; None for a model without prices)."""
    cached: bool
    """Whether it came from the cache (or an earlier attempt of this run): nothing was sent."""
    latency_ms: float


class _TooLarge(ModelFailed):
    """The request does not fit this model's window."""


class LLMClient:
    """The run's model client: ``ctx.llm``.

    An agent calls :meth:`complete` and :meth:`untrusted`, and may read
    :attr:`config`. The run itself starts each attempt afresh with
    ``_rewind()`` and releases the client with ``_close()``.
    """

    def __init__(
        self,
        *,
        config: Llm,
        route: Callable[[str], Route],
        http: Callable[[], httpx.Client],
        guards: RunGuards,
        retry: Retry,
        log: EventLogger,
        redactor: Redactor,
        metrics: Metrics,
        pii: str,
        cache: ReplyStore | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Made by the run on first use of ``ctx.llm``."""
        self._config = config
        self._route = route
        self._log = log
        self._redactor = redactor
        self._metrics = metrics
        self._pii = pii
        self._replies = Replies(
            cache=cache, metrics=metrics, log=log, redactor=redactor, wall_clock=wall_clock
        )
        self._sender = Sender(
            config=config,
            http=http,
            guards=guards,
            retry=retry,
            log=log,
            redactor=redactor,
            metrics=metrics,
            loggable=self._loggable,
        )

    @property
    def config(self) -> Llm:
        """The agent's ``[llm]`` settings (read only)."""
        return self._config

    # -- the calls ---------------------------------------------------------------------

    def complete(
        self,
        prompt: str | Sequence[dict[str, Any]],
        *,
        model: str | None = None,
        tier: str | None = None,
        schema: type[_S] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion:
        """Ask the chain of models; the first usable reply wins.

        ``prompt`` is the user's message, or a list of ``{"role", "content"}``
        messages. ``model`` or ``tier`` (a name of ``[llm] tiers``) picks the
        first model; ``[llm] fallbacks`` follow. With ``schema`` (a pydantic
        model) the reply is JSON validated into ``.parsed``.
        """
        messages = messages_of(prompt)
        if tier is not None and tier not in self._config.tiers:
            raise ValueError(f"no tier {tier!r} in [llm] tiers")
        chain = self._config.chain(model, tier)
        if not chain:
            raise ValueError("no model to call: set [llm] model in agent.toml or pass model=")
        limit = self._config.max_tokens if max_tokens is None else max_tokens
        if not (isinstance(limit, int) and limit >= 1):
            raise ValueError(f"max_tokens must be a positive int, not {limit!r}")
        warmth = self._config.temperature if temperature is None else temperature
        check_temperature(warmth)
        json_schema = None
        if schema is not None:
            json_schema = schema.model_json_schema()
            messages = ask_for_json(messages, json_schema)
        failures: list[str] = []
        too_large = 0
        for name in chain:
            try:
                # ValueError if it cannot be called as configured (routes.route)
                return self._complete_with(
                    self._route(name),
                    messages,
                    schema=schema,
                    json_schema=json_schema,
                    max_tokens=limit,
                    temperature=warmth,
                )
            except ModelFailed as exc:
                too_large += isinstance(exc, _TooLarge)
                failures.append(f"{name}: {exc}")
                self._log.warning("llm.model_failed", model=name, error=str(exc))
        summary = "; ".join(failures)
        if too_large == len(chain):
            raise PromptTooLarge(f"the request does not fit any model: {summary}")
        raise LLMUnavailable(f"every model failed: {summary}")

    def untrusted(
        self, text: str, *, source: str, max_chars: int = MAX_UNTRUSTED_CHARS
    ) -> UntrustedText:
        """``text`` from outside (a page, an email), wrapped as data for a prompt.

        Between delimiters no content can forge, cut to ``max_chars``, with a
        line telling the model not to follow instructions in it. Known
        injection phrasing is logged (``guard.injection_suspected``), counted,
        and named in ``.suspected``: the agent decides what to do.
        """
        wrapped = wrap_untrusted(str(text), source=source, max_chars=max_chars)
        source = wrapped.source  # a URL parameter is often a pydantic HttpUrl: now text
        if wrapped.suspected:
            self._metrics.injections_suspected += 1
            self._log.warning(
                "guard.injection_suspected", source=source, phrases=list(wrapped.suspected)
            )
        return wrapped

    # -- for the run -------------------------------------------------------------------

    def _rewind(self) -> None:
        """A new attempt (a retry, or ``fallback()``) replays the replies earlier ones had."""
        self._replies.rewind()

    def _close(self) -> None:
        """Release what the client opened (the cache)."""
        self._replies.close()

    # -- one model ---------------------------------------------------------------------

    def _complete_with(
        self,
        route: Route,
        messages: list[dict[str, str]],
        *,
        schema: type[BaseModel] | None,
        json_schema: dict[str, Any] | None,
        max_tokens: int,
        temperature: float | None,
    ) -> Completion:
        wire = wire_format(route.kind)
        request = ChatRequest(
            model=route.model,
            messages=self._fit(route, messages, max_tokens),
            max_tokens=max_tokens,
            temperature=temperature,
            want_json=schema is not None and route.json_mode,
            schema=json_schema,
        )
        for ask in range(1, self._config.max_reasks + 2):
            built = wire.build(request, route)
            key = request_key({"url": built.url, "body": built.body})
            reply = self._replies.known(key)
            cached = reply is not None
            if reply is None:
                reply = self._sender.send(route, wire, request, built)
                self._replies.keep(key, reply)
            text = self._screen(reply.text, route)
            parsed = None
            if schema is not None:
                try:
                    parsed = parse_reply(text, schema)
                except ValueError as exc:
                    self._log.warning("llm.malformed", model=route.name, ask=ask, error=str(exc))
                    if ask > self._config.max_reasks:
                        raise ModelFailed(f"no valid reply in {ask} asks: {exc}") from None
                    request = replace(request, messages=[*request.messages, *reask(text, str(exc))])
                    continue
            if not cached:
                self._replies.store(key, reply, text)
            return self._completed(route, reply, text, parsed, cached=cached)
        raise AssertionError("unreachable")  # pragma: no cover

    def _fit(
        self, route: Route, messages: list[dict[str, str]], max_tokens: int
    ) -> list[dict[str, str]]:
        window = route.context_window
        if window is None:
            return messages
        budget = window - max_tokens
        kept, dropped = prune(messages, budget)
        size = estimate_messages(kept)
        if size > budget:
            raise _TooLarge(
                f"a prompt of about {size} tokens and max_tokens {max_tokens} do not fit "
                f"its context window of {window}"
            )
        if dropped:
            self._log.warning(
                "llm.pruned",
                model=route.name,
                dropped=dropped,
                tokens_before=estimate_messages(messages),
                tokens_after=size,
            )
        return kept

    def _screen(self, text: str, route: Route) -> str:
        if self._pii == "off":
            return text
        cleaned, kinds = filter_reply(text, self._redactor, redact=self._pii == "redact")
        if kinds:
            self._log.warning("llm.pii_found", model=route.name, kinds=kinds, action=self._pii)
            if self._pii == "reject":
                raise ReplyRejected(
                    f"{route.name}'s reply held {', '.join(kinds)}, and [guard] pii is reject"
                )
        return cleaned

    def _loggable(self, text: str) -> str:
        # The log keeps a reply longer than the agent does: no personal data in it
        # unless [guard] pii is off (the log redacts secrets itself).
        return text if self._pii == "off" else filter_reply(text, self._redactor, redact=True)[0]

    def _completed(
        self, route: Route, reply: Paid, text: str, parsed: Any, *, cached: bool
    ) -> Completion:
        if cached:
            self._log.info(
                "llm.call",
                model=route.name,
                tokens_in=reply.tokens_in,
                tokens_out=reply.tokens_out,
                cost_usd=0.0,
                latency_ms=0.0,
                cached=True,
                attempt=0,
            )
        return Completion(
            text=text,
            parsed=parsed,
            model=route.name,
            tokens_in=reply.tokens_in,
            tokens_out=reply.tokens_out,
            cost_usd=0.0 if cached else reply.cost_usd,
            cached=cached,
            latency_ms=0.0 if cached else reply.latency_ms,
        )
