"""``ctx.llm``: calls to OpenAI-compatible ``/chat/completions`` endpoints, guarded.

One :meth:`LLMClient.complete` goes down the agent's chain of models (the
one asked for, or ``[llm] model``, then ``fallbacks``). For each model:

1. the conversation is pruned to the model's context window;
2. the cache (``[llm] cache``) and the replies of this run's earlier
   attempts are looked up: a hit sends nothing and costs nothing;
3. the worst case (the prompt's estimate plus ``max_tokens``, at the model's
   prices) is reserved through the budget guard, so a call that could pass a
   cap is refused before any request leaves the machine;
4. the request goes through ``ctx.http`` (logged, ``[permissions] hosts``,
   ``requests_per_minute``), retried on 429, 5xx and timeouts by the
   agent's ``[retry]`` policy (a wait longer than the run has left gives up
   at once);
5. the reservation is settled to the reply's ``usage`` (an estimate when it
   has none, never zero); a reply that never came keeps it: money that may
   have been spent is never forgotten;
6. secrets and personal data in the reply are redacted (or the reply is
   refused), and with ``schema`` the reply is parsed and validated; a
   malformed one is asked again with the error, ``max_reasks`` times.

A model that still fails hands over to the next. When every model has
failed, :class:`~agentops.errors.LLMUnavailable` reaches the agent (and its
``fallback()``), and the run does not retry it: that would send every
earlier prompt again.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from agentops.errors import LLMUnavailable, PromptTooLarge, ReplyRejected
from agentops.guards.facade import GuardStop
from agentops.guards.failure import classify
from agentops.guards.retry import call_with_retries
from agentops.llm.cache import request_key
from agentops.llm.content import MAX_UNTRUSTED_CHARS, filter_reply, wrap_untrusted
from agentops.llm.tokens import bound_messages, estimate, estimate_messages, prune

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from agentops._infra.log import EventLogger
    from agentops._infra.redact import Redactor
    from agentops.guards.facade import RunGuards
    from agentops.guards.failure import Failure
    from agentops.llm.cache import ReplyCache
    from agentops.llm.content import UntrustedText
    from agentops.llm.routes import Route
    from agentops.model.state import Metrics
    from agentops.project.config import Llm, Retry

__all__ = ["Completion", "LLMClient"]

_S = TypeVar("_S", bound=BaseModel)

_ROLES = frozenset({"system", "user", "assistant"})

_HOTTEST = 2.0
"""The highest temperature, as ``[llm] temperature`` allows."""

_FENCE = re.compile(r"^```[\w-]*[ \t]*\n(.*?)\n?```$", re.DOTALL)

_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
    httpx.InvalidURL,
)
"""Failures before a request reached the provider: nothing can have been billed."""


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


@dataclass(frozen=True, slots=True)
class _Reply:
    text: str
    tokens_in: int
    tokens_out: int
    cost_usd: float | None
    latency_ms: float


class _ModelFailed(Exception):
    """The model gave no usable reply: the next one is tried."""


class _TooLarge(_ModelFailed):
    """The request does not fit this model's window."""


class _NoTimeLeft(Exception):
    """A retry's wait would outlast the run."""


class LLMClient:
    """The run's model client: ``ctx.llm``."""

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
        cache: ReplyCache | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Made by the run on first use of ``ctx.llm``."""
        self.config = config
        self._route = route
        self._http = http
        self._guards = guards
        self._retry = retry
        self._log = log
        self._redactor = redactor
        self._metrics = metrics
        self._pii = pii
        self._cache = cache
        self._told_unavailable = False
        self._wall_clock = wall_clock
        self._replies: dict[str, list[_Reply]] = {}
        self._replayed: Counter[str] = Counter()

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
        messages = _messages(prompt)
        if tier is not None and tier not in self.config.tiers:
            raise ValueError(f"no tier {tier!r} in [llm] tiers")
        chain = self.config.chain(model, tier)
        if not chain:
            raise ValueError("no model to call: set [llm] model in agent.toml or pass model=")
        limit = self.config.max_tokens if max_tokens is None else max_tokens
        if not (isinstance(limit, int) and limit >= 1):
            raise ValueError(f"max_tokens must be a positive int, not {limit!r}")
        warmth = self.config.temperature if temperature is None else temperature
        if warmth is not None and not (
            isinstance(warmth, int | float)
            and not isinstance(warmth, bool)
            and 0 <= warmth <= _HOTTEST
        ):
            raise ValueError(f"temperature must be a number from 0 to 2, not {warmth!r}")
        if schema is not None:
            messages = _ask_for_json(messages, schema)
        failures: list[str] = []
        too_large = 0
        for name in chain:
            try:
                # ValueError if it cannot be called as configured (routes.route)
                return self._complete_with(self._route(name), messages, schema, limit, warmth)
            except _ModelFailed as exc:
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

    # -- one model ---------------------------------------------------------------------

    def _complete_with(
        self,
        route: Route,
        messages: list[dict[str, str]],
        schema: type[BaseModel] | None,
        max_tokens: int,
        temperature: float | None,
    ) -> Completion:
        messages = self._fit(route, messages, max_tokens)
        body: dict[str, Any] = {
            "model": route.model,
            "messages": messages,
            "max_tokens": max_tokens,
        }
        if temperature is not None:
            body["temperature"] = temperature
        if schema is not None and route.json_mode:
            body["response_format"] = {"type": "json_object"}
        for ask in range(1, self.config.max_reasks + 2):
            key = request_key({"url": route.url, "body": body})
            reply, cached = self._known(key)
            if reply is None:
                reply = self._send(route, body)
                self._keep(key, reply)
            text = self._screen(reply.text, route)
            parsed = None
            if schema is not None:
                try:
                    parsed = _parse(text, schema)
                except ValueError as exc:
                    self._log.warning("llm.malformed", model=route.name, ask=ask, error=str(exc))
                    if ask > self.config.max_reasks:
                        raise _ModelFailed(f"no valid reply in {ask} asks: {exc}") from None
                    body = {**body, "messages": [*body["messages"], *_reask(text, str(exc))]}
                    continue
            if not cached:
                self._store(key, reply, text)
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

    def _known(self, key: str) -> tuple[_Reply | None, bool]:
        # This run's earlier attempts first (a retried run re-sends nothing it
        # already paid for), then the cache.
        earlier = self._replies.get(key, [])
        if self._replayed[key] < len(earlier):
            self._replayed[key] += 1
            return earlier[self._replayed[key] - 1], True
        if self._cache is None:
            return None, False
        stored = self._cache.get(key, self._wall_clock())
        self._tell_if_reset(self._cache)
        if stored is None:
            return None, False
        reply = _Reply(
            text=str(stored["text"]),
            tokens_in=int(stored["tokens_in"]),
            tokens_out=int(stored["tokens_out"]),
            cost_usd=stored.get("cost_usd"),
            latency_ms=0.0,
        )
        self._keep(key, reply)
        self._metrics.llm_cache_hits += 1
        self._metrics.llm_usd_saved += reply.cost_usd or 0.0
        return reply, True

    def _keep(self, key: str, reply: _Reply) -> None:
        # For this run's later attempts: a retried run pays for no reply twice.
        self._replies.setdefault(key, []).append(reply)
        self._replayed[key] += 1

    def _store(self, key: str, reply: _Reply, text: str) -> None:
        # Only a reply that was accepted (valid, not refused) is worth reusing,
        # and only as the agent received it: personal data filtered, secrets too.
        if self._cache is not None:
            stored = {
                "text": self._redactor.value(text),
                "tokens_in": reply.tokens_in,
                "tokens_out": reply.tokens_out,
                "cost_usd": reply.cost_usd,
            }
            self._cache.put(key, stored, self._wall_clock())
            self._tell_if_reset(self._cache)

    def _tell_if_reset(self, cache: ReplyCache) -> None:
        # The cache opens its file on first use: only then can it find it unreadable.
        if cache.reset_because is not None:
            self._log.warning("llm.cache_reset", error=cache.reset_because)
            cache.reset_because = None
        if cache.unavailable is not None and not self._told_unavailable:
            self._log.warning("llm.cache_unavailable", error=cache.unavailable)
            self._told_unavailable = True

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
        self, route: Route, reply: _Reply, text: str, parsed: Any, *, cached: bool
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

    # -- the request -------------------------------------------------------------------

    def _send(self, route: Route, body: dict[str, Any]) -> _Reply:
        headers = {"Content-Type": "application/json"}
        if route.api_key:
            headers["Authorization"] = f"Bearer {route.api_key}"
        # Encoded once, before any reservation: a body that cannot be sent holds no money.
        content = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
        estimate_in = estimate_messages(body["messages"])
        most_in = bound_messages(body["messages"])  # the reservation must be a true bound
        worst_tokens = most_in + body["max_tokens"]
        worst_usd = route.cost_usd(most_in, body["max_tokens"]) or 0.0
        attempt = 0

        def call() -> _Reply:
            nonlocal attempt
            attempt += 1
            # Refused here, before anything is sent, if it could pass a cap.
            reservation = self._guards.reserve(usd=worst_usd, tokens=worst_tokens)
            started = time.perf_counter()
            try:
                response = self._http().post(
                    route.url, content=content, headers=headers, timeout=self.config.timeout
                )
                response.raise_for_status()
                text, tokens_in, tokens_out = _read(response)
            except (httpx.HTTPStatusError, GuardStop, *_NOT_SENT):
                # Answered with an error, or never sent (a refused host, the request
                # limit, no connection): nothing was billed.
                self._guards.settle(reservation, usd=0.0, tokens=0)
                raise
            # Anything else (a timeout, a garbled reply) may have been billed:
            # the reservation stands.
            tokens_in = tokens_in or estimate_in
            tokens_out = tokens_out or estimate(text)
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
                        for message in body["messages"]
                    ],
                    "reply": self._loggable(text),
                }
                if self.config.log_bodies
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
            return _Reply(text, tokens_in, tokens_out, cost, latency_ms)

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
            reply: _Reply = call_with_retries(
                call, self._retry, sleep=self._wait, before_sleep=retrying, classify=classify
            )
        except _NoTimeLeft as exc:
            raise _ModelFailed(str(exc)) from None
        except (httpx.HTTPError, ValueError) as exc:
            raise _ModelFailed(f"{type(exc).__name__}: {exc}") from None
        return reply

    def rewind(self) -> None:
        """A new attempt (a retry, or ``fallback()``) replays the replies earlier ones had."""
        self._replayed.clear()

    def close(self) -> None:
        """Release what the client opened (the cache)."""
        if self._cache is not None:
            self._cache.close()

    def _wait(self, seconds: float) -> None:
        left = self._guards.interrupts.remaining_s()
        if seconds >= left:
            raise _NoTimeLeft(
                f"a retry would wait {seconds:.0f}s, and the run has {left:.0f}s left"
            )
        self._guards.sleep(seconds)


def _messages(prompt: str | Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if not isinstance(prompt, list | tuple):
        raise ValueError(f"a prompt is text or a list of messages, not {prompt!r:.100}")
    messages = []
    for message in prompt:
        role = message.get("role") if isinstance(message, Mapping) else None
        content = message.get("content") if isinstance(message, Mapping) else None
        if role not in _ROLES or not isinstance(content, str):
            raise ValueError(
                "a message is a dict with role system, user or assistant and text content, "
                f"not {message!r:.100}"
            )
        try:
            content.encode()
        except UnicodeEncodeError:  # a lone surrogate: no request could carry it
            raise ValueError(
                f"a message holds text that is not Unicode: {content!r:.100}"
            ) from None
        messages.append({"role": str(role), "content": str(content)})
    if not messages:
        raise ValueError("no message to send")
    return messages


def _ask_for_json(messages: list[dict[str, str]], schema: type[BaseModel]) -> list[dict[str, str]]:
    instruction = (
        "Reply with one JSON object and nothing else (no prose, no code fence) that "
        f"conforms to this JSON Schema: {json.dumps(schema.model_json_schema())}"
    )
    head = 0
    while head < len(messages) and messages[head]["role"] == "system":
        head += 1
    return [*messages[:head], {"role": "system", "content": instruction}, *messages[head:]]


def _reask(reply: str, error: str) -> list[dict[str, str]]:
    return [
        {"role": "assistant", "content": reply},
        {
            "role": "user",
            "content": f"That reply is not valid: {error}. Reply again with only the JSON object.",
        },
    ]


def _read(response: httpx.Response) -> tuple[str, int, int]:
    """The reply's text and its usage (0 where the provider did not say)."""
    try:
        payload = response.json()
    except RecursionError:  # a reply nested past Python's limit is garbled, not a crash
        raise ValueError("the reply is JSON nested too deeply") from None
    try:
        text = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ValueError("the reply has no choices[0].message.content") from None
    if not isinstance(text, str):
        raise ValueError("the reply's content is not text")
    usage = payload.get("usage") if isinstance(payload, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    return text, _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _parse(text: str, schema: type[_S]) -> _S:
    """``text`` as ``schema``: bare JSON, fenced, or an object amid prose."""
    candidate = text.strip()
    fenced = _FENCE.match(candidate)
    if fenced:
        candidate = fenced[1].strip()
    try:
        return schema.model_validate_json(candidate)
    except ValidationError as exc:
        start, end = candidate.find("{"), candidate.rfind("}")
        if 0 <= start < end and (start, end) != (0, len(candidate) - 1):
            try:
                return schema.model_validate_json(candidate[start : end + 1])
            except ValidationError:
                pass
        raise ValueError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    if errors and errors[0]["type"] == "json_invalid":
        return "it is not a JSON object"
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'reply'}: {e['msg']}" for e in errors[:3]
    )
