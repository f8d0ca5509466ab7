"""What the agent asks, checked; structured output asked for, read, and asked for again.

Nothing here knows a provider: messages are ``{"role", "content"}`` dicts of
text, as every wire format takes them (:mod:`agentops.llm.providers`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "Malformed",
    "ask_for_json",
    "check_temperature",
    "messages_of",
    "parse_reply",
    "reask",
]

_S = TypeVar("_S", bound=BaseModel)

_ROLES = frozenset({"system", "user", "assistant"})

_HOTTEST = 2.0
"""The highest temperature, as ``[llm] temperature`` allows."""

_FENCE = re.compile(r"^```[\w-]*[ \t]*\n(.*?)\n?```$", re.DOTALL)


class Malformed(ValueError):
    """A reply that did not validate (or was cut short), to be asked again."""

    def __init__(self, error: str, text: str | None) -> None:
        """``error``: what is wrong with it; ``text``: the reply, shown when asked again."""
        super().__init__(error)
        self.text = text


def messages_of(prompt: str | Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """``prompt`` as a list of messages; ``ValueError`` if no request could carry it."""
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


def check_temperature(warmth: object) -> None:
    """``ValueError`` unless ``warmth`` is None or a number from 0 to 2."""
    if warmth is not None and not (
        isinstance(warmth, int | float) and not isinstance(warmth, bool) and 0 <= warmth <= _HOTTEST
    ):
        raise ValueError(f"temperature must be a number from 0 to 2, not {warmth!r}")


def ask_for_json(messages: list[dict[str, str]], schema: Mapping[str, Any]) -> list[dict[str, str]]:
    """``messages`` with a system message asking for one object of the JSON Schema ``schema``.

    The message comes after the agent's own system messages, before the rest.
    """
    instruction = (
        "Reply with one JSON object and nothing else (no prose, no code fence) that "
        f"conforms to this JSON Schema: {json.dumps(schema)}"
    )
    head = 0
    while head < len(messages) and messages[head]["role"] == "system":
        head += 1
    return [*messages[:head], {"role": "system", "content": instruction}, *messages[head:]]


def reask(reply: str | None, error: str) -> list[dict[str, str]]:
    """The turns that show the model its invalid ``reply`` and ask again.

    A reply with no text is not shown (an empty turn is refused by some APIs):
    the model is told what was wrong with it.
    """
    shown = [{"role": "assistant", "content": reply}] if reply and reply.strip() else []
    return [
        *shown,
        {
            "role": "user",
            "content": f"That reply is not valid: {error}. Reply again with only the JSON object.",
        },
    ]


def parse_reply(text: str, schema: type[_S]) -> _S:
    """``text`` as ``schema``: bare JSON, fenced, or an object amid prose; else ``ValueError``."""
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
