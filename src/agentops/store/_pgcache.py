"""An agent's LLM reply cache in the PostgreSQL store: one reply paid for serves every host.

The rows of ``{schema}.reply`` hold what :class:`~agentops.llm.cache.ReplyCache`
keeps in its SQLite file (the reply as the agent received it, under the
digest of its request, for ``[llm] cache`` and at most ``cache_entries`` of
them, the oldest dropped first). A cache never fails a run: a store that
does not answer makes it ``unavailable`` for the rest of the run.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from agentops.errors import StateError

if TYPE_CHECKING:
    from agentops.store._pgconnection import Statements

__all__ = ["PostgresReplyCache"]


class PostgresReplyCache:
    """One agent's replies in the store's ``reply`` table."""

    def __init__(self, store: Statements, agent: str, *, ttl_s: float, max_entries: int) -> None:
        """Keep ``agent``'s replies ``ttl_s`` seconds, at most ``max_entries`` of them."""
        self._store = store
        self._agent = agent
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.reset_because: str | None = None
        self.unavailable: str | None = None
        self._lock = threading.Lock()  # the agent's threads share the store's connection

    def get(self, key: str, now: float) -> dict[str, Any] | None:
        """The reply stored under ``key`` if it has not expired."""
        with self._lock:
            if self.unavailable is not None:
                return None
            try:
                found = self._store.execute(
                    "SELECT reply FROM {s}.reply WHERE agent = %s AND key = %s AND expires > %s",
                    (self._agent, key, now),
                ).fetchone()
            except StateError as exc:
                self.unavailable = exc.message
                return None
        return None if found is None else dict(json.loads(found[0]))

    def put(self, key: str, reply: dict[str, Any], now: float) -> None:
        """Keep ``reply`` under ``key``; drop expired replies, and the oldest past the bound."""
        text = json.dumps(reply, separators=(",", ":"))
        with self._lock:
            if self.unavailable is not None:
                return
            try:
                with self._store.transaction() as run:
                    run(
                        "INSERT INTO {s}.reply (agent, key, reply, stored, expires) "
                        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (agent, key) DO UPDATE SET "
                        "reply = EXCLUDED.reply, stored = EXCLUDED.stored, "
                        "expires = EXCLUDED.expires",
                        (self._agent, key, text, now, now + self.ttl_s),
                    )
                    run(
                        "DELETE FROM {s}.reply WHERE agent = %s AND (expires <= %s OR key IN "
                        "(SELECT key FROM {s}.reply WHERE agent = %s "
                        "ORDER BY stored DESC OFFSET %s))",
                        (self._agent, now, self._agent, self.max_entries),
                    )
            except StateError as exc:
                self.unavailable = exc.message

    def close(self) -> None:
        """Nothing to release: the connection is the store's."""
