"""The storage seam: what every backend keeping agents' state must do.

The runner, the guards and the operator commands talk to a :class:`Store`
and never know which backend it is: files on one host
(:class:`~agentops.store.file.FileStore`, the default) or a database shared by
several (:mod:`agentops.store.postgres`). A backend keeps, per agent:

- a **lease**: the exclusive right to run the agent. A run holds it from
  start to end, so runs never overlap; its fencing ``token`` grows with each
  holder, and a holder whose lease has lapsed cannot commit;
- the **state** (:class:`~agentops.model.state.AgentState`) and the **ledger**
  (:class:`~agentops.model.ledger.Ledger`), committed together, atomically, with
  the run's journal dropped in the same step;
- the running invocation's **journal**: each record durable before the side
  effect it announces; one left behind by a run that died comes back from
  :meth:`Store.pending` as records, whatever the backend;
- a few small records written without the lease, so they work while a run
  holds it: the last attempt, a pause, and the last tick claimed;
- the **deadline markers** of runs that were ended (:class:`Marker`): a store
  shared by hosts keeps them, so that the run after one, on any host, records
  it as ``timeout``; the file store leaves them the local files they are;
- **group slots**: ``[groups] NAME = N`` lets at most N runs of the group's
  agents hold a slot at once, everywhere the store is shared.

``tests/test_store_contract.py`` runs one suite against every backend.
"""

from __future__ import annotations

import contextlib
from datetime import datetime  # noqa: TC003 - pydantic reads the annotations at run time
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict

from agentops._infra.timestamps import UtcDatetime  # noqa: TC001 - pydantic reads the annotations
from agentops.errors import ConfigError, StateError
from agentops.model.status import RunStatus  # noqa: TC001 - pydantic reads the annotations

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence

    from agentops.model.ledger import Ledger
    from agentops.model.noterows import NoteRows
    from agentops.model.outcome import Outcome
    from agentops.model.state import AgentState

__all__ = [
    "Attempt",
    "Holder",
    "JournalWriter",
    "Lease",
    "Marker",
    "Notices",
    "Pause",
    "Remains",
    "ReplyStore",
    "Snapshot",
    "Store",
    "StoreDescription",
    "StoreMisconfigured",
    "StoreUnavailable",
    "TickClaims",
    "each_lease",
]


class StoreMisconfigured(ConfigError):
    """The store cannot be used as configured (exit 78): its location, or its driver missing.

    Like :class:`StoreUnavailable`, about the store, not an agent: a command
    that meets it stops, with its one line.
    """


class StoreUnavailable(StateError):
    """The store cannot be used at all (exit 74): no command can do anything with it now.

    It could not be reached, did not answer within its bounds, or holds no
    tables this agentops can use (none yet, another program's, or another
    version's): the message says which, and the command that sets it up
    where one does. A command that meets it stops: asking the store about
    the next agent would only wait as long again.
    """


class Attempt(BaseModel):
    """The last time agentops was asked to run an agent, and how that ended.

    Written for every invocation, also those that never got the lease
    (another run held it), so ``agentops health`` can tell "cron stopped
    calling us" from "runs are being skipped".
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: UtcDatetime
    run_id: str
    status: RunStatus
    exit_code: int
    reason: str | None = None
    scheduled: bool = False

    @classmethod
    def of(cls, outcome: Outcome, *, at: datetime, scheduled: bool) -> Attempt:
        """The attempt that ended in ``outcome``, at ``at``; ``scheduled`` if cron started it."""
        return cls(
            at=at,
            run_id=outcome.run_id,
            status=outcome.status,
            exit_code=outcome.exit_code,
            reason=outcome.reason,
            scheduled=scheduled,
        )


class Pause(BaseModel):
    """An operator paused the agent: its runs are skipped until it is resumed, or ``until``."""

    # Built when a pause is first read or written: a run of an agent that is
    # not paused finds no file, and cron pays every model built at import.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    at: UtcDatetime
    reason: str | None = None
    until: UtcDatetime | None = None
    """When the pause ends by itself; None: when the agent is resumed."""

    def holds(self, now: datetime) -> bool:
        """Whether the agent is paused at ``now`` (a pause past its ``until`` is over)."""
        return self.until is None or now < self.until


class Notices(BaseModel):
    """What people were told about an agent: when each kind was last sent, what is open.

    Fields added later have defaults, so a file an older agentops wrote still loads.
    """

    # Built when notices are first read or written: only a project that notifies does.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    sent: dict[str, UtcDatetime] = {}
    """When each kind was last told (a repeat within one incident waits for the cooldown)."""
    open: list[str] = []
    """The problems of the incident now open, each told: a success ends it with ``recovered``.

    Empty when none is open: the next problem is news, and is told at once."""


class Marker(NamedTuple):
    """What a run's deadline marker says of it (:mod:`agentops.run.deadline`)."""

    run_id: str
    started_at: datetime
    ended: bool
    """The run was ended by its deadline, or abandoned (not only begun)."""
    last_words: str
    """The stack the run was stuck in, or why it was abandoned."""
    kind: str = "run"
    """What the invocation was: a ``run`` is recorded as one; an ``approve`` is not."""


class Remains(NamedTuple):
    """What runs of an agent that died left in the store: read in one go at every start."""

    records: list[BaseModel] | None
    """The records of a journal left by a run that died, None if there is none."""
    markers: tuple[Marker, ...] = ()
    """The markers of ended runs published to the store (never any in the file store)."""


class Holder(NamedTuple):
    """Who holds an agent's lease: a run in progress, or (``stray``) what blocks every run."""

    pid: int
    host: str
    run_id: str
    since: datetime
    token: int
    stray: bool = False
    """A process that is not a live run of the agent holds its lock (0 for ``pid``: unknown)."""


class Snapshot(NamedTuple):
    """Everything a store keeps of one agent, as ``agentops store copy`` moves it.

    Its notes move beside it, as :class:`~agentops.model.noterows.NoteShelf` rows:
    a store may leave them to files it knows nothing of.
    """

    agent: str
    state: AgentState | None
    """None: the store holds nothing of the agent."""
    backup: AgentState | None
    ledger: Ledger | None
    """None: it has no ledger (it never acted)."""
    attempt: Attempt | None
    pause: Pause | None
    notices: Notices | None
    tick: datetime | None


class StoreDescription(NamedTuple):
    """What a store says of itself: what ``agentops store check`` prints."""

    backend: str
    """The kind of store: ``files``, ``postgresql``, or a registered backend's name."""
    where: str
    """Where it is, as said to people: never with a password."""
    schema_version: int | None
    """The version of its tables; None for a backend that has none (files)."""
    created: bool
    """Whether this store object created its tables (``agentops store init`` on a new database)."""
    agents: int
    """How many agents it holds state for."""


class TickClaims(NamedTuple):
    """What one ``agentops tick`` won in its claim, held for as long as its process lives."""

    claimer: int
    """The claims' holder: its session's advisory lock, whose end frees its claims to others."""
    ticks: dict[str, datetime]
    """Each agent won and the tick it runs: the one due, or one that another host's tick
    claimed and died before starting (taken over: it runs once, late, not never)."""


class Lease(Protocol):
    """The exclusive right to run one agent, held by this process."""

    @property
    def agent(self) -> str:
        """The agent it is for."""

    @property
    def token(self) -> int:
        """The fencing token: larger for each new holder of the agent's lease."""

    def keep_until_exit(self) -> None:
        """Hold it until the process exits (threads of the run are still going)."""

    def check(self) -> None:
        """Raise :class:`~agentops.errors.LeaseLost` if the lease is no longer held."""


class ReplyStore(Protocol):
    """An agent's LLM reply cache kept by the store (``[llm] cache``): never fails a run.

    A store that cannot answer leaves the cache ``unavailable`` (why) for the
    run, and the reply is asked of the model instead.
    """

    reset_because: str | None
    """Why the cache was found unreadable and started afresh, if it was."""
    unavailable: str | None
    """Why the cache cannot be used this run, if it cannot."""

    def get(self, key: str, now: float) -> dict[str, Any] | None:
        """The reply stored under ``key``, unless it expired by ``now`` (a POSIX time)."""

    def put(self, key: str, reply: dict[str, Any], now: float) -> None:
        """Keep ``reply``; drop expired replies, and the oldest past the bound."""

    def close(self) -> None:
        """Release what it holds."""


class JournalWriter(Protocol):
    """Appends the records of one invocation."""

    @property
    def run_id(self) -> str:
        """The invocation the records belong to."""

    def append(self, record: BaseModel, *, durable: bool = True) -> None:
        """Write ``record``; with ``durable``, it (and every record before it) survives a crash.

        A record written without ``durable`` survives the process being
        killed; it is made durable by the next durable record, or by
        :meth:`sync`. Only a machine crash can lose it.
        """

    def sync(self) -> None:
        """Make every record written so far durable."""

    def close(self) -> None:
        """Release the journal (it stays until the state holding it is committed)."""


class Store(Protocol):
    """Where agents' state, ledgers, journals and leases live."""

    def lease(
        self, name: str, *, run_id: str, ttl_s: float
    ) -> contextlib.AbstractContextManager[Lease]:
        """Hold ``name``'s lease, or raise :class:`~agentops.errors.Overlap` at once.

        ``ttl_s`` bounds how long a holder that stops answering keeps it (a
        backend shared by hosts needs it; a local lock dies with its process).
        """

    def leases(
        self, names: Iterable[str], *, run_id: str, ttl_s: float
    ) -> contextlib.AbstractContextManager[Mapping[str, Lease]]:
        """Hold the leases of every agent of ``names`` at once, by name, or raise Overlap.

        All or none: when one is held elsewhere, none is kept. ``agentops
        store copy`` holds them all while it copies, so that no run starts
        meanwhile. (:func:`each_lease` takes them one by one.)
        """

    def load(self, name: str) -> AgentState:
        """The agent's state, fresh if it has none; ``StateError`` if it cannot be read."""

    def load_ledger(self, name: str) -> Ledger:
        """The agent's ledger (call after :meth:`load`); empty if it has none."""

    def pending(self, name: str) -> list[BaseModel] | None:
        """The records of a journal left by a run that died, None if there is none."""

    def remains(self, name: str) -> Remains:
        """What dead runs left: the journal's records and the markers published (one round trip)."""

    def publish_marker(self, name: str, marker: Marker) -> bool:
        """Keep the marker of ``name``'s ended run (no lease needed: that run is gone).

        Publishing the same run's marker again changes nothing. Returns
        whether the store keeps it: False for a store whose markers are the
        local files themselves (the file store), which the caller leaves alone.
        """

    def journal(self, lease: Lease, run_id: str) -> JournalWriter:
        """Start the journal of the invocation ``run_id``, under ``lease``."""

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
        """Save ``state`` (and ``ledger`` if it changed), then drop the journal they now hold.

        ``drop_markers``: the run ids of published markers the state now
        records, dropped with it.

        Atomic: after a crash at any moment the store holds the previous
        commit or this one, and a journal not dropped is folded again
        harmlessly. The previous state becomes the backup, unless
        ``keep_backup`` keeps the one there (a dry run's money is no run to
        restore to). Raises :class:`~agentops.errors.LeaseLost` if ``lease``
        lapsed, and :class:`~agentops.errors.StateError` if it cannot write.
        """

    def backup(self, name: str) -> AgentState | None:
        """The state as it was before the last commit, None if there is none."""

    def restore(self, lease: Lease, name: str) -> None:
        """Make the backup the state again, and the state it replaces the backup.

        Restoring twice changes nothing. The state replaced is not read: it
        may be unreadable, which is when a restore is needed most.
        """

    def claim_tick(self, lease: Lease, tick: datetime, *, claimed: bool = False) -> bool:
        """Claim the schedule's tick ``tick`` for a run; False if it was claimed before.

        ``claimed``: the run starts the tick that ``agentops tick`` claimed
        already: False if it was started (by that tick or another host's that
        took the claim over) or a later tick was claimed. A claim settled by
        a child that found the agent busy may still be started by the run
        holding the lease. Only a store whose :meth:`claim_ticks` returns claims is
        asked so.
        """

    def claim_ticks(
        self, ticks: Mapping[str, datetime], *, scheduled: Collection[str] = ()
    ) -> TickClaims | None:
        """Claim each agent's tick for ``agentops tick`` at once: what was won.

        Besides the ``ticks`` due, an agent of ``scheduled`` whose tick was
        claimed by a tick process that died before starting it is taken over.
        The claims are held until the store is closed or its process dies.
        None: this store claims each tick under the run's lease instead
        (:meth:`claim_tick`), as the file store of one host does.
        """

    def settle_ticks(self, claimer: int, names: Collection[str]) -> None:
        """End ``claimer``'s claims of ``names``: their runs ended, started or not.

        A run refused before it started its tick (paused, its agent busy,
        its group full, its models misconfigured) settles the tick as a skip
        does: no later tick takes it over (the run holding the lease of a
        busy agent may still start it, :meth:`claim_tick`). Only a store whose
        :meth:`claim_ticks` returns claims is given one.
        """

    def last_tick(self, name: str) -> datetime | None:
        """The last tick a run claimed."""

    def group_slot(self, group: str, limit: int) -> contextlib.AbstractContextManager[bool]:
        """Try once to take one of ``group``'s ``limit`` slots: whether it is held, until exit.

        A slot is released when the block ends or its process dies, never later.
        """

    def record_attempt(self, name: str, attempt: Attempt) -> None:
        """Remember the last attempt to run ``name`` (no lease needed; losing it is harmless)."""

    def last_attempt(self, name: str) -> Attempt | None:
        """The last attempt recorded."""

    def set_pause(self, name: str, pause: Pause | None) -> None:
        """Pause the agent (no lease needed: it works while a run holds it), or resume it."""

    def pause(self, name: str) -> Pause | None:
        """The agent's pause, None if it is not paused."""

    def holder(self, name: str) -> Holder | None:
        """Who holds the agent's lease now, None if nobody."""

    def notices(self, name: str) -> Notices | None:
        """What people were told about the agent."""

    def set_notices(self, name: str, notices: Notices) -> None:
        """Remember what people were told (no lease needed; losing it costs one more message)."""

    def snapshot(self, name: str) -> Snapshot:
        """Everything kept of ``name`` (hold its lease, so that no run changes it meanwhile)."""

    def put_snapshot(self, lease: Lease, snapshot: Snapshot) -> None:
        """Make ``snapshot`` everything kept of its agent, under ``lease``, durably."""

    def note_rows(self, name: str) -> NoteRows | None:
        """``name``'s long-term notes, if the store keeps them; None: they are files.

        A store shared by hosts keeps them, so that a note made on one host
        is recalled on every other; the file store leaves them to
        ``state/<name>.memory.sqlite`` (:mod:`agentops.memory.notes`).
        """

    def reply_cache(self, name: str, *, ttl_s: float, max_entries: int) -> ReplyStore | None:
        """``name``'s LLM reply cache, if the store keeps it; None: it is a file on the host."""

    def prepare(self, *, create: bool) -> StoreDescription:
        """Make the store ready for this agentops (its tables), then :meth:`describe` it.

        ``agentops store init`` calls it with ``create``: tables are made where
        there are none, and migrated where an older agentops made them;
        ``agentops store migrate`` without: it migrates, and refuses (as
        :class:`StoreUnavailable`) a store holding no tables. Every other use
        of a store only checks them. A backend with nothing to make describes itself.
        """

    def describe(self) -> StoreDescription:
        """Reach the store and say what it is, where, and how many agents it holds state for.

        Raises :class:`~agentops.errors.StateError` if it cannot be reached or
        used, as any other call would.
        """


@contextlib.contextmanager
def each_lease(
    store: Store, names: Iterable[str], *, run_id: str, ttl_s: float
) -> Iterator[Mapping[str, Lease]]:
    """:meth:`Store.leases` by taking each lease in turn: for backends whose leases cost little.

    An :class:`~agentops.errors.Overlap` on one leaves the block, which
    releases those taken before it.
    """
    with contextlib.ExitStack() as held:
        yield {
            name: held.enter_context(store.lease(name, run_id=run_id, ttl_s=ttl_s))
            for name in sorted(set(names))
        }
