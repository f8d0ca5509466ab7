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
   the reply's ``usage`` (:mod:`._send`); a provider that refuses the schema
   asked for is asked more plainly (``json_schema``, then ``json_object``,
   then the prompt alone) for the rest of the run;
4. a refusal raises :class:`~agentops.errors.ReplyRefused`; secrets and
   personal data in the reply are redacted (or the reply is refused); a
   reply cut short (the output limit, a content filter) or empty is never
   silent: with ``schema`` it is a reply that failed validation, else it is
   returned ``truncated`` and logged (``llm.truncated``), or, with
   ``allow_truncated=False``, the next model is asked; with ``schema`` the
   reply is parsed and validated, and a malformed one is asked again with
   the error, ``max_reasks`` times (:mod:`._prompt`).

A model that still fails hands over to the next. When every model has
failed, :class:`~agentops.errors.LLMUnavailable` reaches the agent (and its
``fallback()``), and the run does not retry it: that would send every
earlier prompt again.

:meth:`LLMClient.run` is the tool loop: each of its turns goes down the same
chain (the conversation kept across a fallback), the calls performed by
:mod:`._loop`. Its turns are neither cached nor pruned (a call and its
result are never parted).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from agentops.errors import (
    LLMUnavailable,
    PromptTooLarge,
    ReplyRefused,
    ReplyRejected,
)
from agentops.llm._loop import ToolLoop
from agentops.llm._prompt import (
    Malformed,
    ask_for_json,
    check_temperature,
    messages_of,
    parse_reply,
    reask,
)
from agentops.llm._replies import Replies
from agentops.llm._send import ModelFailed, Sender, Unsupported
from agentops.llm.cache import request_key
from agentops.llm.completion import Completion
from agentops.llm.content import MAX_UNTRUSTED_CHARS, filter_reply, wrap_untrusted
from agentops.llm.providers import wire_format
from agentops.llm.providers.base import ChatRequest
from agentops.llm.tokens import Sizes, estimate_messages, prune

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import httpx

    from agentops._infra.log import EventLogger
    from agentops._infra.redact import Redactor
    from agentops.guards.facade import RunGuards
    from agentops.llm._replies import Paid
    from agentops.llm.content import UntrustedText
    from agentops.llm.providers.base import ChatReply, Structured, ToolSpec
    from agentops.llm.routes import Route
    from agentops.model.state import Metrics
    from agentops.project.config import Llm, Retry
    from agentops.store import ReplyStore

__all__ = ["LLMClient"]

_S = TypeVar("_S", bound=BaseModel)

_PLAINER: dict[str | None, Structured] = {"json_schema": "json_object", "json_object": "prompt"}
"""How to ask for a schema once a provider refused the way it was asked."""

_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_-]")


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
        context: Callable[[], object] = lambda: None,
    ) -> None:
        """Made by the run on first use of ``ctx.llm``; ``context``: the ``ctx`` tools get."""
        self._config = config
        self._guards = guards
        self._context = context
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
        self._learned: dict[str, Structured] = {}  # model: how it takes a schema, this run
        self._routes: dict[str, Route] = {}  # what a model name means does not change in a run

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
        allow_truncated: bool = True,
        cache_system: bool = False,
    ) -> Completion:
        """Ask the chain of models; the first usable reply wins.

        ``prompt`` is the user's message, or a list of ``{"role", "content"}``
        messages. ``model`` or ``tier`` (a name of ``[llm] tiers``) picks the
        first model; ``[llm] fallbacks`` follow. With ``schema`` (a pydantic
        model) the reply is JSON validated into ``.parsed``. Without it, a
        reply cut short or empty comes back ``truncated``, or with
        ``allow_truncated=False`` counts as the model failing. ``cache_system``
        asks the provider to cache the system prompt (Anthropic's
        ``cache_control``; OpenAI caches on its own).
        """
        messages = messages_of(prompt)
        chain, ask = self._ask(
            model,
            tier,
            schema,
            max_tokens,
            temperature,
            cache_system=cache_system,
            allow_truncated=allow_truncated,
        )
        if ask.json_schema is not None:
            messages = ask_for_json(messages, ask.json_schema)
        failures: list[str] = []
        too_large = 0
        for name in chain:
            try:
                return self._complete_with(self._route_of(name), messages, ask)
            except ModelFailed as exc:
                too_large += isinstance(exc, _TooLarge)
                failures.append(f"{name}: {exc}")
                self._log.warning("llm.model_failed", model=name, error=str(exc))
        summary = "; ".join(failures)
        if too_large == len(chain):
            raise PromptTooLarge(f"the request does not fit any model: {summary}")
        raise LLMUnavailable(f"every model failed: {summary}")

    def run(
        self,
        prompt: str | Sequence[dict[str, Any]],
        *,
        tools: Sequence[Callable[..., Any]],
        schema: type[_S] | None = None,
        max_steps: int = 8,
        model: str | None = None,
        tier: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Any:
        """Let the model call ``tools`` until it answers: the validated ``schema``, or a Completion.

        ``tools`` are typed functions with docstrings (:mod:`agentops.llm.tools`;
        ``@agentops.tool`` says which have an effect or need a human's yes), of
        which only those ``[permissions] tools`` lists are offered. Each model
        turn is a call like :meth:`complete`'s (budgets, retries, fallbacks)
        and a step; more than ``max_steps`` turns, or a tool failing the same
        way twice in a row, ends the run (:class:`~agentops.errors.ToolFailed`).
        Without ``schema`` the Completion is the last turn's, with the tokens
        and cost of every turn.
        """
        from agentops.llm.tools import Tool  # noqa: PLC0415 - pydantic's create_model, on use

        if not (isinstance(max_steps, int) and max_steps >= 1):
            raise ValueError(f"max_steps must be a positive int, not {max_steps!r}")
        declared = [Tool.of(function) for function in tools]
        names = [t.name for t in declared]
        if len(set(names)) < len(names):
            raise ValueError(f"two tools of one name among {', '.join(names)}")
        allowed = self._guards.permissions.tools if self._guards.permissions else None
        offered = [t for t in declared if allowed is None or t.name in allowed]
        self._log.info(
            "llm.tools_offered",
            tools=[t.name for t in offered],
            hidden=[t.name for t in declared if t not in offered],
        )
        messages: list[dict[str, Any]] = list(messages_of(prompt))
        chain, ask = self._ask(model, tier, schema, max_tokens, temperature, cache_system=False)
        if ask.json_schema is not None:
            messages = ask_for_json(messages, ask.json_schema)
        loop = ToolLoop(
            agent=self._guards.agent,
            tools=offered,
            guards=self._guards,
            log=self._log,
            redactor=self._redactor,
            metrics=self._metrics,
            wrap=lambda text, source: str(self.untrusted(text, source=source)),
            context=self._context,
        )
        specs = tuple(t.spec() for t in offered)
        sizes = Sizes()  # each turn works out the token figures of its new messages only
        with self._sender.in_blocks(turns=max_steps):
            return loop.run(
                messages,
                max_steps=max_steps,
                turn=lambda conversation: self._turn(chain, conversation, ask, specs, sizes),
                accept=lambda route, paid: self._accepted(route, None, paid, ask, cached=False),
                refused=lambda route, paid: self._refused(route, paid, cached=False),
                max_reasks=self._config.max_reasks,
                parsed=schema is not None,
            )

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

    def _ask(
        self,
        model: str | None,
        tier: str | None,
        schema: type[BaseModel] | None,
        max_tokens: int | None,
        temperature: float | None,
        *,
        cache_system: bool,
        allow_truncated: bool = True,
    ) -> tuple[list[str], _Ask]:
        """The chain of models to ask, and what to ask each; ``ValueError`` for a bad option."""
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
        ask = _Ask(
            schema=schema,
            json_schema=None if schema is None else schema.model_json_schema(),
            max_tokens=limit,
            temperature=warmth,
            allow_truncated=bool(allow_truncated),
            cache_system=bool(cache_system),
        )
        return list(chain), ask

    def _turn(
        self,
        chain: Sequence[str],
        messages: list[dict[str, Any]],
        ask: _Ask,
        tools: Sequence[ToolSpec],
        sizes: Sizes,
    ) -> tuple[Route, Paid]:
        """One turn of a tool loop, down the chain: the first model that answers."""
        failures: list[str] = []
        too_large = 0
        for name in chain:
            route = self._route_of(name)
            request = ChatRequest(
                model=route.model,
                messages=self._fit(route, messages, ask.max_tokens, sizes=sizes),
                max_tokens=ask.max_tokens,
                temperature=ask.temperature,
                schema=ask.json_schema,
                structured=self._learned.get(route.name, route.structured) if ask.schema else None,
                schema_name=_schema_name(ask),
                tools=tools,
            )
            wire = wire_format(route.kind)
            try:
                while True:
                    try:
                        return route, self._sender.send(
                            route, wire, request, wire.build(request, route), sizes=sizes
                        )
                    except Unsupported as exc:
                        request = self._ask_plainer(route, request, exc)
            except ModelFailed as exc:
                too_large += isinstance(exc, _TooLarge)
                failures.append(f"{name}: {exc}")
                self._log.warning("llm.model_failed", model=name, error=str(exc))
        summary = "; ".join(failures)
        if too_large == len(chain):
            raise PromptTooLarge(f"the conversation does not fit any model: {summary}")
        raise LLMUnavailable(f"every model failed: {summary}")

    def _complete_with(self, route: Route, messages: list[dict[str, str]], ask: _Ask) -> Completion:
        wire = wire_format(route.kind)
        request = ChatRequest(
            model=route.model,
            messages=self._fit(route, messages, ask.max_tokens),
            max_tokens=ask.max_tokens,
            temperature=ask.temperature,
            schema=ask.json_schema,
            structured=self._learned.get(route.name, route.structured) if ask.schema else None,
            schema_name=_schema_name(ask),
            cache_system=ask.cache_system,
        )
        asked = 1
        while True:
            built = wire.build(request, route)
            key = request_key({"url": built.url, "body": built.body})
            paid = self._replies.known(key)
            cached = paid is not None
            if paid is None:
                try:
                    paid = self._sender.send(route, wire, request, built)
                except Unsupported as exc:
                    request = self._ask_plainer(route, request, exc)
                    continue
                self._replies.keep(key, paid)
            try:
                return self._accepted(route, key, paid, ask, cached=cached)
            except Malformed as exc:
                self._log.warning("llm.malformed", model=route.name, ask=asked, error=str(exc))
                if asked > self._config.max_reasks:
                    raise ModelFailed(f"no valid reply in {asked} asks: {exc}") from None
                asked += 1
                request = replace(request, messages=[*request.messages, *reask(exc.text, str(exc))])

    def _accepted(
        self, route: Route, key: str | None, paid: Paid, ask: _Ask, *, cached: bool
    ) -> Completion:
        """``paid`` as the agent receives it; :class:`Malformed` if it must be asked again.

        ``key``: the request's, to cache it by (None: not cached, as a tool loop's turn).
        """
        reply = paid.reply
        if reply.refusal is not None:
            self._refused(route, paid, cached=cached)
        text = None if reply.text is None else self._screen(reply.text, route)
        cut = _cut_short(reply, text)
        parsed = None
        if ask.schema is not None:
            if cut is not None:  # a reply cut short is one that failed validation
                raise Malformed(cut, text)
            try:
                parsed = parse_reply(text or "", ask.schema)
            except ValueError as exc:
                raise Malformed(str(exc), text) from None
        elif cut is not None:
            self._log.warning(
                "llm.truncated",
                model=route.name,
                finish_reason=reply.finish_reason,
                reason=cut,
                chars=len(text or ""),
            )
            if not ask.allow_truncated:
                raise ModelFailed(f"the reply {cut}, and allow_truncated is False")
        if key is not None and not cached and cut is None:
            self._replies.store(key, paid, text or "")
        return self._completed(route, paid, text, parsed, cached=cached, truncated=cut is not None)

    def _ask_plainer(self, route: Route, request: ChatRequest, refused: Unsupported) -> ChatRequest:
        # The model will not take the schema as it was asked for: ask more plainly,
        # now and for the rest of the run (the prompt still asks for it in words).
        plainer = _PLAINER.get(request.structured)
        if refused.feature != "structured" or plainer is None:
            raise refused
        self._learned[route.name] = plainer
        self._log.warning(
            "llm.structured_fallback",
            model=route.name,
            structured=request.structured,
            to=plainer,
            error=str(refused),
        )
        return replace(request, structured=plainer)

    def _refused(self, route: Route, paid: Paid, *, cached: bool) -> None:
        refusal = self._loggable(paid.reply.refusal or "")
        self._log.warning("llm.refused", model=route.name, refusal=refusal)
        completion = self._completed(route, paid, None, None, cached=cached, truncated=False)
        raise ReplyRefused(
            f"{route.name} refused to answer: {refusal}",
            refusal=refusal,
            model=route.name,
            completion=replace(completion, refusal=refusal),
        )

    def _route_of(self, name: str) -> Route:
        """``name``'s route; ``ValueError`` if it cannot be called as configured (asked again)."""
        found = self._routes.get(name)
        if found is None:
            found = self._routes[name] = self._route(name)
        return found

    def _fit(
        self,
        route: Route,
        messages: list[dict[str, Any]],
        max_tokens: int,
        *,
        sizes: Sizes | None = None,
    ) -> list[dict[str, Any]]:
        """``messages`` pruned to fit ``route``'s context window; ``_TooLarge`` if they cannot.

        ``sizes``: a tool loop's figures, and its turns are not pruned.
        """
        window = route.context_window
        if window is None:
            return messages
        budget = window - max_tokens
        if sizes is not None:  # a tool loop's turns: a call and its result go together
            kept, dropped, size = messages, 0, sizes.estimate(messages)
        else:
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
        self,
        route: Route,
        paid: Paid,
        text: str | None,
        parsed: Any,
        *,
        cached: bool,
        truncated: bool,
    ) -> Completion:
        reply, usage = paid.reply, paid.usage
        if cached:
            self._log.info(
                "llm.call",
                model=route.name,
                tokens_in=usage.input_tokens,
                tokens_out=usage.output_tokens,
                cost_usd=0.0,
                latency_ms=0.0,
                cached=True,
                attempt=0,
                finish_reason=reply.finish_reason,
            )
        return Completion(
            text=text,
            parsed=parsed,
            model=route.name,
            tokens_in=usage.input_tokens,
            tokens_out=usage.output_tokens,
            cost_usd=0.0 if cached else paid.cost_usd,
            cached=cached,
            latency_ms=0.0 if cached else paid.latency_ms,
            finish_reason=reply.finish_reason,
            raw_finish_reason=reply.raw_finish_reason,
            truncated=truncated,
            tokens_cached=usage.cached_tokens,
            tokens_cache_write=usage.cache_write_tokens,
            tokens_reasoning=usage.reasoning_tokens,
        )


@dataclass(frozen=True, slots=True)
class _Ask:
    """What one ``complete()`` asks of every model of its chain."""

    schema: type[BaseModel] | None
    json_schema: dict[str, Any] | None
    max_tokens: int
    temperature: float | None
    allow_truncated: bool
    cache_system: bool


def _schema_name(ask: _Ask) -> str:
    """The schema's name as an API takes it (letters, digits, ``_``, ``-``)."""
    return _NOT_A_NAME.sub("_", ask.schema.__name__)[:64] if ask.schema else "reply"


def _cut_short(reply: ChatReply, text: str | None) -> str | None:
    """Why the reply is not the whole answer, if it is not."""
    said = reply.raw_finish_reason or reply.finish_reason
    if reply.finish_reason == "length":
        return f"was cut short at the output limit (finish_reason {said})"
    if reply.finish_reason == "content_filter":
        return f"was withheld by the provider's content filter (finish_reason {said})"
    if not text or not text.strip():
        return f"is empty (finish_reason {said})"
    return None
