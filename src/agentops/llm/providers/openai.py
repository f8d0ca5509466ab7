"""``kind = "openai"``: OpenAI's ``/chat/completions``, which most providers and servers speak.

The request is ``POST {base_url}/chat/completions`` with ``Authorization:
Bearer`` when the provider has a key, and a body of ``model``, ``messages``,
``max_tokens``, ``temperature`` when set, and ``response_format:
{"type": "json_object"}`` when JSON is wanted. The reply's text is
``choices[0].message.content``, its usage ``usage.prompt_tokens`` and
``usage.completion_tokens``. Any status but 2xx is an error, transient for a
408, a 429 and a 5xx (``Retry-After`` honoured), as for any HTTP call.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from agentops.guards.failure import parse_retry_after
from agentops.llm.providers.base import ChatReply, Usage, WireError, WireRequest

if TYPE_CHECKING:
    from agentops.llm.providers.base import ChatRequest, Endpoint, Response

__all__ = ["WIRE_FORMAT", "OpenAIChat"]

_RETRIED = frozenset({408, 429})
"""Below 500, the statuses that say "not now" rather than "not this"."""

_SERVER_ERROR = 500


class OpenAIChat:
    """The OpenAI-compatible chat completions API."""

    def build(self, request: ChatRequest, endpoint: Endpoint) -> WireRequest:
        """``POST {base_url}/chat/completions``, the key as a bearer token."""
        body: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.want_json:
            body["response_format"] = {"type": "json_object"}
        headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        return WireRequest(
            url=endpoint.base_url.rstrip("/") + "/chat/completions", headers=headers, body=body
        )

    def error(self, response: Response) -> WireError | None:
        """Any status but 2xx; transient for 408, 429 and 5xx."""
        status = response.status_code
        if 200 <= status < 300:  # noqa: PLR2004 - HTTP semantics
            return None
        transient = status in _RETRIED or status >= _SERVER_ERROR
        return WireError(
            status=status,
            transient=transient,
            retry_after_s=parse_retry_after(response.headers.get("Retry-After"))
            if transient
            else None,
        )

    def parse(self, response: Response) -> ChatReply:
        """``choices[0].message.content``, with ``usage`` (0 where it does not say)."""
        try:
            payload = json.loads(response.content)
        except RecursionError:  # a reply nested past Python's limit is garbled, not a crash
            raise ValueError("the reply is JSON nested too deeply") from None
        try:
            choice = payload["choices"][0]
            text = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ValueError("the reply has no choices[0].message.content") from None
        if not isinstance(text, str):
            raise ValueError("the reply's content is not text")
        usage = payload.get("usage") if isinstance(payload, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        finish = choice.get("finish_reason") if isinstance(choice, dict) else None
        return ChatReply(
            text=text,
            usage=Usage(_count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))),
            finish_reason=finish if isinstance(finish, str) else None,
        )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


WIRE_FORMAT = OpenAIChat()
"""The instance the registry hands out."""
