"""A fake OpenAI-compatible ``/chat/completions`` server on loopback, for ``ctx.llm``.

Each request takes the next behaviour queued for its model (the ``model``
of its JSON body), else the next of the global queue, else the default::

    with FakeLLM() as server:
        server.script(rate_limited(retry_after=2), reply("hi"), model="small")
        server.script(server_error())          # for any model without a queue of its own
        ...  # a provider's base_url is server.base_url
        assert server.models() == ["small", "small"]

Every request is recorded (path, headers, JSON body, its bytes) before it
is answered, so a test can tell which models were asked, in what order, with
what messages, and that no request arrived at all. A behaviour is a status,
headers and bytes, so the same server can answer in another wire format
(``tests/test_llm_providers.py`` scripts a toy one; its requests have no
``model``, so they take the global queue; ``tests/fakeanthropic.py`` speaks
Anthropic's Messages API). A stall waits on the server's own shutdown too,
so a test that walks away from one does not wait it out.

The behaviours here answer as OpenAI documents its chat completions: a
``choices[0]`` whose ``message`` holds ``content`` (text, a list of parts,
or null) and ``refusal``, a ``finish_reason`` (``stop``, ``length``,
``content_filter``, ``tool_calls``), and a ``usage`` with
``prompt_tokens_details.cached_tokens`` and
``completion_tokens_details.reasoning_tokens``; errors as ``{"error":
{"message", "type", "param", "code"}}``, at their status or (as some
gateways send them) in a 200.

The server is a :class:`loopback.LoopbackServer` keeping HTTP/1.1
connections alive, as providers do, served by threads started with it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from loopback import LoopbackServer, LoopbackService

if TYPE_CHECKING:
    from collections.abc import Callable

    from loopback import LoopbackHandler

__all__ = [
    "Behaviour",
    "FakeLLM",
    "Seen",
    "error_in_200",
    "not_json",
    "openai_error",
    "plain_error",
    "rate_limited",
    "reply",
    "server_error",
    "stall",
]

WORKERS = 8
"""Connections served at once (a stalled answer holds one)."""

USAGE = (10, 5)
"""The ``(prompt_tokens, completion_tokens)`` a reply reports unless told otherwise."""


@dataclass(frozen=True, slots=True)
class Behaviour:
    """One scripted answer: status, headers and body, sent after ``stall_s`` seconds."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    stall_s: float = 0.0
    content_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class Seen:
    """A request the server received."""

    path: str
    headers: dict[str, str]
    body: Any
    """The JSON body, parsed (None when it was not JSON)."""
    at: float
    """Its arrival, on this process's ``time.monotonic()``."""
    raw: bytes = b""
    """The body as it came."""

    @property
    def model(self) -> str | None:
        """The model the request asked for."""
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def messages(self) -> list[dict[str, str]]:
        """The request's messages."""
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []


def reply(
    content: str | list[Any] | None = "ok",
    *,
    usage: tuple[float, float] | None = USAGE,
    finish_reason: str | None = "stop",
    refusal: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    cached: float | None = None,
    reasoning: float | None = None,
) -> Behaviour:
    """200 with ``content`` as the reply; ``usage=None``: a reply that does not say its usage.

    ``content`` may be a list of parts or None (a refusal, tool calls, a
    reasoning model that spent its budget thinking); ``cached`` and
    ``reasoning`` fill ``usage``'s details.
    """
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    payload: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": "fake",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
    }
    if usage is not None:
        prompt, completion = usage
        payload["usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if cached is not None:
            payload["usage"]["prompt_tokens_details"] = {"cached_tokens": cached}
        if reasoning is not None:
            payload["usage"]["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return Behaviour(body=json.dumps(payload).encode())


def rate_limited(
    *, retry_after: float | str | None = None, retry_after_ms: float | str | None = None
) -> Behaviour:
    """429, with ``Retry-After`` and ``retry-after-ms`` headers if given."""
    headers = []
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    if retry_after_ms is not None:
        headers.append(("retry-after-ms", str(retry_after_ms)))
    refused = openai_error(
        429, "Rate limit reached for requests", kind="requests", code="rate_limit_exceeded"
    )
    return replace(refused, headers=tuple(headers))


def server_error(status: int = 500) -> Behaviour:
    """A 5xx (or any other status) with an OpenAI-style error body."""
    return Behaviour(status=status, body=b'{"error": {"message": "the model is unwell"}}')


def openai_error(
    status: int,
    message: str,
    *,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | int | None = None,
) -> Behaviour:
    """``status`` with OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}``."""
    error = {"message": message, "type": kind, "param": param, "code": code}
    return Behaviour(status=status, body=json.dumps({"error": error}).encode())


def error_in_200(
    message: str, *, kind: str | None = None, code: str | int | None = None
) -> Behaviour:
    """A 200 whose body is an error, as some gateways answer."""
    error: dict[str, Any] = {"message": message}
    if kind is not None:
        error["type"] = kind
    if code is not None:
        error["code"] = code
    return Behaviour(body=json.dumps({"error": error}).encode())


def plain_error(status: int, text: str) -> Behaviour:
    """``status`` with a body of plain text, as a proxy or a crashed server sends."""
    return Behaviour(status=status, body=text.encode(), content_type="text/plain; charset=utf-8")


def stall(seconds: float, then: Behaviour | None = None) -> Behaviour:
    """``then`` (a normal reply by default), sent only after ``seconds``."""
    answer = then or reply("late")
    return replace(answer, stall_s=seconds)


def not_json() -> Behaviour:
    """200 that says it is JSON and is not."""
    return Behaviour(body=b"<html>502 upstream confused</html>")


@dataclass
class _Script:
    default: Behaviour
    check: Callable[[Seen], Behaviour | None] | None = None
    queues: dict[str | None, deque[Behaviour]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def answer(self, seen: Seen) -> Behaviour:
        with self.arrived:
            self.seen.append(seen)
            self.arrived.notify_all()
            refused = self.check(seen) if self.check is not None else None
            if refused is not None:  # what the real API answers a request it will not take
                return refused
            for queue in (self.queues.get(seen.model), self.queues.get(None)):
                if queue:
                    return queue.popleft()
            return self.default


class FakeLLM(LoopbackService):
    """An OpenAI-compatible server on 127.0.0.1 (a free port), answering in its own threads."""

    def __init__(
        self,
        default: Behaviour | None = None,
        *,
        workers: int = WORKERS,
        check: Callable[[Seen], Behaviour | None] | None = None,
    ) -> None:
        """Bind the port now; serve once entered, in ``workers`` threads.

        ``default`` answers when no queue has anything. ``check`` answers first
        a request the real API would refuse (its answer, else None).
        """
        self._script = _Script(default=default or reply(), check=check)
        self._server = LoopbackServer(
            self._answer, methods=("POST",), keep_alive=True, threads=workers
        )

    @property
    def base_url(self) -> str:
        """A provider's ``base_url``: ``http://127.0.0.1:PORT/v1``."""
        return self._server.url("/v1")

    @property
    def default(self) -> Behaviour:
        """What a request gets when no queue has anything for it."""
        return self._script.default

    @default.setter
    def default(self, behaviour: Behaviour) -> None:
        with self._script.arrived:
            self._script.default = behaviour

    def script(self, *behaviours: Behaviour, model: str | None = None) -> None:
        """Queue ``behaviours`` for requests to ``model`` (None: to any model), in turn."""
        with self._script.arrived:
            self._script.queues.setdefault(model, deque()).extend(behaviours)

    @property
    def requests(self) -> list[Seen]:
        """Every request received so far, in arrival order."""
        with self._script.arrived:
            return list(self._script.seen)

    def models(self) -> list[str | None]:
        """The model each request asked for, in arrival order."""
        return [seen.model for seen in self.requests]

    def wait_for(self, count: int, *, timeout_s: float = 30.0) -> bool:
        """Wait until ``count`` requests have arrived; whether they did in ``timeout_s``."""
        with self._script.arrived:
            return self._script.arrived.wait_for(
                lambda: len(self._script.seen) >= count, timeout=timeout_s
            )

    def _answer(self, request: LoopbackHandler) -> None:
        seen = Seen(
            path=request.path,
            headers=dict(request.headers.items()),
            body=request.json(),
            at=time.monotonic(),
            raw=request.body,
        )
        behaviour = self._script.answer(seen)
        if behaviour.stall_s and request.stopped_during(behaviour.stall_s):
            return  # shutting down: nobody is waiting for this one
        request.respond(
            behaviour.status,
            behaviour.body,
            content_type=behaviour.content_type,
            headers=behaviour.headers,
        )
