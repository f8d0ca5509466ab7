"""A store in this process's memory, under a URL scheme of its own: the store seam's second proof.

``memory://NAME`` names a place: every store opened on the same NAME through
one :class:`MemoryBackend` shares it, as connections share a database. The
tests register it (:func:`registered`); agentops never heard of it, so it
shows a new backend is one module and one :func:`~agentops.store.register_backend`.

It keeps every promise of the contract that lives within one process:
exclusive leases with fencing tokens that grow, writes refused to a lease
that is gone, commits that change the state, its backup, the ledger and the
journal together, a journal readable record by record. Everything is kept
as the codec writes it, so it reads back validated, as a new object, as from
any other backend. What it cannot keep is what a process's death leaves
behind: its places die with the process. The contract's tests about another
process skip it for that reason (``test_store_contract.py``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import pydantic_core
from pydantic import BaseModel

from agentops._infra.clock import utcnow
from agentops.errors import LeaseLost, Overlap, StateError
from agentops.model.journal import encode, parse_lines
from agentops.model.ledger import Ledger
from agentops.model.state import AgentState
from agentops.store import Backend, StoreDescription, register_backend, unregister_backend
from agentops.store.base import (
    Attempt,
    Holder,
    Marker,
    Notices,
    Pause,
    Remains,
    Snapshot,
    each_lease,
)
from agentops.store.codec import LedgerDocument, dump, read_ledger, read_model, read_state

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
    from datetime import datetime

    from agentops.store import StoreOptions
    from agentops.store.base import Lease

__all__ = ["SCHEME", "MemoryBackend", "MemoryStore", "registered"]

SCHEME = "memory"

_M = TypeVar("_M", bound=BaseModel)


@dataclass
class _Place:
    """Everything kept under one ``memory://NAME``."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    states: dict[str, bytes] = field(default_factory=dict)
    backups: dict[str, bytes] = field(default_factory=dict)
    ledgers: dict[str, bytes] = field(default_factory=dict)
    journals: dict[str, list[bytes]] = field(default_factory=dict)
    records: dict[tuple[str, str], bytes] = field(default_factory=dict)
    """An agent's small records (attempt, pause, notices), by agent and kind."""
    ticks: dict[str, datetime] = field(default_factory=dict)
    markers: dict[str, dict[str, Marker]] = field(default_factory=dict)
    """The markers of ended runs published, by agent and run id."""
    tokens: dict[str, int] = field(default_factory=dict)
    holders: dict[str, Holder] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    """How many slots of each group are held."""


class MemoryLease:
    """An agent's lease: the place names this holder's token until the lease's block ends."""

    def __init__(self, place: _Place, agent: str, token: int) -> None:
        """Held as ``token``."""
        self._place = place
        self.agent = agent
        self.token = token
        self.kept = False

    def keep_until_exit(self) -> None:
        """Hold it until the process exits (the place goes with the process anyway)."""
        self.kept = True

    def check(self) -> None:
        """Raise :class:`LeaseLost` unless the place still names this holder."""
        holder = self._place.holders.get(self.agent)
        if holder is None or holder.token != self.token:
            raise LeaseLost(f"{self.agent}: the run's lease was released", agent=self.agent)


class MemoryJournal:
    """The running invocation's records, appended while its lease holds."""

    def __init__(self, place: _Place, lease: MemoryLease, run_id: str) -> None:
        """Append for ``run_id`` under ``lease``."""
        self.run_id = run_id
        self._place = place
        self._lease = lease

    def append(self, record: BaseModel, *, durable: bool = True) -> None:  # noqa: ARG002 - memory has no disk to wait for
        """Keep ``record`` (encoded as any journal), if the lease still holds."""
        with self._place.lock:
            self._lease.check()
            self._place.journals.setdefault(self._lease.agent, []).append(encode(record))

    def sync(self) -> None:
        """Nothing to flush."""

    def close(self) -> None:
        """Nothing to release: the records stay until a commit drops them."""


class MemoryStore:
    """A store on one place of a :class:`MemoryBackend`."""

    def __init__(self, url: str, place: _Place, *, created: bool) -> None:
        """The store at ``url``, keeping ``place``; ``created``: this store made the place."""
        self.where = url
        self._place = place
        self._created = created

    def note_rows(self, name: str) -> None:  # noqa: ARG002 - the same for every agent
        """None: notes are files, as with the file store."""
        return

    def reply_cache(self, name: str, *, ttl_s: float, max_entries: int) -> None:  # noqa: ARG002
        """None: the cache is a file, as with the file store."""
        return

    def describe(self) -> StoreDescription:
        """``memory`` at its URL: no tables, so no version; the agents it holds state for."""
        with self._place.lock:
            agents = len(self._place.states)
        return StoreDescription(
            backend=SCHEME,
            where=self.where,
            schema_version=None,
            created=self._created,
            agents=agents,
        )

    def prepare(self, *, create: bool) -> StoreDescription:  # noqa: ARG002 - nothing to make
        """Describe the place: a place in memory needs no tables."""
        return self.describe()

    # -- the lease ---------------------------------------------------------------------

    def leases(
        self, names: Iterable[str], *, run_id: str, ttl_s: float
    ) -> contextlib.AbstractContextManager[Mapping[str, Lease]]:
        """Hold every agent's lease of ``names``, or raise :class:`Overlap` holding none."""
        return each_lease(self, names, run_id=run_id, ttl_s=ttl_s)

    @contextlib.contextmanager
    def lease(self, name: str, *, run_id: str, ttl_s: float) -> Iterator[MemoryLease]:  # noqa: ARG002 - it dies with its process
        """Hold ``name``'s lease, or raise :class:`Overlap` naming its holder."""
        place = self._place
        with place.lock:
            holder = place.holders.get(name)
            if holder is not None:
                raise Overlap(
                    f"{name} is already running (pid {holder.pid} holds it in {self.where})",
                    agent=name,
                )
            token = place.tokens.get(name, 0) + 1
            place.tokens[name] = token
            place.holders[name] = Holder(
                pid=os.getpid(),
                host=socket.gethostname(),
                run_id=run_id,
                since=utcnow(),
                token=token,
            )
        lease = MemoryLease(place, name, token)
        try:
            yield lease
        finally:
            if not lease.kept:
                with place.lock:
                    held = place.holders.get(name)
                    if held is not None and held.token == token:
                        del place.holders[name]

    def holder(self, name: str) -> Holder | None:
        """Who holds ``name``'s lease."""
        with self._place.lock:
            return self._place.holders.get(name)

    # -- state and ledger --------------------------------------------------------------

    def load(self, name: str) -> AgentState:
        """The agent's state; fresh if the place has none."""
        raw = self._place.states.get(name)
        if raw is None:
            return AgentState(agent=name)
        return read_state(raw, name, lambda why: self._unreadable(name, why))

    def load_ledger(self, name: str) -> Ledger:
        """The agent's ledger; empty if it has none."""
        raw = self._place.ledgers.get(name)
        if raw is None:
            return Ledger()
        return read_ledger(raw, name, lambda why: self._unreadable(name, why, what="ledger"))

    def backup(self, name: str) -> AgentState | None:
        """The state before the last commit."""
        raw = self._place.backups.get(name)
        if raw is None:
            return None
        return read_state(raw, name, lambda why: self._unreadable(name, why, what="backup"))

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
        """Save the state, the ledger if changed, and drop the journal and markers, all at once."""
        name = state.agent
        try:
            data = dump(state)
        except pydantic_core.PydanticSerializationError as exc:
            raise StateError(f"{name}: state is not JSON: {exc}", agent=name) from exc
        ledger_data = None
        if ledger is not None and ledger.changed:
            ledger_data = dump(LedgerDocument.of(name, ledger))
        place = self._place
        with place.lock:
            lease.check()
            if not keep_backup and name in place.states:
                place.backups[name] = place.states[name]
            place.states[name] = data
            if ledger_data is not None:
                place.ledgers[name] = ledger_data
            if drop_journal:
                place.journals.pop(name, None)
            for run_id in drop_markers:
                place.markers.get(name, {}).pop(run_id, None)
        if ledger is not None:
            ledger.changed = False

    def restore(self, lease: Lease, name: str) -> None:
        """Swap the state and its backup."""
        place = self._place
        with place.lock:
            lease.check()
            if name not in place.backups:
                raise StateError(
                    f"{name}: the store {self.where} holds no backup to restore", agent=name
                )
            place.states[name], place.backups[name] = place.backups[name], place.states[name]

    # -- the journal -------------------------------------------------------------------

    def journal(self, lease: Lease, run_id: str) -> MemoryJournal:
        """The journal of the invocation ``run_id``."""
        if not isinstance(lease, MemoryLease):
            raise TypeError("a memory journal needs a memory lease")
        lease.check()
        return MemoryJournal(self._place, lease, run_id)

    def remains(self, name: str) -> Remains:
        """The journal's records and the markers published."""
        with self._place.lock:
            markers = tuple(self._place.markers.get(name, {}).values())
        return Remains(self.pending(name), markers)

    def publish_marker(self, name: str, marker: Marker) -> bool:
        """Keep the ended run's marker (once a run)."""
        with self._place.lock:
            self._place.markers.setdefault(name, {}).setdefault(marker.run_id, marker)
        return True

    def pending(self, name: str) -> list[BaseModel] | None:
        """The records a run left, in order; None if there are none."""
        with self._place.lock:
            lines = list(self._place.journals.get(name, ()))
        if not lines:
            return None
        try:
            return parse_lines(b"".join(lines), agent=name)
        except ValueError as exc:
            raise StateError(
                f"{name}: unreadable journal in the store {self.where} ({exc}); "
                "it was left as it is",
                agent=name,
            ) from exc

    def damage_journal(self, name: str, lines: list[bytes]) -> None:
        """Leave ``lines`` as ``name``'s journal, as a bad hand would (for the contract suite)."""
        with self._place.lock:
            self._place.journals[name] = list(lines)

    # -- records kept without the lease ------------------------------------------------

    def claim_tick(self, lease: Lease, tick: datetime, *, claimed: bool = False) -> bool:  # noqa: ARG002 - never asked
        """Claim ``tick``; False if it, or a later one, was claimed."""
        place = self._place
        with place.lock:
            lease.check()
            last = place.ticks.get(lease.agent)
            if last is not None and last >= tick:
                return False
            place.ticks[lease.agent] = tick
            return True

    def claim_ticks(
        self,
        ticks: Mapping[str, datetime],  # noqa: ARG002 - claimed per run
        *,
        scheduled: Collection[str] = (),  # noqa: ARG002 - nothing claimed, nothing to take over
    ) -> None:
        """None: each run claims its tick under its lease."""
        return

    def settle_ticks(self, claimer: int, names: Collection[str]) -> None:
        """Never called: :meth:`claim_ticks` claims nothing."""

    @contextlib.contextmanager
    def group_slot(self, group: str, limit: int) -> Iterator[bool]:
        """One of ``limit`` slots of ``group``, counted in the place."""
        place = self._place
        with place.lock:
            held = place.groups.get(group, 0) < limit
            if held:
                place.groups[group] = place.groups.get(group, 0) + 1
        try:
            yield held
        finally:
            if held:
                with place.lock:
                    place.groups[group] -= 1

    def last_tick(self, name: str) -> datetime | None:
        """The last tick claimed."""
        return self._place.ticks.get(name)

    def record_attempt(self, name: str, attempt: Attempt) -> None:
        """Remember the last attempt."""
        self._put(name, "attempt", attempt)

    def last_attempt(self, name: str) -> Attempt | None:
        """The last attempt recorded."""
        return self._get(name, "attempt", Attempt)

    def set_pause(self, name: str, pause: Pause | None) -> None:
        """Pause the agent, or resume it."""
        self._put(name, "pause", pause)

    def pause(self, name: str) -> Pause | None:
        """The agent's pause, if it is paused."""
        return self._get(name, "pause", Pause)

    def notices(self, name: str) -> Notices | None:
        """What people were told about the agent."""
        return self._get(name, "notices", Notices)

    def set_notices(self, name: str, notices: Notices) -> None:
        """Remember what people were told."""
        self._put(name, "notices", notices)

    # -- copies ------------------------------------------------------------------------

    def snapshot(self, name: str) -> Snapshot:
        """Everything the place keeps of ``name``."""
        with self._place.lock:
            return Snapshot(
                agent=name,
                state=self.load(name) if name in self._place.states else None,
                backup=self.backup(name),
                ledger=self.load_ledger(name) if name in self._place.ledgers else None,
                attempt=self.last_attempt(name),
                pause=self.pause(name),
                notices=self.notices(name),
                tick=self.last_tick(name),
            )

    def put_snapshot(self, lease: Lease, snapshot: Snapshot) -> None:
        """Make the snapshot everything the place keeps of its agent, at once."""
        name = snapshot.agent
        documents = {
            "states": snapshot.state,
            "backups": snapshot.backup,
            "ledgers": None
            if snapshot.ledger is None
            else LedgerDocument.of(name, snapshot.ledger),
        }
        records = {
            "attempt": snapshot.attempt,
            "pause": snapshot.pause,
            "notices": snapshot.notices,
        }
        place = self._place
        with place.lock:
            lease.check()
            for kept, document in documents.items():
                table: dict[str, bytes] = getattr(place, kept)
                table.pop(name, None)
                if document is not None:
                    table[name] = dump(document)
            for kind, model in records.items():
                self._put(name, kind, model)
            place.ticks.pop(name, None)
            if snapshot.tick is not None:
                place.ticks[name] = snapshot.tick

    # -- machinery ---------------------------------------------------------------------

    def _put(self, name: str, kind: str, model: BaseModel | None) -> None:
        with self._place.lock:
            if model is None:
                self._place.records.pop((name, kind), None)
            else:
                self._place.records[name, kind] = dump(model)

    def _get(self, name: str, kind: str, model: type[_M]) -> _M | None:
        raw = self._place.records.get((name, kind))
        if raw is None:
            return None
        return read_model(raw, model, lambda why: self._unreadable(name, why, what=kind))

    def _unreadable(self, name: str, why: str, *, what: str = "state") -> StateError:
        return StateError(
            f"{name}: unreadable {what} in the store {self.where} ({why}); it was left as it is",
            agent=name,
        )


class MemoryBackend:
    """``memory://NAME``: stores in this process's memory, each NAME a place of its own."""

    def __init__(self) -> None:
        """No place yet: the first store opened on a NAME makes it."""
        self.places: dict[str, _Place] = {}
        self.backend = Backend(name=SCHEME, schemes=(SCHEME,), open=self.open)
        """What :func:`~agentops.store.register_backend` is given."""

    def open(self, location: str, options: StoreOptions) -> MemoryStore:  # noqa: ARG002 - nothing to configure
        """The store on ``location``'s place, made if it is new."""
        created = location not in self.places
        place = self.places.setdefault(location, _Place())
        return MemoryStore(location, place, created=created)


@contextlib.contextmanager
def registered() -> Iterator[MemoryBackend]:
    """``memory://`` registered as a store backend for the block; forgotten after."""
    memory = MemoryBackend()
    register_backend(memory.backend)
    try:
        yield memory
    finally:
        unregister_backend(memory.backend)
