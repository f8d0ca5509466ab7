"""Replies the run already has: its earlier attempts' first, then the cache's.

A retried run (or ``fallback()``) asks again what an earlier attempt asked:
the reply it paid for is replayed, in order, never bought twice. The cache
(``[llm] cache``) keeps accepted replies between runs, as the agent received
them. Both are looked up by the request's key (its URL and JSON body).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

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

    text: str
    tokens_in: int
    tokens_out: int
    cost_usd: float | None
    latency_ms: float


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
        reply = Paid(
            text=str(stored["text"]),
            tokens_in=int(stored["tokens_in"]),
            tokens_out=int(stored["tokens_out"]),
            cost_usd=stored.get("cost_usd"),
            latency_ms=0.0,
        )
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
            stored = {
                "text": self._redactor.value(text),
                "tokens_in": reply.tokens_in,
                "tokens_out": reply.tokens_out,
                "cost_usd": reply.cost_usd,
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
