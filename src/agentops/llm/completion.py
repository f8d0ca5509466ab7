"""What ``ctx.llm.complete()`` returns: a model's reply, why it stopped, and what it cost.

Kept apart from the client so that an agent's code can name the type
(``from agentops import Completion``) without importing httpx.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Completion"]


@dataclass(frozen=True, slots=True)
class Completion:
    """A model's reply, and what it cost."""

    text: str | None
    """The reply, secrets and personal data redacted (``[guard] pii``); None when the
    model wrote nothing."""
    parsed: Any
    """With ``schema``: the reply as that pydantic model; else None."""
    model: str
    """The model that answered (its name in ``[models]``)."""
    tokens_in: int
    """The prompt's tokens (the provider's count; an estimate where it gave none)."""
    tokens_out: int
    """The reply's tokens, hidden reasoning included."""
    cost_usd: float | None
    """What it cost (0 from the cache; None for a model without prices)."""
    cached: bool
    """Whether it came from the cache (or an earlier attempt of this run): nothing was sent."""
    latency_ms: float
    """How long the request took, from sending it to its answer (0 from the cache)."""
    finish_reason: str | None = "stop"
    """Why the model stopped, the same word whatever the provider: ``stop``, ``length``
    (the output limit), ``content_filter``, ``tool_calls``, ``refusal``, ``other``;
    None when the provider did not say."""
    raw_finish_reason: str | None = None
    """The same in the provider's own word (``end_turn``, ``max_tokens``...)."""
    truncated: bool = False
    """Whether the text is not the whole answer: cut at the output limit, withheld by
    a content filter, or empty (``llm.truncated`` says which)."""
    refusal: str | None = None
    """The model's refusal, when it refused (on :class:`~agentops.errors.ReplyRefused`)."""
    tokens_cached: int = 0
    """Of ``tokens_in``, those read from the provider's prompt cache."""
    tokens_cache_write: int = 0
    """Of ``tokens_in``, those written to the provider's prompt cache."""
    tokens_reasoning: int = 0
    """Of ``tokens_out``, those the model spent thinking."""
