"""A fake of Anthropic's Messages API (``POST /v1/messages``) on loopback, for ``ctx.llm``.

The same server as :mod:`fakellm` (queues by model, every request recorded),
answering in the shapes Anthropic documents:

- a message: ``{"id", "type": "message", "role": "assistant", "model",
  "content": [{"type": "text", "text"}...], "stop_reason", "stop_sequence",
  "usage": {"input_tokens", "output_tokens", "cache_creation_input_tokens",
  "cache_read_input_tokens"}}``, where ``input_tokens`` leaves out the two
  cache counts; ``stop_reason`` one of ``end_turn``, ``max_tokens``,
  ``stop_sequence``, ``tool_use``, ``refusal`` (with ``stop_details``);
- an error: ``{"type": "error", "error": {"type", "message"}, "request_id"}``
  at its status: ``overloaded_error`` at 529, ``rate_limit_error`` at 429
  with ``retry-after``, and so on.

Like the real API it refuses, before any scripted answer, a request to
another path (404 ``not_found_error``), without ``anthropic-version`` or
``max_tokens`` (400 ``invalid_request_error``) or without the right
``x-api-key`` (401 ``authentication_error``)::

    with FakeAnthropic(key=KEY) as server:
        server.script(overloaded(retry_after=3), message("hi"), model="claude-x")
        ...  # a provider of kind "anthropic" whose base_url is server.base_url
"""

from __future__ import annotations

import json
from typing import Any

from fakellm import Behaviour, FakeLLM, Seen

__all__ = [
    "FakeAnthropic",
    "anthropic_error",
    "error_in_200",
    "message",
    "overloaded",
]

USAGE = (20, 8)
"""The ``(input_tokens, output_tokens)`` a message reports unless told otherwise."""


def message(
    text: str | None = "ok",
    *,
    usage: tuple[float, float] | None = USAGE,
    stop_reason: str | None = "end_turn",
    cache_read: float = 0,
    cache_write: float = 0,
    stop_details: dict[str, Any] | None = None,
    blocks: list[dict[str, Any]] | None = None,
) -> Behaviour:
    """200 with a message whose content is one text block (none when ``text`` is None).

    ``blocks`` replaces the content; ``cache_read`` and ``cache_write`` are the
    usage's cache counts, apart from ``input_tokens`` as Anthropic counts them.
    """
    content = (
        blocks if blocks is not None else [] if text is None else [{"type": "text", "text": text}]
    )
    payload: dict[str, Any] = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": "claude-fake",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
    }
    if stop_details is not None:
        payload["stop_details"] = stop_details
    if usage is not None:
        payload["usage"] = {
            "input_tokens": usage[0],
            "output_tokens": usage[1],
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
        }
    return Behaviour(body=json.dumps(payload).encode())


def anthropic_error(
    status: int, kind: str, text: str, *, headers: tuple[tuple[str, str], ...] = ()
) -> Behaviour:
    """``status`` with Anthropic's error body."""
    body = {
        "type": "error",
        "error": {"type": kind, "message": text},
        "request_id": "req_fake",
    }
    return Behaviour(status=status, body=json.dumps(body).encode(), headers=headers)


def overloaded(*, retry_after: float | None = None) -> Behaviour:
    """529 ``overloaded_error``, with ``retry-after`` if given."""
    headers = () if retry_after is None else (("retry-after", str(retry_after)),)
    return anthropic_error(529, "overloaded_error", "Overloaded", headers=headers)


def error_in_200(kind: str, text: str) -> Behaviour:
    """A 200 whose body is an error (as a proxy in front of the API may send it)."""
    body = {"type": "error", "error": {"type": kind, "message": text}}
    return Behaviour(body=json.dumps(body).encode())


class FakeAnthropic(FakeLLM):
    """The Messages API on 127.0.0.1, refusing what the real one refuses."""

    def __init__(self, default: Behaviour | None = None, *, key: str | None = None) -> None:
        """``key``: the ``x-api-key`` every request must carry (None: any, or none)."""
        self._key = key
        super().__init__(default or message(), check=self._refuse)

    @property
    def base_url(self) -> str:
        """A provider's ``base_url``, as Anthropic's is: ``http://127.0.0.1:PORT``."""
        return super().base_url.removesuffix("/v1")

    def _refuse(self, seen: Seen) -> Behaviour | None:
        headers = {name.lower(): value for name, value in seen.headers.items()}
        if seen.path != "/v1/messages":
            return anthropic_error(404, "not_found_error", f"Not Found: {seen.path}")
        if "anthropic-version" not in headers:
            return anthropic_error(
                400, "invalid_request_error", "anthropic-version: header is required"
            )
        if self._key is not None and headers.get("x-api-key") != self._key:
            return anthropic_error(401, "authentication_error", "invalid x-api-key")
        body = seen.body if isinstance(seen.body, dict) else {}
        if not isinstance(body.get("max_tokens"), int):
            return anthropic_error(400, "invalid_request_error", "max_tokens: Field required")
        if any(turn.get("role") == "system" for turn in body.get("messages", [])):
            return anthropic_error(
                400,
                "invalid_request_error",
                'messages: Unexpected role "system". The Messages API accepts a top-level '
                '`system` parameter, not "system" as an input message role.',
            )
        return None
