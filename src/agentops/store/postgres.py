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
- the **deadline markers** of runs that were ended are rows too, published by
  whoever saw the run end (:mod:`agentops.run.markers`), read with the journal
  in one statement and dropped in the commit that records the run: a run
  ended on one host or pod is recorded as ``timeout``, once, by the next run
  on any other;
- budgets, rate limits and tick claims live in the shared state, so every
  host counts against the same caps; ``agentops tick`` claims every due
  agent's tick in one statement;
- a group's slots are session advisory locks, each held on a connection of
  the run's own: freed when the run ends or its process dies.

Every wait on the database is bounded (:mod:`agentops.store._pgconnection`);
the connection and tables are :mod:`agentops.store._pgbase`, the leases,
journal and group slots :mod:`agentops.store._pglease`, and this module the
records a run keeps.
The tables live in a schema of their own (``[store] schema``, default
``agentops``), made by ``agentops store init`` (:mod:`agentops.store._pgschema`);
every other use checks their version, and reads need nothing but ``SELECT``,
so ``status`` and ``ledger`` work on a read-only replica. A password in the
location is never written anywhere by agentops: prefer libpq's own
``PGPASSWORD``, ``~/.pgpass`` or service files.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel

from agentops.errors import StateError
from agentops.model.ledger import Ledger
from agentops.model.state import AgentState
from agentops.store._pglease import LeasingStore, PostgresJournal, PostgresLease
from agentops.store._pgschema import SCHEMA_VERSION, advisory_key
from agentops.store._url import safe_url
from agentops.store.base import Attempt, Notices, Pause, Snapshot, TickClaims
from agentops.store.codec import LedgerDocument, dump, read_ledger, read_model, read_state

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence
    from datetime import datetime

    from agentops.store._pgcache import PostgresReplyCache
    from agentops.store._pgnotes import PostgresNoteRows
    from agentops.store.base import Lease, Marker

__all__ = ["SCHEMA_VERSION", "PostgresJournal", "PostgresLease", "PostgresStore", "safe_url"]

_M = TypeVar("_M", bound=BaseModel)

_LOST_CLAIM = (
    "{row}.claimer > 0 AND {row}.claimer <> %(me)s"
    " AND NOT EXISTS (SELECT 1 FROM pg_locks p WHERE p.locktype = 'advisory'"
    "  AND p.granted AND p.classid = %(class)s::oid AND p.objid = {row}.claimer::oid"
    "  AND p.objsubid = 2"
    "  AND p.database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
)
"""A tick ``{row}`` claimed by an ``agentops tick`` whose advisory lock is free: it ended.

Claimers start at 1: claimer 0 is a claim settled unstarted (:data:`_SETTLE_TICKS`), never lost.
"""

_CLAIM_TICKS = (
    (
        "INSERT INTO {s}.tick AS t (agent, tick, claimer)"
        " SELECT u.name, COALESCE(u.at, o.tick), %(me)s"
        " FROM unnest(%(names)s::text[], %(ticks)s::timestamptz[]) AS u(name, at)"
        # Only a row whose claim is lost is locked for an agent not due: a row a
        # run holds (a frozen host's, in the middle of claiming) holds up no tick.
        " LEFT JOIN {s}.tick o ON u.at IS NULL AND o.agent = u.name AND {lost_o}"
        " WHERE u.at IS NOT NULL OR o.agent IS NOT NULL"
        " ORDER BY u.name"
        " ON CONFLICT (agent) DO UPDATE SET tick = EXCLUDED.tick, claimer = EXCLUDED.claimer"
        " WHERE t.tick < EXCLUDED.tick OR (t.tick = EXCLUDED.tick AND {lost_t})"
        " RETURNING t.agent, t.tick"
    )
    .replace("{lost_o}", _LOST_CLAIM.replace("{row}", "o"))
    .replace("{lost_t}", _LOST_CLAIM.replace("{row}", "t"))
)
"""Claim the ticks due, and lost claims, in one statement that locks its rows in one order.

A due agent comes with its tick (``ticks``); another (``NULL``) is claimed
only where a lost claim holds its row, for the tick that row held when read:
should the row be gone by the time it is written (a ``store copy`` replacing
it), that tick is claimed anew, never a tick of no time. Rows are locked in
the agents' order, whatever the host: no two claims deadlock.
"""

_SETTLE_TICKS = (
    "WITH mine AS (SELECT agent FROM {s}.tick"
    " WHERE claimer = %(me)s AND agent = ANY(%(names)s::text[]) ORDER BY agent FOR UPDATE)"
    " UPDATE {s}.tick AS t SET claimer = 0 FROM mine"
    " WHERE t.agent = mine.agent AND t.claimer = %(me)s"
)
"""Settle a claimer's claims, locking their rows in the agents' order, as :data:`_CLAIM_TICKS` does.

A settled claim (claimer 0) is not taken over, but the run that holds the agent's lease
may still start it (:meth:`PostgresStore.claim_tick`): the orphaned child of
a tick killed alone, whose claim another host's tick took over, and whose
own child found the agent busy (with that orphan) and settled it.

The rows lie in the table in no order of names (updates and vacuums move
them): locked in the table's order, a settle and another host's claim
could each wait for a row the other holds.
"""

_CLAIMER_TRIES = 8
"""Random claimers tried: two live ticks drawing the same one of 2**31 is already rare."""

_COLUMN_QUERIES = {
    "state_json": "SELECT state_json FROM {s}.agent_state WHERE agent = %s",
    "backup_json": "SELECT backup_json FROM {s}.agent_state WHERE agent = %s",
    "ledger_json": "SELECT ledger_json FROM {s}.agent_state WHERE agent = %s",
}


class PostgresStore(LeasingStore):
    """Agents' state in a PostgreSQL database, shared by every host that points at it."""

    # -- what a run keeps besides its state --------------------------------------------

    def note_rows(self, name: str) -> PostgresNoteRows:
        """``name``'s long-term notes, kept in the database: every host recalls them."""
        from agentops.store._pgnotes import PostgresNoteRows  # noqa: PLC0415 - runs that keep notes

        return PostgresNoteRows(self, name)

    def reply_cache(self, name: str, *, ttl_s: float, max_entries: int) -> PostgresReplyCache:
        """``name``'s LLM reply cache, in the database: a reply paid for on one host serves all."""
        from agentops.store._pgcache import PostgresReplyCache  # noqa: PLC0415 - [llm] cache only

        return PostgresReplyCache(self, name, ttl_s=ttl_s, max_entries=max_entries)

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
        drop_markers: Sequence[str] = (),
    ) -> None:
        """Save the state, the ledger if changed, drop the journal and markers: one transaction.

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
            if drop_markers:
                self._exec(
                    connection,
                    "DELETE FROM {s}.deadline_marker WHERE agent = %s AND run_id = ANY(%s)",
                    (name, list(drop_markers)),
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

    # -- records kept without the lease ------------------------------------------------

    def claim_tick(self, lease: Lease, tick: datetime, *, claimed: bool = False) -> bool:
        """Claim ``tick``, once across every host; False if it (or a later one) was claimed.

        ``claimed``: start the tick an ``agentops tick`` claimed, while it is
        not started: still claimed, by that tick or by another host's that
        took the claim over, or settled by a child that found the agent busy.
        Whoever holds the lease may start it, once: the other's child then
        finds it started (or the agent busy), so that a tick taken over from
        one still running is run once, not by nobody.
        """
        with self._transaction() as connection:
            self._fenced(connection, lease)
            if claimed:
                started = self._exec(
                    connection,
                    "UPDATE {s}.tick SET claimer = NULL "
                    "WHERE agent = %s AND tick = %s AND claimer IS NOT NULL",
                    (lease.agent, tick),
                ).rowcount
                return started == 1
            won = self._exec(
                connection,
                "INSERT INTO {s}.tick AS t (agent, tick) VALUES (%s, %s) "
                "ON CONFLICT (agent) DO UPDATE SET tick = EXCLUDED.tick, claimer = NULL "
                "WHERE t.tick < EXCLUDED.tick",
                (lease.agent, tick),
            ).rowcount
        return won == 1

    def claim_ticks(
        self, ticks: Mapping[str, datetime], *, scheduled: Collection[str] = ()
    ) -> TickClaims:
        """Claim every tick due, and take over lost claims, in one statement.

        The claims are held by a session advisory lock of this store's
        connection (:meth:`_claimer`): a claim whose lock is free was made by
        a tick that died (or whose connection did) before starting its run,
        and the tick of any host that schedules the agent takes it over: one
        of the same minute, late, as its own claim, and any later one as a
        claim of that tick. An agent due at a later tick is claimed afresh
        instead: the lost tick is run by the new one, as cron runs one of two
        overlapping ticks.
        """
        claimer = self._claimer()
        names = sorted(set(ticks) | set(scheduled))
        if not names:
            return TickClaims(claimer, {})
        won = self.execute(
            _CLAIM_TICKS,
            {
                "me": claimer,
                "names": names,
                "ticks": [ticks.get(name) for name in names],  # None: only a lost claim
                "class": self._claims_class,
            },
        ).fetchall()
        return TickClaims(claimer, dict(won))

    def settle_ticks(self, claimer: int, names: Collection[str]) -> None:
        """Settle ``claimer``'s claims of ``names`` still its own: no tick takes them over."""
        if names:
            self.execute(_SETTLE_TICKS, {"me": claimer, "names": sorted(names)})

    @property
    def _claims_class(self) -> int:
        # The first key of the claims' advisory locks (the second is the claimer):
        # positive 31 bits, so that pg_locks shows it as it is written.
        return advisory_key(self.schema, "tick claims") & 0x7FFF_FFFF

    def _claimer(self) -> int:
        """The claimer of this store: a session advisory lock, held until its connection closes."""
        if self._claims is None:
            for _ in range(_CLAIMER_TRIES):
                claimer = secrets.randbelow(0x7FFF_FFFF) + 1
                held = self.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", (self._claims_class, claimer)
                ).fetchone()
                if held is not None and held[0]:
                    self._claims = claimer
                    break
            else:
                raise StateError(f"the store {self.where} holds no free tick claimer (a bug)")
        return self._claims

    def last_tick(self, name: str) -> datetime | None:
        """The last tick claimed."""
        found = self.execute(
            "SELECT tick FROM {s}.tick WHERE agent = %s",
            (name,),
        ).fetchone()
        return None if found is None else found[0]

    def publish_marker(self, name: str, marker: Marker) -> bool:
        """Keep the ended run's marker, durably, for the next run on any host (once a run)."""
        self.execute(
            "INSERT INTO {s}.deadline_marker (agent, run_id, started_at, kind, last_words) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (agent, run_id) DO NOTHING",
            (name, marker.run_id, marker.started_at, marker.kind, marker.last_words),
        )
        return True

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
