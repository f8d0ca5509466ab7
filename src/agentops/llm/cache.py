"""Replies reused for the same request: ``[llm] cache = "24h"``.

Exact match on the canonical request (the endpoint, the model, the messages,
the parameters and the schema asked for), kept in ``state/<name>.llm-cache.sqlite``
for the TTL and bounded to ``cache_entries`` replies, the oldest dropped
first. What is kept is the reply as the agent received it (secrets and
personal data already filtered), never the prompt: the key is its digest.

It is a cache: a file that cannot be read (not a database, a corrupt one,
text that is not UTF-8) is replaced by an empty one, and one that cannot be
opened at all (a link, a FIFO or a directory in its place, a refused write,
an I/O error) is done without for the run; the run says so, and never fails
for it. A full disk, an I/O error or a lock is no reason to throw replies
away. An agent's threads may share it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import TYPE_CHECKING, Any

from agentops._infra import sqlite

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from agentops._infra.fs import FileSystem

__all__ = ["ReplyCache", "request_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    reply TEXT NOT NULL,
    stored REAL NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS replies_stored ON replies (stored);
"""


def request_key(request: dict[str, Any]) -> str:
    """The digest of a request in canonical form: equal requests, equal keys."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class ReplyCache:
    """One agent's reply cache, opened on first use."""

    def __init__(self, fs: FileSystem, path: Path, *, ttl_s: float, max_entries: int) -> None:
        """Keep replies in ``path`` for ``ttl_s`` seconds, at most ``max_entries`` of them."""
        self._fs = fs
        self.path = path
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._db: sqlite3.Connection | None = None
        self.reset_because: str | None = None
        """Why the file was found unreadable and started afresh, if it was."""
        self.unavailable: str | None = None
        """Why the file cannot be used at all this run, if it cannot."""
        self._lock = threading.RLock()

    def get(self, key: str, now: float) -> dict[str, Any] | None:
        """The reply stored under ``key`` if it has not expired."""
        with self._lock:
            found = self._execute(
                "SELECT reply FROM replies WHERE key = ? AND expires > ?", (key, now), fetch=True
            )
        if not found:
            return None
        try:
            reply = json.loads(found[0][0])
        except ValueError:  # a reply damaged in place: a miss, the request is sent again
            return None
        return dict(reply) if isinstance(reply, dict) else None

    def put(self, key: str, reply: dict[str, Any], now: float) -> None:
        """Keep ``reply`` under ``key``; drop expired replies, and the oldest past the bound."""
        text = json.dumps(reply, separators=(",", ":"))
        with self._lock:
            self._execute(
                "INSERT OR REPLACE INTO replies (key, reply, stored, expires) VALUES (?, ?, ?, ?)",
                (key, text, now, now + self.ttl_s),
            )
            self._execute("DELETE FROM replies WHERE expires <= ?", (now,))
            self._execute(
                "DELETE FROM replies WHERE key IN (SELECT key FROM replies ORDER BY stored DESC "
                "LIMIT -1 OFFSET ?)",
                (self.max_entries,),
            )

    def _execute(self, sql: str, args: tuple[Any, ...], *, fetch: bool = False) -> list[Any] | None:
        # Rows are fetched here too: damage often shows only as they are read.
        if self.unavailable is not None:
            return None
        try:
            try:
                return self._run(sql, args, fetch=fetch)
            except sqlite.errors() as exc:
                failed = sqlite.failure(exc)
                if not failed.damaged:
                    raise
                self._start_afresh(failed.why)
                return self._run(sql, args, fetch=fetch)
        except sqlite.errors() as exc:
            self.close()
            self.unavailable = f"{self.path}: {sqlite.failure(exc).why}"
            return None

    def _run(self, sql: str, args: tuple[Any, ...], *, fetch: bool) -> list[Any]:
        cursor = self._connection().execute(sql, args)
        return cursor.fetchall() if fetch else []

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self._db = sqlite.connect(self._fs, self.path, threads=True)
                self._db.executescript(_SCHEMA)
            except sqlite.errors() as exc:
                failed = sqlite.failure(exc)
                if not failed.damaged:
                    raise
                self._start_afresh(failed.why)
                self._db = sqlite.connect(self._fs, self.path, threads=True)
                self._db.executescript(_SCHEMA)
        return self._db

    def _start_afresh(self, why: str) -> None:
        # A cache holds nothing that is not somewhere else: an unreadable one is replaced.
        self.close()
        self.reset_because = why
        for suffix in ("", "-wal", "-shm", "-journal"):
            self._fs.unlink(self.path.with_name(self.path.name + suffix))

    def close(self) -> None:
        """Close the database (it stays on disk)."""
        with self._lock:  # not under a thread still asking it
            if self._db is not None:
                self._db.close()
                self._db = None
