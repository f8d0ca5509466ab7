"""Replies the run already has: its earlier attempts' first, then the cache's.

A retried run (or ``fallback()``) asks again what an earlier attempt asked:
the reply it paid for is replayed, in order, never bought twice. The cache
(``[llm] cache``) keeps accepted replies between runs, as the agent received
them. Both are looked up by the request's key (its URL and JSON body).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentops.llm.providers.base import ChatReply, Usage

if TYPE_CHECKING:
    from collections.abc import Callable

    from agentops._infra.log import EventLogger
    from agentops._infra.redact import Redactor
    from agentops.model.state import Metrics
    from agentops.store import ReplyStore

__all__ = ["Paid", "Replies"]


@dataclass(frozen=True, slots=True)
class Paid:
    """A model's reply, and what it cost."""

    reply: ChatReply
    """As its wire format read it."""
    usage: Usage
    """What was settled: the reply's usage, estimates where it said nothing."""
    cost_usd: float | None
    latency_ms: float

    @property
    def tokens_in(self) -> int:
        """The prompt's tokens, as settled."""
        return self.usage.input_tokens

    @property
    def tokens_out(self) -> int:
        """The reply's tokens, as settled."""
        return self.usage.output_tokens


class Replies:
    """The run's replies by request key, and the cache behind them."""

    def __init__(
        self,
        *,
        cache: ReplyStore | None,
        metrics: Metrics,
        log: EventLogger,
        redactor: Redactor,
        wall_clock: Callable[[], float],
    ) -> None:
        """The cache may be None (``[llm] cache`` off): only this run's replies are kept."""
        self._cache = cache
        self._metrics = metrics
        self._log = log
        self._redactor = redactor
        self._wall_clock = wall_clock
        self._told_unavailable = False
        self._kept: dict[str, list[Paid]] = {}
        self._replayed: Counter[str] = Counter()

    def known(self, key: str) -> Paid | None:
        """The reply to request ``key`` if the run has it: nothing to send, nothing to pay."""
        # This run's earlier attempts first (a retried run re-sends nothing it
        # already paid for), then the cache.
        earlier = self._kept.get(key, [])
        if self._replayed[key] < len(earlier):
            self._replayed[key] += 1
            return earlier[self._replayed[key] - 1]
        if self._cache is None:
            return None
        stored = self._cache.get(key, self._wall_clock())
        self._tell_if_reset(self._cache)
        if stored is None:
            return None
        reply = _unstored(stored)
        self.keep(key, reply)
        self._metrics.llm_cache_hits += 1
        self._metrics.llm_usd_saved += reply.cost_usd or 0.0
        return reply

    def keep(self, key: str, reply: Paid) -> None:
        """Keep ``reply`` for this run's later attempts: a retried run pays for no reply twice."""
        self._kept.setdefault(key, []).append(reply)
        self._replayed[key] += 1

    def store(self, key: str, reply: Paid, text: str) -> None:
        """Cache ``reply``, accepted by the agent as ``text`` (filtered, secrets redacted)."""
        # Only a reply that was accepted (valid, not refused) is worth reusing,
        # and only as the agent received it: personal data filtered, secrets too.
        if self._cache is not None:
            usage, read = reply.usage, reply.reply
            stored = {
                "text": self._redactor.value(text),
                "tokens_in": usage.input_tokens,
                "tokens_out": usage.output_tokens,
                "cost_usd": reply.cost_usd,
                "finish_reason": read.finish_reason,
                "raw_finish_reason": read.raw_finish_reason,
                "tokens_cached": usage.cached_tokens,
                "tokens_cache_write": usage.cache_write_tokens,
                "tokens_reasoning": usage.reasoning_tokens,
            }
            self._cache.put(key, stored, self._wall_clock())
            self._tell_if_reset(self._cache)

    def rewind(self) -> None:
        """A new attempt (a retry, or ``fallback()``) replays the replies earlier ones had."""
        self._replayed.clear()

    def close(self) -> None:
        """Release the cache."""
        if self._cache is not None:
            self._cache.close()

    def _tell_if_reset(self, cache: ReplyStore) -> None:
        # The cache opens its file on first use: only then can it find it unreadable.
        if cache.reset_because is not None:
            self._log.warning("llm.cache_reset", error=cache.reset_because)
            cache.reset_because = None
        if cache.unavailable is not None and not self._told_unavailable:
            self._log.warning("llm.cache_unavailable", error=cache.unavailable)
            self._told_unavailable = True


def _unstored(stored: dict[str, Any]) -> Paid:
    """A cached reply as the run pays nothing for it (entries of older versions say less)."""
    usage = Usage(
        input_tokens=int(stored["tokens_in"]),
        output_tokens=int(stored["tokens_out"]),
        cached_tokens=int(stored.get("tokens_cached", 0)),
        cache_write_tokens=int(stored.get("tokens_cache_write", 0)),
        reasoning_tokens=int(stored.get("tokens_reasoning", 0)),
    )
    read = ChatReply(
        text=str(stored["text"]),
        usage=usage,
        finish_reason=stored.get("finish_reason", "stop"),
        raw_finish_reason=stored.get("raw_finish_reason"),
    )
    return Paid(read, usage, stored.get("cost_usd"), latency_ms=0.0)
