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
``usage`` settles the real cost afterwards.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "MESSAGE_OVERHEAD",
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
    return 3 + sum(MESSAGE_OVERHEAD + estimate(text_of(m)) for m in messages)


def bound_messages(messages: Sequence[Mapping[str, Any]]) -> int:
    """The most prompt tokens a chat request can be: a token per byte of its text."""
    return 3 + sum(
        MESSAGE_OVERHEAD + max(1, len(text_of(m).encode("utf-8", "surrogatepass")))
        for m in messages
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
