"""What every wire format reads the same way: counts, waits, error messages, JSON bodies, schemas.

Providers disagree on shapes, not on these: a count may come as ``12`` or
``12.0``; a wait as ``Retry-After`` (seconds or an HTTP date) or
``retry-after-ms``; an error's words as ``error.message``, a bare ``error``
string, a ``message`` or a ``detail``, or as a page of plain text.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from agentops.guards.failure import parse_retry_after

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["MAX_MESSAGE_CHARS", "closed_schema", "count", "error_message", "json_body", "waited_s"]

MAX_MESSAGE_CHARS = 300
"""The most of a provider's error message an operator is shown (a body may be a page)."""


def count(value: object) -> int:
    """A token count as a provider wrote it (an int, or a float such as ``12.0``); else 0.

    A fraction is rounded up: money is never counted short.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if not math.isfinite(value) or value <= 0:
        return 0
    return math.ceil(value)


def waited_s(headers: Mapping[str, str]) -> float | None:
    """How long the provider asked to wait: ``retry-after-ms`` first, then ``Retry-After``."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            seconds = float(millis) / 1000
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return parse_retry_after(headers.get("Retry-After"))


def json_body(content: bytes) -> Any:
    """The body as JSON; None if it is none (never raises, however it is nested)."""
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return None


def error_message(body: Any, content: bytes) -> str | None:
    """The provider's words in an error answer: from its JSON, else its text, cut short."""
    said: object = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            said = error.get("message")
        elif isinstance(error, str):  # {"error": "model not found"}, as Ollama says it
            said = error
        if not isinstance(said, str):
            message = body.get("message")
            said = message if isinstance(message, str) else body.get("detail")
    elif body is None:  # not JSON: a gateway's page or a plain sentence
        said = content.decode("utf-8", "replace")
    if not isinstance(said, str):
        return None
    words = " ".join(said.split())
    if len(words) > MAX_MESSAGE_CHARS:
        words = words[: MAX_MESSAGE_CHARS - 1].rstrip() + "…"
    return words or None


_SUBSCHEMAS = {
    "properties": "map",
    "$defs": "map",
    "definitions": "map",
    "patternProperties": "map",
    "anyOf": "list",
    "allOf": "list",
    "oneOf": "list",
    "prefixItems": "list",
    "items": "one",
    "additionalProperties": "one",
    "not": "one",
    "contains": "one",
}
"""The keywords holding schemas: by name (a map), in a list, or one."""


def closed_schema(schema: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """``schema`` with ``additionalProperties: false`` on every object, and whether it is strict.

    Strict (OpenAI's ``strict: true``) also needs every property required:
    a model with defaults is sent as a closed schema without ``strict``.
    """
    open_parts: list[str] = []  # what keeps it from being strict

    def close(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        closed = dict(node)
        for key, shape in _SUBSCHEMAS.items():
            held = node.get(key)
            if shape == "map" and isinstance(held, dict):
                closed[key] = {name: close(sub) for name, sub in held.items()}
            elif shape == "list" and isinstance(held, list):
                closed[key] = [close(sub) for sub in held]
            elif shape == "one" and isinstance(held, dict):
                closed[key] = close(held)
        if node.get("type") == "object" or isinstance(node.get("properties"), dict):
            closed.setdefault("additionalProperties", False)
            if closed["additionalProperties"] is not False:
                open_parts.append("additionalProperties")
            open_parts.extend(set(node.get("properties") or {}) - set(node.get("required") or ()))
        return closed

    return close(dict(schema)), not open_parts
