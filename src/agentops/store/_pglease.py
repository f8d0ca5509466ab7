"""The PostgreSQL store's leases, its journal and a group's slots: who may run and write.

A lease is a row per agent with a fencing token and an expiry, and its holder
keeps the agent's session advisory lock on a connection of its own, so that
its death frees the lease at once (see :mod:`agentops.store.postgres`). A
journal record is written in the statement that checks the holder's token.
A group's slots are advisory locks too, each on a connection of the run's own.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import TYPE_CHECKING, Any, NamedTuple

from agentops.errors import LeaseLost, Overlap, StateError
from agentops.model.journal import encode, parse_lines
from agentops.store._pgbase import PostgresBase
from agentops.store._pgschema import advisory_key
from agentops.store.base import Holder, Marker, Remains

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from datetime import datetime

    import psycopg
    from pydantic import BaseModel

    from agentops.store.base import Lease

_KEPT: list[psycopg.Connection[Any]] = []
"""Connections of leases kept until the process exits (threads of a run still going)."""


class _Row(NamedTuple):
    token: int
    held: bool
    locked: bool
    live: bool
    pid: int | None
    host: str | None
    run_id: str | None
    since: datetime | None


class PostgresLease:
    """An agent's lease, held through a connection of its own (shared by leases taken together)."""

    def __init__(
        self, store: PostgresBase, agent: str, token: int, connection: Any, *, locked: bool
    ) -> None:
        """Held as ``token`` on ``connection``; ``locked``: with the agent's advisory lock."""
        self._store = store
        self.agent = agent
        self.token = token
        self.connection: psycopg.Connection[Any] = connection
        self.locked = locked
        self.kept = False

    def keep_until_exit(self) -> None:
        """Hold it until the process exits: its connection stays open until then."""
        self.kept = True
        _KEPT.append(self.connection)

    def check(self) -> None:
        """Raise :class:`LeaseLost` unless the lease row still names this holder, unexpired."""
        if self.connection.closed:  # released: its block ended
            raise self.lost()
        row = self._store.execute(
            "SELECT 1 FROM {s}.lease WHERE agent = %s AND token = %s AND held "
            "AND expires_at > clock_timestamp()",
            (self.agent, self.token),
            connection=self.connection,
        ).fetchone()
        if row is None:
            raise self.lost()

    def lost(self) -> LeaseLost:
        """The error of a holder whose lease lapsed or was taken over."""
        return LeaseLost(
            f"{self.agent}: the run's lease lapsed or was taken over by another run; "
            "it may not write any more",
            agent=self.agent,
        )


class PostgresJournal:
    """The running invocation's records, one row each, written only while the lease holds."""

    def __init__(self, store: PostgresBase, lease: PostgresLease, run_id: str) -> None:
        """Append for ``run_id`` under ``lease``."""
        self.run_id = run_id
        self._store = store
        self._lease = lease
        # One statement: the lease row is checked (and share-locked against a
        # takeover) as the record goes in; synchronous_commit is set for this
        # transaction only.
        self._insert = (
            "WITH setting AS (SELECT set_config('synchronous_commit', %s, true)) "
            "INSERT INTO {s}.journal (agent, run_id, record) "
            "SELECT l.agent, %s, %s FROM {s}.lease l, setting "
            "WHERE l.agent = %s AND l.token = %s AND l.held "
            "AND l.expires_at > clock_timestamp() FOR SHARE OF l"
        )

    def append(self, record: BaseModel, *, durable: bool = True) -> None:
        """Insert ``record``; ``durable`` waits for it to reach the server's disk."""
        line = encode(record)[:-1].decode()
        cursor = self._store.execute(
            self._insert,
            ("on" if durable else "off", self.run_id, line, self._lease.agent, self._lease.token),
            connection=self._lease.connection,
        )
        if cursor.rowcount != 1:
            raise self._lease.lost()

    def sync(self) -> None:
        """Make every record so far durable: a synchronous commit flushes all before it."""
        self._store.execute("SELECT txid_current()", (), connection=self._lease.connection)

    def close(self) -> None:
        """Nothing to release: the rows stay until the state holding them is committed."""


class LeasingStore(PostgresBase):
    """A PostgreSQL store's leases, journals and group slots."""

    # -- the lease ---------------------------------------------------------------------

    @contextlib.contextmanager
    def lease(self, name: str, *, run_id: str, ttl_s: float) -> Iterator[PostgresLease]:
        """Take ``name``'s lease for ``ttl_s`` seconds at most, or raise :class:`Overlap`."""
        with self.leases([name], run_id=run_id, ttl_s=ttl_s) as taken:
            yield taken[name]

    @contextlib.contextmanager
    def leases(
        self, names: Iterable[str], *, run_id: str, ttl_s: float
    ) -> Iterator[dict[str, PostgresLease]]:
        """Take the leases of every agent of ``names`` in one transaction, or none.

        They share one connection, so a copy of a whole fleet holds one.
        """
        names = sorted(set(names))  # rows locked in one order everywhere: no deadlock
        self._main()  # the tables are this agentops'
        connection = self._connector.connect()
        taken: dict[str, PostgresLease] = {}
        try:
            taken = self._take(connection, names, run_id=run_id, ttl_s=ttl_s)
            yield taken
        finally:
            self._release(connection, list(taken.values()))

    def _take(
        self, connection: psycopg.Connection[Any], names: list[str], *, run_id: str, ttl_s: float
    ) -> dict[str, PostgresLease]:
        keys = [advisory_key(self.schema, name) for name in names]
        with self._transaction(connection):
            # Contenders take turns on the rows (made first if need be), and each
            # tries the advisory locks only in its turn: the one that takes a
            # lease is then the one holding its lock, which its death frees at once.
            self._exec(
                connection,
                "INSERT INTO {s}.lease (agent, token, held, locked) "
                "SELECT unnest(%s::text[]), 0, false, false ON CONFLICT (agent) DO NOTHING",
                (names,),
            )
            rows = {
                found[0]: _Row(*found[1:])
                for found in self._exec(
                    connection,
                    "SELECT agent, token, held, locked, expires_at > clock_timestamp(), "
                    "pid, host, run_id, since "
                    "FROM {s}.lease WHERE agent = ANY(%s) ORDER BY agent FOR UPDATE",
                    (names,),
                )
            }
            locked: dict[str, bool] = dict(
                self._exec(
                    connection,
                    "SELECT agent, pg_try_advisory_lock(key) "
                    "FROM unnest(%s::text[], %s::bigint[]) AS t(agent, key)",
                    (names, keys),
                ).fetchall()
            )
            for name in names:
                row = rows[name]
                # Taken while its holder may live: a live row whose holder keeps its
                # advisory lock, or one taken over without it (a frozen host's).
                if row.held and row.live and (not locked[name] or not row.locked):
                    raise Overlap(
                        f"{name} is already running (pid {row.pid} on {row.host}, "
                        f"run {row.run_id}, per the store {self.where})",
                        agent=name,
                    )
            # The expiry counts from now by the database's clock, not from the
            # transaction's start: a lease granted after a long wait is not born lapsed.
            tokens: dict[str, int] = dict(
                self._exec(
                    connection,
                    "UPDATE {s}.lease AS l SET token = l.token + 1, held = true, "
                    "locked = t.locked, pid = %s, host = %s, run_id = %s, "
                    "since = clock_timestamp(), "
                    "expires_at = clock_timestamp() + %s * interval '1 second' "
                    "FROM unnest(%s::text[], %s::boolean[]) AS t(agent, locked) "
                    "WHERE l.agent = t.agent RETURNING l.agent, l.token",
                    (
                        os.getpid(),
                        socket.gethostname(),
                        run_id,
                        ttl_s,
                        names,
                        [locked[name] for name in names],
                    ),
                ).fetchall()
            )
        return {
            name: PostgresLease(self, name, tokens[name], connection, locked=locked[name])
            for name in names
        }

    def _release(self, connection: psycopg.Connection[Any], leases: list[PostgresLease]) -> None:
        kept = any(lease.kept for lease in leases)
        released = [lease for lease in leases if not lease.kept]
        with contextlib.suppress(StateError):
            if released:
                self.execute(
                    "UPDATE {s}.lease AS l SET held = false "
                    "FROM unnest(%s::text[], %s::bigint[]) AS t(agent, token) "
                    "WHERE l.agent = t.agent AND l.token = t.token",
                    ([lease.agent for lease in released], [lease.token for lease in released]),
                    connection=connection,
                )
            # Now, not when the server gets round to ending the session: the next
            # run must find the locks free, or it takes the lease without one, and
            # then its death frees nothing until the expiry.
            if not kept:
                self.execute("SELECT pg_advisory_unlock_all()", (), connection=connection)
            elif unlock := [advisory_key(self.schema, x.agent) for x in released if x.locked]:
                self.execute(
                    "SELECT pg_advisory_unlock(key) FROM unnest(%s::bigint[]) AS key",
                    (unlock,),
                    connection=connection,
                )
        if not kept:
            connection.close()  # the advisory locks go with the session in any case

    def holder(self, name: str) -> Holder | None:
        """Who holds ``name``'s lease: a live holder (its connection open) not past its expiry."""
        key = advisory_key(self.schema, name) & 0xFFFF_FFFF_FFFF_FFFF
        found = self.execute(
            "SELECT l.pid, l.host, l.run_id, l.since, l.token, "
            "(NOT l.locked OR EXISTS (SELECT 1 FROM pg_locks p WHERE p.locktype = 'advisory' "
            "AND p.granted AND p.classid = %s::oid AND p.objid = %s::oid AND p.objsubid = 1 "
            "AND p.database = (SELECT oid FROM pg_database WHERE datname = current_database()))) "
            "FROM {s}.lease l WHERE l.agent = %s AND l.held AND l.expires_at > clock_timestamp()",
            (key >> 32, key & 0xFFFF_FFFF, name),
        ).fetchone()
        if found is None or not found[5]:
            return None
        pid, host, run_id, since, token, _ = found
        return Holder(pid=pid or 0, host=host or "", run_id=run_id or "", since=since, token=token)

    # -- the journal -------------------------------------------------------------------

    def journal(self, lease: Lease, run_id: str) -> PostgresJournal:
        """The journal of the invocation ``run_id``, written through the lease's connection."""
        if not isinstance(lease, PostgresLease):
            raise TypeError("a PostgreSQL journal needs a PostgreSQL lease")
        lease.check()
        return PostgresJournal(self, lease, run_id)

    def pending(self, name: str) -> list[BaseModel] | None:
        """The records a run that died left, in order; None if there are none."""
        return self.remains(name).records

    def remains(self, name: str) -> Remains:
        """The journal a dead run left and the markers published of ended runs: one statement.

        Every run's start asks, so the markers cost it no round trip of their own.
        """
        rows = self.execute(
            "SELECT 0, id, record, NULL::timestamptz, NULL, NULL FROM {s}.journal "
            "WHERE agent = %s UNION ALL "
            "SELECT 1, 0, run_id, started_at, kind, last_words FROM {s}.deadline_marker "
            "WHERE agent = %s ORDER BY 1, 2",
            (name, name),
        ).fetchall()
        journal = [row[2] for row in rows if row[0] == 0]
        markers = tuple(
            Marker(run_id, started, ended=True, last_words=words, kind=kind)
            for part, _, run_id, started, kind, words in rows
            if part == 1
        )
        if not journal:
            return Remains(None, markers)
        data = "".join(f"{line}\n" for line in journal).encode()
        try:
            return Remains(parse_lines(data, agent=name), markers)
        except ValueError as exc:
            raise StateError(
                f"{name}: unreadable journal in the store {self.where} ({exc}); "
                "it was left as it is",
                agent=name,
            ) from exc

    # -- a group's slots ---------------------------------------------------------------

    @contextlib.contextmanager
    def group_slot(self, group: str, limit: int) -> Iterator[bool]:
        """Try each slot's advisory lock on a connection of its own, which the slot keeps."""
        self._main()  # the tables are this agentops'
        connection = self._connector.connect()
        try:
            for slot in range(limit):
                got = self.execute(
                    "SELECT pg_try_advisory_lock(%s)",
                    (advisory_key(self.schema, "group", group, str(slot)),),
                    connection=connection,
                ).fetchone()
                if got and got[0]:
                    yield True
                    return
            yield False
        finally:
            connection.close()  # the server frees the session's advisory locks with it
