"""``kind = "openai"``: OpenAI's ``/chat/completions``, which most providers and servers speak.

The request is ``POST {base_url}/chat/completions`` with ``Authorization:
Bearer`` when the provider has a key, and a body of ``model``, ``messages``,
the output limit (``max_tokens``, or ``max_completion_tokens`` as the
model's ``token_param`` says), ``temperature`` and ``reasoning_effort`` when
set, and with a schema a ``response_format``: ``json_schema`` (strict when
the schema allows it) or ``json_object``.

The reply is ``choices[0]``: its ``message.content`` (text, a list of text
parts, or null), ``message.refusal``, ``finish_reason``; and ``usage``, with
``prompt_tokens_details.cached_tokens`` and
``completion_tokens_details.reasoning_tokens`` where the provider counts them.

Any status but 2xx is an error, and so is a 200 whose body is ``{"error":
...}`` (as some gateways answer), of the status its ``code`` or ``type``
names. 408, 429 and 5xx are transient (``retry-after-ms`` or
``Retry-After`` honoured), unless the body says the account is out of
quota, which waiting does not mend.

Tools go as ``tools: [{"type": "function", "function": {"name",
"description", "parameters"}}]``; the reply's ``message.tool_calls`` are
``{"id", "type": "function", "function": {"name", "arguments"}}`` with
``arguments`` a JSON string (an object, as some compatible servers send it,
is taken too), and ``finish_reason`` ``tool_calls``. The conversation sends
them back as an assistant message with its ``tool_calls`` and one ``{"role":
"tool", "tool_call_id", "content"}`` message per result.
"""

from __future__ import annotations

import contextlib
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

__all__ = ["WIRE_FORMAT", "OpenAIChat"]

_FINISH = {
    "stop": "stop",
    "eos": "stop",
    "eos_token": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "max_tokens": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "refusal": "refusal",
}
"""finish_reason as OpenAI and the servers that copy it write it, to the common words."""

_STATUS_OF = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "invalid_api_key": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "model_not_found": 404,
    "rate_limit_exceeded": 429,
    "rate_limit_error": 429,
    "insufficient_quota": 429,
    "server_error": 500,
    "api_error": 500,
    "internal_error": 500,
    "service_unavailable": 503,
    "overloaded_error": 529,
}
"""An error's ``code`` or ``type`` to the status it means, for an error in a 200."""

_ARGUMENTS = json.JSONEncoder(ensure_ascii=False)
"""Writes a tool call's arguments as ``json.dumps(..., ensure_ascii=False)`` would: one
encoder for them all, as a tool loop writes every earlier call again each turn."""

_OUT_OF_QUOTA = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
"""429s that waiting does not mend: the account has no money left."""

_RETRIED = frozenset({408, 429})
"""Below 500, the statuses that say "not now" rather than "not this"."""

_SERVER_ERROR = 500
_REJECTED = frozenset({400, 422})
"""Statuses of a request the server will not take as it is."""


class OpenAIChat:
    """The OpenAI-compatible chat completions API."""

    def build(self, request: ChatRequest, endpoint: Endpoint) -> WireRequest:
        """``POST {base_url}/chat/completions``, the key as a bearer token."""
        body: dict[str, Any] = {
            "model": request.model,
            "messages": _messages(request.messages) if request.tools else request.messages,
            endpoint.token_param: request.max_tokens,
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": spec.name,
                        "description": spec.description,
                        "parameters": spec.parameters,
                    },
                }
                for spec in request.tools
            ]
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if endpoint.reasoning_effort is not None:
            body["reasoning_effort"] = endpoint.reasoning_effort
        if request.structured == "json_schema" and request.schema is not None:
            schema, strict = closed_schema(request.schema)
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.schema_name, "schema": schema, "strict": strict},
            }
        elif request.want_json:
            body["response_format"] = {"type": "json_object"}
        headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        return WireRequest(
            url=endpoint.base_url.rstrip("/") + "/chat/completions", headers=headers, body=body
        )

    def error(self, response: Response) -> WireError | None:
        """Any status but 2xx, or a 2xx whose body is an error."""
        status, content = response.status_code, response.content
        answered = 200 <= status < 300  # noqa: PLR2004 - HTTP semantics
        if answered and b'"error"' not in content:  # the common case, without parsing twice
            return None
        body = json_body(content)
        error = body.get("error") if isinstance(body, dict) else None
        if answered:
            if error is None or "choices" in body:
                return None
            status = _status_named(error)
        transient = (status in _RETRIED or status >= _SERVER_ERROR) and not (
            _kinds(error) & _OUT_OF_QUOTA
        )
        message = error_message(body, content)
        return WireError(
            status=status,
            transient=transient,
            message=message,
            retry_after_s=waited_s(response.headers) if transient else None,
            unsupported=_unsupported(error, message) if status in _REJECTED else None,
        )

    def parse(self, response: Response) -> ChatReply:
        """``choices[0]``: the text (or None), the refusal, why it stopped; and ``usage``."""
        try:
            payload = json.loads(response.content)
        except RecursionError:  # a reply nested past Python's limit is garbled, not a crash
            raise UnreadableReply("the reply is JSON nested too deeply") from None
        except ValueError:
            raise UnreadableReply("the reply is not JSON") from None
        usage = _usage(payload.get("usage") if isinstance(payload, dict) else None)
        try:
            choice = payload["choices"][0]
            message = choice["message"]
        except (KeyError, IndexError, TypeError):
            raise UnreadableReply("the reply has no choices[0].message", usage=usage) from None
        if not isinstance(message, dict):
            raise UnreadableReply("the reply's message is not an object", usage=usage)
        try:
            text = _text(message.get("content"))
        except ValueError as exc:
            raise UnreadableReply(str(exc), usage=usage) from None
        raw = choice.get("finish_reason") if isinstance(choice, dict) else None
        raw = raw if isinstance(raw, str) else None
        refusal = message.get("refusal")
        refusal = refusal if isinstance(refusal, str) and refusal.strip() else None
        finish = "refusal" if refusal else (None if raw is None else _FINISH.get(raw, "other"))
        try:
            calls = _tool_calls(message.get("tool_calls"))
        except ValueError as exc:
            raise UnreadableReply(str(exc), usage=usage) from None
        return ChatReply(
            text=text,
            usage=usage,
            finish_reason=finish,
            raw_finish_reason=raw,
            refusal=refusal,
            tool_calls=calls,
        )


def _messages(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The neutral conversation of a tool loop, as the chat completions API takes it."""
    sent: list[Mapping[str, Any]] = []
    for message in messages:
        if message["role"] == "tool":
            sent.append(
                {
                    "role": "tool",
                    "tool_call_id": message["tool_call_id"],
                    "content": message["content"],
                }
            )
        elif message.get("tool_calls"):
            sent.append(
                {
                    "role": "assistant",
                    "content": message.get("content") or None,
                    "tool_calls": [
                        {
                            "id": call["id"],
                            "type": "function",
                            "function": {
                                "name": call["name"],
                                "arguments": call["arguments"]
                                if isinstance(call["arguments"], str)
                                else _ARGUMENTS.encode(call["arguments"]),
                            },
                        }
                        for call in message["tool_calls"]
                    ],
                }
            )
        else:
            sent.append(message)
    return sent


def _tool_calls(calls: object) -> tuple[ToolCall, ...]:
    """``message.tool_calls``, read; ``ValueError`` if it is not a list of function calls."""
    if calls is None:
        return ()
    if not isinstance(calls, list):
        raise ValueError("the reply's tool_calls is not a list")
    read = []
    for number, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str):
            raise ValueError("a tool call of the reply names no function")
        arguments = function.get("arguments") if isinstance(function, dict) else None
        if isinstance(arguments, str):
            # The model's garbled JSON stays text: the loop tells it so.
            with contextlib.suppress(ValueError, RecursionError):
                arguments = json.loads(arguments) if arguments.strip() else {}
        call_id = call.get("id") if isinstance(call, dict) else None
        read.append(
            ToolCall(
                id=call_id if isinstance(call_id, str) and call_id else f"call_{number}",
                name=name,
                arguments=arguments,
            )
        )
    return tuple(read)


def _text(content: object) -> str | None:
    """The reply's text: a string, or a list of text parts joined; ``ValueError`` if neither."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            part if isinstance(part, str) else part.get("text")
            for part in content
            if isinstance(part, str) or (isinstance(part, dict) and "text" in part)
        ]
        texts = [part for part in parts if isinstance(part, str)]
        if len(texts) == len(parts):
            return "".join(texts) if texts else None
    raise ValueError("the reply's content is not text")


def _usage(usage: object) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    prompt = count(usage.get("prompt_tokens"))
    completion = count(usage.get("completion_tokens"))
    asked = usage.get("prompt_tokens_details")
    told = usage.get("completion_tokens_details")
    cached = count(asked.get("cached_tokens")) if isinstance(asked, dict) else 0
    reasoning = count(told.get("reasoning_tokens")) if isinstance(told, dict) else 0
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        cached_tokens=min(cached, prompt),
        reasoning_tokens=min(reasoning, completion),
    )


def _kinds(error: object) -> set[str]:
    """The words an error names itself by: its ``code`` (when a word) and its ``type``."""
    if not isinstance(error, dict):
        return set()
    return {value for key in ("code", "type") if isinstance(value := error.get(key), str)}


def _status_named(error: object) -> int:
    """The status an error in a 200 stands for: its numeric ``code``, else its kind's."""
    if isinstance(error, dict):
        code = error.get("code")
        if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600:  # noqa: PLR2004
            return code
        for key in ("code", "type"):
            status = _STATUS_OF.get(str(error.get(key)))
            if status is not None:
                return status
    return _SERVER_ERROR


def _unsupported(error: object, message: str | None) -> Unsupported | None:
    """What of the request a 400 says the model does not take, if it says so."""
    said = f"{error.get('param') if isinstance(error, dict) else ''} {message or ''}".lower()
    refused = "unsupported" in said or "not supported" in said
    if refused and ("max_tokens" in said or "max_completion_tokens" in said):
        return "token_param"
    if "response_format" in said or "json_schema" in said or "json_object" in said:
        return "structured"  # refused, or a schema it cannot hold: asked more plainly either way
    return None


WIRE_FORMAT = OpenAIChat()
"""The instance the registry hands out."""
