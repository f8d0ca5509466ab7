"""The PostgreSQL store: agents' state, journals and leases shared by every host.

Selected by ``[store] url`` in agentops.toml or by ``$AGENTOPS_STORE_URL``
(a ``postgresql://`` URL or a libpq keyword string); installed with
``pip install 'agentops[postgres]'`` (psycopg 3), imported only then. Each
promise of the file store holds across hosts:

- **no overlap anywhere**: a lease is a row per agent, taken in a transaction,
  with a fencing token that grows with each holder and an expiry (the run's
  hard deadline plus its grace), counted by the database's clock from the
  moment it is granted. Its holder also holds a session advisory lock on a
  connection of its own, which the server releases the moment the process
  dies: the next run on any host then takes over at once, instead of
  waiting for the expiry. Only a holder that stopped answering with its
  connection open (a frozen host) keeps others waiting, until the expiry;
- **fencing**: every journal record and every commit is written in the same
  statement or transaction that checks the holder's token against the
  lease row (which it locks), so a holder whose lease lapsed or was taken
  over cannot write anything;
- **durable before the effect**: a durable journal record is a committed
  insert (``synchronous_commit`` on); the others are committed with it off,
  which survives the process being killed and is made durable by the next
  durable commit, as in the file store;
- **atomic commit**: the state, its backup, the ledger and the dropping of
  the journal are one transaction;
- budgets, rate limits and tick claims live in the shared state, so every
  host counts against the same caps; ``agentops tick`` claims every due
  agent's tick in one statement;
- a group's slots are session advisory locks, each held on a connection of
  the run's own: freed when the run ends or its process dies.

Every wait on the database is bounded (:mod:`agentops.store._pgconnection`).
The tables live in a schema of their own (``[store] schema``, default
``agentops``), made by ``agentops store init`` (:mod:`agentops.store._pgschema`);
every other use checks their version, and reads need nothing but ``SELECT``,
so ``status`` and ``ledger`` work on a read-only replica. A password in the
location is never written anywhere by agentops: prefer libpq's own
``PGPASSWORD``, ``~/.pgpass`` or service files.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from pydantic import BaseModel

from agentops.errors import LeaseLost, Overlap, StateError
from agentops.model.journal import encode, parse_lines
from agentops.model.ledger import Ledger
from agentops.model.state import AgentState
from agentops.project.config import StoreConfig
from agentops.store import _pgschema
from agentops.store._pgconnection import Connector
from agentops.store._pgschema import SCHEMA_VERSION, advisory_key
from agentops.store._url import safe_url
from agentops.store.base import Attempt, Holder, Notices, Pause, Snapshot, StoreDescription
from agentops.store.codec import LedgerDocument, dump, read_ledger, read_model, read_state

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from datetime import datetime

    import psycopg

    from agentops.store._pgcache import PostgresReplyCache
    from agentops.store._pgnotes import PostgresNoteRows
    from agentops.store.base import Lease

__all__ = ["SCHEMA_VERSION", "PostgresJournal", "PostgresLease", "PostgresStore", "safe_url"]

_M = TypeVar("_M", bound=BaseModel)

_KEPT: list[psycopg.Connection[Any]] = []
"""Connections of leases kept until the process exits (threads of a run still going)."""

_COLUMN_QUERIES = {
    "state_json": "SELECT state_json FROM {s}.agent_state WHERE agent = %s",
    "backup_json": "SELECT backup_json FROM {s}.agent_state WHERE agent = %s",
    "ledger_json": "SELECT ledger_json FROM {s}.agent_state WHERE agent = %s",
}


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
        self, store: PostgresStore, agent: str, token: int, connection: Any, *, locked: bool
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

    def __init__(self, store: PostgresStore, lease: PostgresLease, run_id: str) -> None:
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


class PostgresStore:
    """Agents' state in a PostgreSQL database, shared by every host that points at it."""

    def __init__(
        self, url: str, *, schema: str | None = None, config: StoreConfig | None = None
    ) -> None:
        """Keep state in ``schema`` of the database at ``url`` (connected on first use).

        ``config`` is the project's ``[store]`` section: its schema (unless
        ``schema`` names one) and the bounds of every wait on the database.
        """
        config = config or StoreConfig()
        schema = schema or config.schema_name
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
            raise ValueError(f"not a schema name agentops uses: {schema!r}")
        self.url = url
        self.schema = schema
        self.where = f"{safe_url(url)} (schema {schema})"
        """The store, as said to people (no password)."""
        self._connector = Connector(url, config, where=self.where)
        self._connection: psycopg.Connection[Any] | None = None
        self._checked = False
        """Whether the tables were found to be this agentops' version."""
        self._created = False
        """Whether this object created the tables (it found none)."""

    # -- connections and the tables ----------------------------------------------------

    def _main(self) -> psycopg.Connection[Any]:
        """The store's own connection, the tables' version checked once."""
        connection = self._open()
        if not self._checked:
            _pgschema.check_version(self._connector, connection, self.schema)
            self._checked = True
        return connection

    def _open(self) -> psycopg.Connection[Any]:
        if self._connection is None or self._connection.closed:
            self._connection = self._connector.connect()
        return self._connection

    def migrate(self, *, create: bool = True) -> int:
        """Create (with ``create``) or migrate the tables; the version found before (0: none).

        Idempotent, and safe when hosts do it together. Without ``create`` it
        refuses, as :class:`~agentops.store.base.StoreUnavailable`, a schema
        holding no tables of agentops.
        """
        found = _pgschema.migrate(self._connector, self._open(), self.schema, create=create)
        self._checked = True
        self._created = self._created or found == 0
        return found

    def prepare(self, *, create: bool) -> StoreDescription:
        """Create (with ``create``) or migrate the tables, then describe the store."""
        self.migrate(create=create)
        return self.describe()

    def describe(self) -> StoreDescription:
        """The database (no password), its schema's version, and the agents it holds state for.

        ``created`` says whether this store object made the tables
        (:meth:`prepare`); describing alone only reads, and refuses tables
        it cannot use.
        """
        found = self.execute("SELECT count(*) FROM {s}.agent_state").fetchone()
        return StoreDescription(
            backend="postgresql",
            where=self.where,
            schema_version=_pgschema.SCHEMA_VERSION,
            created=self._created,
            agents=int(found[0]) if found else 0,
        )

    def execute(
        self,
        query: str,
        args: tuple[Any, ...] = (),
        *,
        connection: psycopg.Connection[Any] | None = None,
    ) -> psycopg.Cursor[Any]:
        """Run one statement (on the store's connection unless told), errors as StateError."""
        connection = connection or self._main()
        with self._connector.answering(connection):
            return self._exec(connection, query, args)

    def _exec(
        self, connection: psycopg.Connection[Any], query: str, args: tuple[Any, ...] = ()
    ) -> psycopg.Cursor[Any]:
        # Every query names its tables {s}.table: the schema, a checked identifier.
        return connection.execute(query.replace("{s}", self.schema), args)

    @contextlib.contextmanager
    def _transaction(self, connection: psycopg.Connection[Any] | None = None) -> Iterator[Any]:
        connection = connection or self._main()
        with self._connector.answering(connection), connection.transaction():
            yield connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Callable[[str, tuple[Any, ...]], psycopg.Cursor[Any]]]:
        """Run statements in one transaction on the store's connection, as ``run(query, args)``."""
        with self._transaction() as connection:
            yield lambda query, args: self._exec(connection, query, args)

    def note_rows(self, name: str) -> PostgresNoteRows:
        """``name``'s long-term notes, kept in the database: every host recalls them."""
        from agentops.store._pgnotes import PostgresNoteRows  # noqa: PLC0415 - runs that keep notes

        return PostgresNoteRows(self, name)

    def reply_cache(self, name: str, *, ttl_s: float, max_entries: int) -> PostgresReplyCache:
        """``name``'s LLM reply cache, in the database: a reply paid for on one host serves all."""
        from agentops.store._pgcache import PostgresReplyCache  # noqa: PLC0415 - [llm] cache only

        return PostgresReplyCache(self, name, ttl_s=ttl_s, max_entries=max_entries)

    def close(self) -> None:
        """Close the store's own connection (leases keep theirs)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

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

    def _fenced(self, connection: psycopg.Connection[Any], lease: Lease) -> None:
        # Inside a transaction: the lease row is locked until it ends, so no
        # takeover can slip between this check and the writes after it.
        row = self._exec(
            connection,
            "SELECT 1 FROM {s}.lease WHERE agent = %s AND token = %s AND held "
            "AND expires_at > clock_timestamp() FOR UPDATE",
            (lease.agent, lease.token),
        ).fetchone()
        if row is None:
            raise LeaseLost(
                f"{lease.agent}: the run's lease lapsed or was taken over by another run; "
                "its state was not saved",
                agent=lease.agent,
            )

    # -- state and ledger --------------------------------------------------------------

    def load(self, name: str) -> AgentState:
        """The agent's state; fresh if the store has none."""
        raw = self._column(name, "state_json")
        if raw is None:
            return AgentState(agent=name)
        return read_state(raw, name, lambda why: self._unreadable(name, why))

    def load_ledger(self, name: str) -> Ledger:
        """The agent's ledger; empty if the store has none."""
        raw = self._column(name, "ledger_json")
        if raw is None:
            return Ledger()
        return read_ledger(raw, name, lambda why: self._unreadable(name, why, what="ledger"))

    def backup(self, name: str) -> AgentState | None:
        """The state before the last commit."""
        raw = self._column(name, "backup_json")
        if raw is None:
            return None
        return read_state(raw, name, lambda why: self._unreadable(name, why, what="backup"))

    def _column(self, name: str, column: str) -> str | None:
        found = self.execute(
            _COLUMN_QUERIES[column],
            (name,),
        ).fetchone()
        return None if found is None else found[0]

    def commit(
        self,
        lease: Lease,
        state: AgentState,
        *,
        ledger: Ledger | None = None,
        drop_journal: bool = False,
        keep_backup: bool = False,
    ) -> None:
        """Save the state, the ledger if changed, and drop the journal: one transaction.

        The state's previous version becomes the backup; the lease is checked
        (and its row locked) in the same transaction.
        """
        name = state.agent
        try:
            state_json = dump(state).decode()
        except ValueError as exc:
            raise StateError(f"{name}: state is not JSON: {exc}", agent=name) from exc
        ledger_json = None
        if ledger is not None and ledger.changed:
            ledger_json = dump(LedgerDocument.of(name, ledger)).decode()
        with self._transaction() as connection:
            self._fenced(connection, lease)
            self._exec(
                connection,
                "INSERT INTO {s}.agent_state AS s (agent, state_json, ledger_json) "
                "VALUES (%s, %s, %s) ON CONFLICT (agent) DO UPDATE SET "
                "backup_json = CASE WHEN %s THEN s.backup_json ELSE s.state_json END, "
                "state_json = EXCLUDED.state_json, "
                "ledger_json = COALESCE(EXCLUDED.ledger_json, s.ledger_json), updated_at = now()",
                (name, state_json, ledger_json, keep_backup),
            )
            if drop_journal:
                self._exec(
                    connection,
                    "DELETE FROM {s}.journal WHERE agent = %s",
                    (name,),
                )
        if ledger is not None:
            ledger.changed = False

    def restore(self, lease: Lease, name: str) -> None:
        """Swap the state and its backup (a second restore undoes the first)."""
        with self._transaction() as connection:
            self._fenced(connection, lease)
            swapped = self._exec(
                connection,
                "UPDATE {s}.agent_state SET state_json = backup_json, "
                "backup_json = state_json, updated_at = now() "
                "WHERE agent = %s AND backup_json IS NOT NULL",
                (name,),
            ).rowcount
        if swapped != 1:
            raise StateError(
                f"{name}: the store {self.where} holds no backup to restore", agent=name
            )

    # -- the journal -------------------------------------------------------------------

    def journal(self, lease: Lease, run_id: str) -> PostgresJournal:
        """The journal of the invocation ``run_id``, written through the lease's connection."""
        if not isinstance(lease, PostgresLease):
            raise TypeError("a PostgreSQL journal needs a PostgreSQL lease")
        lease.check()
        return PostgresJournal(self, lease, run_id)

    def pending(self, name: str) -> list[BaseModel] | None:
        """The records a run that died left, in order; None if there are none."""
        rows = self.execute(
            "SELECT record FROM {s}.journal WHERE agent = %s ORDER BY id",
            (name,),
        ).fetchall()
        if not rows:
            return None
        data = "".join(f"{row[0]}\n" for row in rows).encode()
        try:
            return parse_lines(data, agent=name)
        except ValueError as exc:
            raise StateError(
                f"{name}: unreadable journal in the store {self.where} ({exc}); "
                "it was left as it is",
                agent=name,
            ) from exc

    # -- records kept without the lease ------------------------------------------------

    def claim_tick(self, lease: Lease, tick: datetime) -> bool:
        """Claim ``tick``, once across every host; False if it (or a later one) was claimed."""
        with self._transaction() as connection:
            self._fenced(connection, lease)
            claimed = self._exec(
                connection,
                "INSERT INTO {s}.tick AS t (agent, tick) VALUES (%s, %s) "
                "ON CONFLICT (agent) DO UPDATE SET tick = EXCLUDED.tick "
                "WHERE t.tick < EXCLUDED.tick",
                (lease.agent, tick),
            ).rowcount
        return claimed == 1

    def claim_ticks(self, ticks: Mapping[str, datetime]) -> set[str]:
        """Claim every tick in one statement: the agents whose tick (and no later one) was free."""
        if not ticks:
            return set()
        names = sorted(ticks)  # one order for every host: no deadlock between two claims
        won = self.execute(
            "INSERT INTO {s}.tick AS t (agent, tick) "
            "SELECT * FROM unnest(%s::text[], %s::timestamptz[]) "
            "ON CONFLICT (agent) DO UPDATE SET tick = EXCLUDED.tick "
            "WHERE t.tick < EXCLUDED.tick RETURNING t.agent",
            (names, [ticks[name] for name in names]),
        ).fetchall()
        return {row[0] for row in won}

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

    def last_tick(self, name: str) -> datetime | None:
        """The last tick claimed."""
        found = self.execute(
            "SELECT tick FROM {s}.tick WHERE agent = %s",
            (name,),
        ).fetchone()
        return None if found is None else found[0]

    def record_attempt(self, name: str, attempt: Attempt) -> None:
        """Remember the last attempt (not waiting for the disk: losing it is harmless)."""
        self._put(name, "attempt", attempt, durable=False)

    def last_attempt(self, name: str) -> Attempt | None:
        """The last attempt recorded."""
        return self._get(name, "attempt", Attempt)

    def set_pause(self, name: str, pause: Pause | None) -> None:
        """Pause the agent, or resume it."""
        if pause is None:
            self.execute(
                "DELETE FROM {s}.agent_record WHERE agent = %s AND kind = 'pause'",
                (name,),
            )
        else:
            self._put(name, "pause", pause, durable=True)

    def pause(self, name: str) -> Pause | None:
        """The agent's pause, if it is paused."""
        return self._get(name, "pause", Pause)

    def notices(self, name: str) -> Notices | None:
        """What people were told about the agent."""
        return self._get(name, "notices", Notices)

    def set_notices(self, name: str, notices: Notices) -> None:
        """Remember what people were told."""
        self._put(name, "notices", notices, durable=False)

    # -- copies ------------------------------------------------------------------------

    def snapshot(self, name: str) -> Snapshot:
        """Everything the store keeps of ``name``."""
        present = self._column(name, "state_json") is not None
        return Snapshot(
            agent=name,
            state=self.load(name) if present else None,
            backup=self.backup(name),
            ledger=self.load_ledger(name) if self._column(name, "ledger_json") else None,
            attempt=self.last_attempt(name),
            pause=self.pause(name),
            notices=self.notices(name),
            tick=self.last_tick(name),
        )

    def put_snapshot(self, lease: Lease, snapshot: Snapshot) -> None:
        """Make the snapshot everything the store keeps of its agent: one transaction."""
        name = snapshot.agent
        state, backup = (
            None if model is None else dump(model).decode()
            for model in (snapshot.state, snapshot.backup)
        )
        ledger = None
        if snapshot.ledger is not None:
            ledger = dump(LedgerDocument.of(name, snapshot.ledger)).decode()
        records = {
            "attempt": snapshot.attempt,
            "pause": snapshot.pause,
            "notices": snapshot.notices,
        }
        with self._transaction() as connection:
            self._fenced(connection, lease)
            self._exec(connection, "DELETE FROM {s}.agent_state WHERE agent = %s", (name,))
            self._exec(connection, "DELETE FROM {s}.agent_record WHERE agent = %s", (name,))
            self._exec(connection, "DELETE FROM {s}.tick WHERE agent = %s", (name,))
            if state is not None:
                self._exec(
                    connection,
                    "INSERT INTO {s}.agent_state (agent, state_json, backup_json, ledger_json) "
                    "VALUES (%s, %s, %s, %s)",
                    (name, state, backup, ledger),
                )
            for kind, model in records.items():
                if model is not None:
                    self._exec(
                        connection,
                        "INSERT INTO {s}.agent_record (agent, kind, value_json) "
                        "VALUES (%s, %s, %s)",
                        (name, kind, model.model_dump_json()),
                    )
            if snapshot.tick is not None:
                self._exec(
                    connection,
                    "INSERT INTO {s}.tick (agent, tick) VALUES (%s, %s)",
                    (name, snapshot.tick),
                )

    def _put(self, name: str, kind: str, model: BaseModel, *, durable: bool) -> None:
        self.execute(
            "WITH setting AS (SELECT set_config('synchronous_commit', %s, true)) "
            "INSERT INTO {s}.agent_record AS r (agent, kind, value_json) "
            "SELECT %s, %s, %s FROM setting "
            "ON CONFLICT (agent, kind) DO UPDATE SET value_json = EXCLUDED.value_json",
            ("on" if durable else "off", name, kind, model.model_dump_json()),
        )

    def _get(self, name: str, kind: str, model: type[_M]) -> _M | None:
        found = self.execute(
            "SELECT value_json FROM {s}.agent_record WHERE agent = %s AND kind = %s",
            (name, kind),
        ).fetchone()
        if found is None:
            return None
        return read_model(found[0], model, lambda why: self._unreadable(name, why, what=kind))

    def _unreadable(self, name: str, why: str, *, what: str = "state") -> StateError:
        return StateError(
            f"{name}: unreadable {what} in the store {self.where} ({why}); it was left as it is",
            agent=name,
        )
