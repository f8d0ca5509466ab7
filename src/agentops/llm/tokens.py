"""Token estimates that need no download, and pruning a conversation to a context window.

A tokenizer would mean a model download (or a large dependency) per
provider. agentops needs two figures, and neither needs one:

- whether a request fits a context window (and what to prune): an estimate,
  a token per three bytes of UTF-8 (English averages about four characters
  a token, code and other scripts fewer);
- what to reserve before a call: a true upper bound, a token per byte. A
  byte-level tokenizer (GPT's, Llama's byte fallback) never makes more, and
  rare scripts, hex or base64 come close to it: an estimate there would let
  the reply's ``usage`` settle past a cap the reservation kept.

Both add a few tokens per message for the chat format. The reply's
``usage`` settles the real cost afterwards. A tool loop sends its growing
conversation every turn: :class:`Sizes` keeps each message's figures, so a
turn works out only those of its new messages.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "MESSAGE_OVERHEAD",
    "Sizes",
    "bound_messages",
    "estimate",
    "estimate_messages",
    "prune",
    "text_of",
]

MESSAGE_OVERHEAD = 4
"""Tokens each message costs beyond its text (role, separators)."""

_BYTES_PER_TOKEN = 3


def estimate(text: str) -> int:
    """An upper estimate of the tokens of ``text``: at least 1."""
    return max(1, -(-len(text.encode("utf-8", "surrogatepass")) // _BYTES_PER_TOKEN))


def text_of(message: Mapping[str, Any]) -> str:
    """What a message says: its content, and the tool calls it asks for."""
    content = message.get("content")
    text = "" if content is None else str(content)
    calls = message.get("tool_calls")
    if calls:  # a tool loop's turn: the calls are sent too
        text += json.dumps(calls, ensure_ascii=False, default=str)
    return text


def estimate_messages(messages: Sequence[Mapping[str, Any]]) -> int:
    """An upper estimate of the prompt tokens of a chat request."""
    return 3 + sum(_sizes_of(m)[0] for m in messages)


def bound_messages(messages: Sequence[Mapping[str, Any]]) -> int:
    """The most prompt tokens a chat request can be: a token per byte of its text."""
    return 3 + sum(_sizes_of(m)[1] for m in messages)


class Sizes:
    """The estimate and bound of one conversation, each message's figures worked out once.

    As :func:`estimate_messages` and :func:`bound_messages` give them, for a
    conversation whose messages are appended and never changed (a tool
    loop's): a message is known by its identity, and held, so that its ``id``
    is not given to another while it is known.
    """

    def __init__(self) -> None:
        """No message known yet."""
        self._known: dict[int, tuple[Mapping[str, Any], tuple[int, int]]] = {}

    def estimate(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """:func:`estimate_messages` of ``messages``."""
        return 3 + sum(self._of(m)[0] for m in messages)

    def bound(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """:func:`bound_messages` of ``messages``."""
        return 3 + sum(self._of(m)[1] for m in messages)

    def _of(self, message: Mapping[str, Any]) -> tuple[int, int]:
        known = self._known.get(id(message))
        if known is None:
            known = self._known[id(message)] = (message, _sizes_of(message))
        return known[1]


def _sizes_of(message: Mapping[str, Any]) -> tuple[int, int]:
    """A message's estimate and bound, its chat-format overhead included."""
    size = len(text_of(message).encode("utf-8", "surrogatepass"))
    return (
        MESSAGE_OVERHEAD + max(1, -(-size // _BYTES_PER_TOKEN)),
        MESSAGE_OVERHEAD + max(1, size),
    )


def prune(messages: list[dict[str, Any]], budget: int) -> tuple[list[dict[str, Any]], int]:
    """``messages`` cut to fit ``budget`` tokens, and how many were dropped.

    The system messages at the start and the newest messages are kept; the
    oldest of the rest go first (a long conversation loses its middle). The
    result may still not fit (one message alone is too long): the caller
    says so.
    """
    head = 0
    while head < len(messages) - 1 and messages[head].get("role") == "system":
        head += 1
    system, rest = messages[:head], messages[head:]
    size = estimate_messages(messages)
    dropped = 0
    while size > budget and len(rest) > 1:
        size -= MESSAGE_OVERHEAD + estimate(str(rest[0].get("content", "")))
        rest = rest[1:]
        dropped += 1
    return system + rest, dropped
