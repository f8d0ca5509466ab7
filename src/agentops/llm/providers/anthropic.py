"""``kind = "anthropic"``: Anthropic's Messages API.

The request is ``POST {base_url}/v1/messages`` (``base_url`` is
``https://api.anthropic.com``; one ending in ``/v1`` is taken as it is),
with the key in ``x-api-key`` and ``anthropic-version: 2023-06-01``. The
system messages become the ``system`` field (text blocks, the last marked
``cache_control: ephemeral`` when the agent asks for the system prompt to be
cached), the others ``messages``; ``max_tokens`` is always sent. With a
schema, ``output_config.format`` carries it as ``json_schema``; a model's
``reasoning_effort`` is ``output_config.effort``. The API has no JSON mode:
``json_object`` asks in words alone.

The reply is a list of content blocks (the text blocks are the text; a
refusal has its ``stop_details.explanation``), a ``stop_reason``, and a
``usage`` whose ``input_tokens`` leave out the prompt cache's
``cache_read_input_tokens`` and ``cache_creation_input_tokens``, added back
here. An error is ``{"type": "error", "error": {"type", "message"}}`` at its
status; ``overloaded_error`` (529), ``rate_limit_error`` (429) and
``api_error`` (500) are transient, with ``retry-after`` honoured, unless the
429 says a spend limit was reached.

Tools go as ``tools: [{"name", "description", "input_schema"}]``; a reply
that calls them has ``tool_use`` blocks (``{"id", "name", "input"}``) and
``stop_reason`` ``tool_use``. The conversation sends them back as the
assistant's content blocks, and the results as one user message of
``tool_result`` blocks (``{"tool_use_id", "content", "is_error"}``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from agentops.llm.providers._common import closed_schema, count, error_message, json_body, waited_s
from agentops.llm.providers.base import (
    ChatReply,
    ToolCall,
    UnreadableReply,
    Usage,
    WireError,
    WireRequest,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from agentops.llm.providers.base import ChatRequest, Endpoint, Response, Unsupported

__all__ = ["API_VERSION", "WIRE_FORMAT", "AnthropicMessages"]

API_VERSION = "2023-06-01"
"""The ``anthropic-version`` header: the API's shape this format speaks."""

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "refusal",
}
"""``stop_reason`` to the common words; any other (``pause_turn``...) is ``other``."""

_STATUS_OF = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""An error's ``type`` to its status, for an error in a 200."""

_SPEND_LIMIT = "enforced_spend_limit_reached"
"""A 429 that waiting does not mend before the month ends."""

_RETRIED = frozenset({408, 429})
"""Below 500, the statuses that say "not now" rather than "not this"."""

_SERVER_ERROR = 500
_BAD_REQUEST = 400
_NO_REASON = "the model declined to answer (stop_reason refusal)"


class AnthropicMessages:
    """Anthropic's Messages API."""

    def build(self, request: ChatRequest, endpoint: Endpoint) -> WireRequest:
        """``POST {base_url}/v1/messages``, the key in ``x-api-key``."""
        system = [m["content"] for m in request.messages if m["role"] == "system"]
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": _messages(request.messages)
            if request.tools
            else [
                {"role": m["role"], "content": m["content"]}
                for m in request.messages
                if m["role"] != "system"
            ],
        }
        if request.tools:
            body["tools"] = [
                {
                    "name": spec.name,
                    "description": spec.description,
                    "input_schema": spec.parameters,
                }
                for spec in request.tools
            ]
        if system:
            if request.cache_system:  # the whole system prefix, up to the last block, cached
                blocks: list[dict[str, Any]] = [{"type": "text", "text": t} for t in system]
                blocks[-1]["cache_control"] = {"type": "ephemeral"}
                body["system"] = blocks
            else:
                body["system"] = "\n\n".join(system)
        if request.temperature is not None:
            body["temperature"] = request.temperature
        output: dict[str, Any] = {}
        if request.structured == "json_schema" and request.schema is not None:
            output["format"] = {"type": "json_schema", "schema": closed_schema(request.schema)[0]}
        if endpoint.reasoning_effort is not None:
            output["effort"] = endpoint.reasoning_effort
        if output:
            body["output_config"] = output
        headers = {"anthropic-version": API_VERSION}
        if endpoint.api_key:
            headers["x-api-key"] = endpoint.api_key
        base = endpoint.base_url.rstrip("/")
        path = "/messages" if base.endswith("/v1") else "/v1/messages"
        return WireRequest(url=base + path, headers=headers, body=body)

    def error(self, response: Response) -> WireError | None:
        """Any status but 2xx, or a 2xx whose body is ``{"type": "error"}``."""
        status, content = response.status_code, response.content
        answered = 200 <= status < 300  # noqa: PLR2004 - HTTP semantics
        if answered and b'"error"' not in content:
            return None
        body = json_body(content)
        is_error = isinstance(body, dict) and body.get("type") == "error"
        if answered and not is_error:
            return None
        error = body.get("error") if isinstance(body, dict) else None
        kind = error.get("type") if isinstance(error, dict) else None
        kind = kind if isinstance(kind, str) else None
        if answered:
            status = _STATUS_OF.get(kind or "", _SERVER_ERROR)
        transient = (status in _RETRIED or status >= _SERVER_ERROR) and not _spend_limit(error)
        said = error_message(body, content)
        message = f"{kind}: {said}" if kind and said else said or kind
        return WireError(
            status=status,
            transient=transient,
            message=message,
            retry_after_s=waited_s(response.headers) if transient else None,
            unsupported=_unsupported(said) if status == _BAD_REQUEST else None,
        )

    def parse(self, response: Response) -> ChatReply:
        """The text blocks, the stop reason, a refusal's explanation, and ``usage``."""
        try:
            payload = json.loads(response.content)
        except RecursionError:  # a reply nested past Python's limit is garbled, not a crash
            raise UnreadableReply("the reply is JSON nested too deeply") from None
        except ValueError:
            raise UnreadableReply("the reply is not JSON") from None
        if not isinstance(payload, dict):
            raise UnreadableReply("the reply is not a message")
        usage = _usage(payload.get("usage"))
        content = payload.get("content")
        if not isinstance(content, list):
            raise UnreadableReply("the reply has no content blocks", usage=usage)
        texts = [
            block["text"]
            for block in content
            if isinstance(block, dict) and block.get("type") == "text"
        ]
        if not all(isinstance(text, str) for text in texts):
            raise UnreadableReply("a text block of the reply is not text", usage=usage)
        raw = payload.get("stop_reason")
        raw = raw if isinstance(raw, str) else None
        finish = None if raw is None else _FINISH.get(raw, "other")
        refusal = None
        if finish == "refusal":
            details = payload.get("stop_details")
            explained = details.get("explanation") if isinstance(details, dict) else None
            refusal = explained if isinstance(explained, str) and explained.strip() else _NO_REASON
        calls = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_use":
                name, call_id = block.get("name"), block.get("id")
                if not (isinstance(name, str) and isinstance(call_id, str)):
                    raise UnreadableReply("a tool_use block has no name or id", usage=usage)
                calls.append(ToolCall(id=call_id, name=name, arguments=block.get("input")))
        return ChatReply(
            text="".join(texts) if texts else None,
            usage=usage,
            finish_reason=finish,
            raw_finish_reason=raw,
            refusal=refusal,
            tool_calls=tuple(calls),
        )


def _messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The neutral conversation of a tool loop as Messages API turns (the system apart).

    The results of one turn's calls go back together, in one user message.
    """
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role == "system":
            continue
        if role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message["tool_call_id"],
                "content": message["content"],
            }
            if message.get("is_error"):
                result["is_error"] = True
            last = turns[-1] if turns else None
            if last is not None and last["role"] == "user" and isinstance(last["content"], list):
                last["content"].append(result)
            else:
                turns.append({"role": "user", "content": [result]})
        elif message.get("tool_calls"):
            blocks: list[dict[str, Any]] = []
            if message.get("content"):
                blocks.append({"type": "text", "text": message["content"]})
            blocks.extend(
                {
                    "type": "tool_use",
                    "id": call["id"],
                    "name": call["name"],
                    # Garbled JSON (a model of another kind, before a fallback) is no object.
                    "input": call["arguments"] if isinstance(call["arguments"], dict) else {},
                }
                for call in message["tool_calls"]
            )
            turns.append({"role": "assistant", "content": blocks})
        else:
            turns.append({"role": role, "content": message["content"]})
    return turns


def _usage(usage: object) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    fresh = count(usage.get("input_tokens"))
    read = count(usage.get("cache_read_input_tokens"))
    written = count(usage.get("cache_creation_input_tokens"))
    return Usage(
        input_tokens=fresh + read + written,  # Anthropic counts the three apart
        output_tokens=count(usage.get("output_tokens")),
        cached_tokens=read,
        cache_write_tokens=written,
    )


def _spend_limit(error: object) -> bool:
    details = error.get("details") if isinstance(error, dict) else None
    return isinstance(details, dict) and details.get("error_code") == _SPEND_LIMIT


def _unsupported(message: str | None) -> Unsupported | None:
    """Whether a 400 says the model does not take the schema asked for."""
    said = (message or "").lower()
    if "output_config" in said or "output_format" in said or "json_schema" in said:
        return "structured"
    return None


WIRE_FORMAT = AnthropicMessages()
"""The instance the registry hands out."""
