"""The Store contract: one suite, every backend (files, PostgreSQL, and one the tests register).

Each test states one promise of :class:`~agentops.store.base.Store` and runs
against a :class:`~agentops.store.file.FileStore` on a temporary directory,
a :class:`~agentops.store.postgres.PostgresStore` on a fresh database of
the suite's own server, and :mod:`memstore`'s in-memory store, which the
tests register under ``memory://`` (agentops does not know it): every store
is opened by its URL through the registry of backends. "Another process"
is :mod:`storeprocess`: the same store opened by another Python, as another
run or another host would; for a store in one process's memory, another
run in the same process (:class:`~storeprocess.InProcessRun`), and a test
killing it is skipped: nothing outlives the process to look at.
"""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from agentops._infra.timestamps import iso_second
from agentops.errors import LeaseLost, Overlap, StateError
from agentops.model.journal import Begin, Spend, apply, encode
from agentops.model.ledger import Entry, Ledger
from agentops.model.state import AgentState
from agentops.model.status import RunStatus
from agentops.store.base import Attempt, Marker, Notices, Pause, Snapshot
from memstore import MemoryStore, registered
from samples import full_state
from storeprocess import T0, InProcessRun, StoreProcess, open_at, records
from suite import eventually

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from datetime import datetime

    from agentops.store.base import Store


@dataclass
class Backend:
    """Where one test's store lives, and how to open it again (another run, another host)."""

    kind: str
    where: str
    opened: list[Any] = field(default_factory=list)

    def open(self) -> Store:
        """A new store object on the same place."""
        store = open_at(self.where)
        self.opened.append(store)
        return store

    def damage_journal(self, name: str, lines: list[bytes]) -> None:
        """Leave ``lines`` as ``name``'s journal, as a damaged disk or a bad hand would."""
        if self.kind == "files":
            path = Path(self.where) / f"{name}.journal"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(b"".join(lines))
        elif self.kind == "memory":
            store = self.open()
            assert isinstance(store, MemoryStore)
            store.damage_journal(name, lines)
        else:
            store = self.open()
            for line in lines:
                store.execute(  # type: ignore[attr-defined]
                    "INSERT INTO {s}.journal (agent, run_id, record) VALUES (%s, 'r', %s)",
                    (name, line.decode().rstrip("\n")),
                )


def place(kind: str, request: pytest.FixtureRequest) -> Backend:
    """A new, empty place for a store of ``kind``."""
    if kind == "files":
        return Backend("files", str(request.getfixturevalue("tmp_path") / uuid.uuid4().hex))
    if kind == "memory":
        request.getfixturevalue("memory")  # registered
        return Backend("memory", f"memory://{uuid.uuid4().hex}")
    return Backend("postgresql", request.getfixturevalue("postgres").database())


@pytest.fixture
def memory() -> Iterator[object]:
    """``memory://`` registered as a backend for the test, as any other package would."""
    with registered() as backend:
        yield backend


@pytest.fixture(params=["files", "postgresql", "memory"])
def backend(request) -> Iterator[Backend]:
    """A place for a store: a directory, a fresh database, or a place in memory."""
    found = place(request.param, request)
    yield found
    for store in found.opened:
        if hasattr(store, "close"):
            store.close()


@pytest.fixture
def store(backend) -> Store:
    """The store under test."""
    return backend.open()


@pytest.fixture
def other(backend) -> Iterator[Callable[[], StoreProcess | InProcessRun]]:
    """Start another process on the same store (another run in this one, for a store in memory)."""
    started: list[StoreProcess | InProcessRun] = []

    def start() -> StoreProcess | InProcessRun:
        process = (InProcessRun if backend.kind == "memory" else StoreProcess)(backend.where)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


def lease_free(store: Store, name: str = "pub") -> bool:
    """Whether ``name``'s lease can be taken now (it is released again at once)."""
    try:
        with store.lease(name, run_id="probe", ttl_s=60):
            return True
    except Overlap:
        return False


def commit(store: Store, state: AgentState, **kwargs: Any) -> None:
    """Take the agent's lease and commit ``state``, as a run ends."""
    with store.lease(state.agent, run_id="run-c", ttl_s=60) as lease:
        store.commit(lease, state, **kwargs)


def one_entry_ledger(key: str = "post-1", run_id: str = "run-1") -> Ledger:
    ledger = Ledger(folded=run_id)
    ledger.put("publish", key, Entry(iso_second(T0), "committed", run_id, '{"u":1}'))
    return ledger


def same(one: Snapshot, other: Snapshot) -> bool:
    """Snapshots equal in everything they hold (a ledger compares by entries and fold)."""

    def comparable(snapshot: Snapshot) -> tuple[object, ...]:
        ledger = snapshot.ledger
        return (
            *snapshot._replace(ledger=None),
            None if ledger is None else (ledger.entries, ledger.folded),
        )

    return comparable(one) == comparable(other)


# -- the lease -------------------------------------------------------------------------------


def test_a_lease_held_by_another_process_raises_overlap(store, other):
    """While another process holds the lease, taking it raises Overlap (75) naming its pid."""
    holder = other()
    assert holder.send("lease other-run 60").startswith("token ")
    with pytest.raises(Overlap) as info, store.lease("pub", run_id="r", ttl_s=60):
        pytest.fail("the lease was taken twice")
    assert info.value.exit_code == 75
    assert f"pid {holder.pid}" in info.value.message


def test_a_lease_in_the_same_process_is_exclusive_too(backend):
    """Two leases of one agent in one process conflict, through one store object or two."""
    first, second = backend.open(), backend.open()
    with first.lease("pub", run_id="a", ttl_s=60):
        for store in (first, second):
            with pytest.raises(Overlap) as info, store.lease("pub", run_id="b", ttl_s=60):
                pytest.fail("the lease was taken twice")
            assert f"pid {os.getpid()}" in info.value.message


def test_a_lease_on_another_agent_succeeds(store, other):
    """One agent's lease does not block another agent."""
    assert other().send("lease other-run 60").startswith("token ")
    with store.lease("digest", run_id="r", ttl_s=60):
        pass


def test_a_lease_is_released_after_the_block_even_when_it_raised(store):
    """The lease is free again once the block ends, however it ended."""
    with store.lease("pub", run_id="a", ttl_s=60):
        pass
    with pytest.raises(RuntimeError), store.lease("pub", run_id="b", ttl_s=60):
        raise RuntimeError
    assert lease_free(store)


def test_a_lease_released_by_its_process_is_free(store, other):
    """Another process leaving its block releases the lease."""
    holder = other()
    holder.send("lease other-run 60")
    assert not lease_free(store)
    assert holder.send("release") == "ok"
    assert lease_free(store)


def test_a_lease_is_released_when_its_holder_is_killed(store, other):
    """A holder killed with SIGKILL leaves no stale lease: the next run takes it at once."""
    holder = other()
    holder.send("lease other-run 3600")  # far from lapsing: only the death frees it
    assert not lease_free(store)
    holder.kill()
    assert eventually(lambda: lease_free(store))


def test_each_holder_gets_a_larger_token(store, other):
    """The fencing token grows with every holder, across releases and processes."""
    tokens = []
    for run in ("a", "b"):
        with store.lease("pub", run_id=run, ttl_s=60) as lease:
            tokens.append(lease.token)
    process = other()
    tokens.append(int(process.send("lease c 60").split()[1]))
    process.send("release")
    with store.lease("pub", run_id="d", ttl_s=60) as lease:
        tokens.append(lease.token)
    assert tokens == sorted(set(tokens))
    assert len(tokens) == 4


def test_leases_are_taken_all_together_or_none(store, other):
    """leases(): while another process holds one of them, Overlap, and none is kept."""
    holder = other()
    holder.send("lease other-run 60")
    with (
        pytest.raises(Overlap) as info,
        store.leases(["digest", "pub", "zeta"], run_id="copy", ttl_s=60),
    ):
        pytest.fail("a lease was taken twice")
    assert info.value.exit_code == 75
    assert lease_free(store, "digest")
    assert lease_free(store, "zeta")
    holder.send("release")


def test_leases_held_together_each_hold_their_agent(backend, store):
    """Each lease of leases() is its agent's: exclusive, writable, released with the block."""
    with store.leases(["digest", "pub"], run_id="copy", ttl_s=60) as held:
        assert sorted(held) == ["digest", "pub"]
        for name in ("digest", "pub"):
            assert not lease_free(backend.open(), name)
            store.commit(held[name], AgentState(agent=name, data={"by": "copy"}))
    assert lease_free(store, "digest")
    assert lease_free(store, "pub")
    assert store.load("digest").data == {"by": "copy"}


def test_a_released_lease_can_neither_commit_nor_journal(store):
    """After its block, a commit under the lease raises LeaseLost (74); so does a journal."""
    with store.lease("pub", run_id="a", ttl_s=60) as lease:
        pass
    with pytest.raises(LeaseLost) as info:
        store.commit(lease, AgentState(agent="pub", data={"late": True}))
    assert info.value.exit_code == 74
    with pytest.raises(LeaseLost):
        store.journal(lease, "a")
    assert store.load("pub") == AgentState(agent="pub")
    assert store.pending("pub") is None


def test_holder_names_the_live_holder_and_nobody_otherwise(store, other):
    """holder() is None before, the holding process and run during, None after release and death."""
    assert store.holder("pub") is None
    with store.lease("pub", run_id="mine", ttl_s=60) as lease:
        found = store.holder("pub")
        assert found is not None
        assert (found.pid, found.run_id, found.token) == (os.getpid(), "mine", lease.token)
    assert store.holder("pub") is None

    process = other()
    token = int(process.send("lease theirs 60").split()[1])
    found = store.holder("pub")
    assert found is not None
    assert (found.pid, found.run_id, found.token) == (process.pid, "theirs", token)
    process.kill()
    assert eventually(lambda: store.holder("pub") is None)


# -- state and ledger ------------------------------------------------------------------------


def test_an_agent_that_never_ran_loads_as_nothing(store):
    """A fresh state, an empty ledger, and nothing else: no journal, backup, tick or record."""
    assert store.load("pub") == AgentState(agent="pub")
    assert store.load_ledger("pub").entries == {}
    assert store.pending("pub") is None
    assert store.backup("pub") is None
    assert store.last_tick("pub") is None
    assert store.last_attempt("pub") is None
    assert store.pause("pub") is None
    assert store.notices("pub") is None
    assert store.holder("pub") is None
    assert store.snapshot("pub") == Snapshot("pub", None, None, None, None, None, None, None)


def test_commit_then_load_round_trips(store, backend):
    """Everything committed comes back identical, to this store object and to a new one."""
    state = full_state()
    commit(store, state)
    assert store.load("pub") == state
    assert backend.open().load("pub") == state


def test_a_ledger_is_committed_with_the_state(store):
    """The ledger's entries and its last folded journal come back; it is no longer changed."""
    ledger = one_entry_ledger()
    commit(store, AgentState(agent="pub"), ledger=ledger)
    assert not ledger.changed
    loaded = store.load_ledger("pub")
    assert (loaded.entries, loaded.folded, loaded.changed) == (ledger.entries, "run-1", False)


def test_an_unchanged_ledger_is_not_written(store):
    """A ledger handed to commit unchanged is left as stored, whatever it holds."""
    commit(store, AgentState(agent="pub"), ledger=one_entry_ledger())
    unchanged = one_entry_ledger("post-2", run_id="run-2")
    unchanged.changed = False
    commit(store, AgentState(agent="pub", data={"n": 2}), ledger=unchanged)
    assert store.load("pub").data == {"n": 2}
    assert list(store.load_ledger("pub").entries["publish"]) == ["post-1"]


def test_the_backup_is_the_previous_commit(store):
    """backup() is None after the first commit, then always the state before the last one."""
    states = [AgentState(agent="pub", data={"n": n}) for n in range(3)]
    commit(store, states[0])
    assert store.backup("pub") is None
    for previous, state in itertools.pairwise(states):
        commit(store, state)
        assert store.backup("pub") == previous
        assert store.load("pub") == state


def test_a_commit_may_keep_the_backup_there(store):
    """keep_backup (a dry run's money): the state changes, the restore point does not."""
    first, second, third = (AgentState(agent="pub", data={"n": n}) for n in range(3))
    commit(store, first)
    commit(store, second)
    commit(store, third, keep_backup=True)
    assert store.load("pub") == third
    assert store.backup("pub") == first


def test_restore_swaps_the_state_and_its_backup(store):
    """A restore makes the backup the state and the state the backup; twice changes nothing."""
    old, new = AgentState(agent="pub", data={"n": 1}), AgentState(agent="pub", data={"n": 2})
    commit(store, old)
    commit(store, new)
    with store.lease("pub", run_id="r", ttl_s=60) as lease:
        store.restore(lease, "pub")
        assert (store.load("pub"), store.backup("pub")) == (old, new)
        store.restore(lease, "pub")
        assert (store.load("pub"), store.backup("pub")) == (new, old)


def test_restore_without_a_backup_raises_and_changes_nothing(store):
    """Nothing to restore: StateError (74), and the state stays."""
    state = AgentState(agent="pub", data={"n": 1})
    commit(store, state)
    with store.lease("pub", run_id="r", ttl_s=60) as lease, pytest.raises(StateError) as info:
        store.restore(lease, "pub")
    assert info.value.exit_code == 74
    assert store.load("pub") == state


# -- the journal -----------------------------------------------------------------------------


def test_records_are_pending_in_order_while_the_run_goes_on(store):
    """Each record is readable as soon as it is appended, durable or not, in order."""
    written = records("run-1", 3)
    with store.lease("pub", run_id="run-1", ttl_s=60) as lease:
        journal = store.journal(lease, "run-1")
        for count, record in enumerate(written, start=1):
            journal.append(record, durable=count % 2 == 0)
            assert store.pending("pub") == written[:count]
        journal.sync()
        journal.close()
    assert store.pending("pub") == written, "a journal stays until a commit drops it"


def test_a_killed_writers_records_are_all_pending_in_order(store, other):
    """A run killed with SIGKILL: every record it wrote comes back, the last (not durable) too."""
    process = other()
    process.send("lease run-9 3600")
    assert process.send("journal 5") == "ok"
    process.kill()
    assert store.pending("pub") == records("run-9", 5)


def test_commit_dropping_the_journal_keeps_what_it_held_in_the_state(store):
    """After the commit the journal is gone and the state holds the folded records."""
    state = AgentState(agent="pub")
    with store.lease("pub", run_id="run-1", ttl_s=60) as lease:
        journal = store.journal(lease, "run-1")
        for record in (
            Begin(run_id="run-1", at=T0, agent="pub"),
            Spend(run_id="run-1", at=T0, usd=0.5, tokens=10),
        ):
            journal.append(record)
            apply(state, None, record)
        journal.close()
        store.commit(lease, state)
        assert store.pending("pub") is not None, "kept unless the commit drops it"
        state.journal_folded = "run-1"
        store.commit(lease, state, drop_journal=True)
    assert store.pending("pub") is None
    assert store.load("pub").metrics.cost_usd == 0.5


def ended(run_id: str = "run-1", words: str = "Timeout (0:00:05)!") -> Marker:
    return Marker(run_id, T0, ended=True, last_words=words)


def test_a_published_marker_remains_with_the_journal_until_the_commit_drops_it(store, backend):
    """A shared store keeps an ended run's marker, once, until a commit drops it; files do not."""
    kept = store.publish_marker("pub", ended())
    assert kept == (backend.kind != "files"), "the file store's markers are the runs' own files"
    assert store.publish_marker("pub", ended(words="again")) == kept, "once a run"
    assert store.publish_marker("other", ended("run-9")) == kept
    remains = store.remains("pub")
    assert remains.records is None
    assert remains.markers == ((ended(),) if kept else ())
    commit(store, AgentState(agent="pub"), drop_markers=["run-1"])
    assert store.remains("pub").markers == ()
    assert store.remains("other").markers == ((ended("run-9"),) if kept else ())


def test_remains_holds_the_journal_in_order_and_the_markers(store, backend):
    """One read at a run's start: a dead run's records, in order, and the markers published."""
    with store.lease("pub", run_id="run-1", ttl_s=60) as lease:
        journal = store.journal(lease, "run-1")
        written = [
            Begin(run_id="run-1", at=T0, agent="pub"),
            Spend(run_id="run-1", at=T0, usd=0.5, tokens=10),
        ]
        for record in written:
            journal.append(record)
        journal.close()
    store.publish_marker("pub", ended())
    remains = store.remains("pub")
    assert remains.records == written == store.pending("pub")
    assert len(remains.markers) == (0 if backend.kind == "files" else 1)


def test_a_damaged_journal_raises_state_error_and_is_left_alone(store, backend):
    """A journal with a bad record before the last is refused (74), never partly folded, kept."""
    lines = [encode(Begin(run_id="run-1", at=T0, agent="pub")), b"garbage\n", b"{}\n"]
    backend.damage_journal("pub", lines)
    for _ in range(2):  # and again: it was left as it is
        with pytest.raises(StateError) as info:
            store.pending("pub")
        assert info.value.exit_code == 74
        assert "line 2 is not a journal record" in info.value.message
        assert "left as it is" in info.value.message


# -- records kept without the lease ----------------------------------------------------------


def test_a_tick_is_claimed_once(store):
    """A tick is claimed by the first run only; a later one can be claimed, an earlier not."""
    assert store.last_tick("pub") is None
    with store.lease("pub", run_id="a", ttl_s=60) as lease:
        assert store.claim_tick(lease, T0)
        assert not store.claim_tick(lease, T0)
        assert not store.claim_tick(lease, T0 - timedelta(minutes=15))
        assert store.last_tick("pub") == T0
        assert store.claim_tick(lease, T0 + timedelta(minutes=15))
    with store.lease("pub", run_id="b", ttl_s=60) as lease:
        assert not store.claim_tick(lease, T0 + timedelta(minutes=15)), "claimed by another run"
    assert store.last_tick("pub") == T0 + timedelta(minutes=15)


def test_claim_ticks_claims_each_tick_once_or_leaves_it_to_each_run(store):
    """agentops tick's claims: all won at once, none the second time, only a later tick after.

    A store that claims per run (None) leaves every tick to the run's own claim.
    """
    ticks = {"pub": T0, "other": T0}
    claims = store.claim_ticks(ticks, scheduled=["pub", "other"])
    if claims is None:
        return

    def won(ticks: dict[str, datetime]) -> dict[str, datetime]:
        found = store.claim_ticks(ticks, scheduled=[*ticks, "pub", "other"])
        assert found is not None
        assert found.claimer == claims.claimer, "one claimer a store"
        return found.ticks

    assert claims.ticks == ticks
    assert won(ticks) == {}, "claimed already"
    assert won({"pub": T0 - timedelta(minutes=1)}) == {}, "an earlier tick"
    later = T0 + timedelta(minutes=1)
    assert won({"pub": later, "new": T0}) == {"pub": later, "new": T0}
    assert store.last_tick("pub") == later
    with store.lease("other", run_id="a", ttl_s=60) as lease:
        assert not store.claim_tick(lease, T0), "a run's own claim sees agentops tick's"
        assert store.claim_tick(lease, T0, claimed=True), "the claimer's run starts it"
        assert not store.claim_tick(lease, T0, claimed=True), "once"
    assert won({}) == {}, "a live claimer's claims are its own"


def test_a_group_has_as_many_slots_as_its_limit(store):
    """Two slots: two held at once, the third refused; one given back is taken again."""
    with store.group_slot("llm", 2) as first, store.group_slot("llm", 2) as second:
        assert (first, second) == (True, True)
        with store.group_slot("llm", 2) as third:
            assert not third
        with store.group_slot("other", 1) as elsewhere:
            assert elsewhere, "each group has slots of its own"
    with store.group_slot("llm", 2) as again:
        assert again


def test_a_group_slot_is_freed_when_its_holder_is_killed(store, other):
    """A slot dies with the process holding it: the next run takes it."""
    holder = other()
    assert holder.send("slot llm 1") == "held"
    with store.group_slot("llm", 1) as held:
        assert not held
    holder.kill()
    assert eventually(lambda: _slot_free(store, "llm"))


def _slot_free(store: Store, group: str) -> bool:
    with store.group_slot(group, 1) as held:
        return held


def test_the_last_attempt_round_trips(store):
    """The last invocation reads back as recorded; a later one replaces it."""
    for n in range(2):
        attempt = Attempt(
            at=T0 + timedelta(minutes=n),
            run_id=f"run-{n}",
            status=RunStatus.SKIPPED,
            exit_code=75,
            reason="overlap",
            scheduled=n == 1,
        )
        store.record_attempt("pub", attempt)
        assert store.last_attempt("pub") == attempt


def test_notices_round_trip(store):
    """What people were told reads back as written."""
    notices = Notices(sent={"failed": T0, "recovered": T0 + timedelta(hours=1)}, open=["failed"])
    store.set_notices("pub", notices)
    assert store.notices("pub") == notices
    store.set_notices("pub", Notices())
    assert store.notices("pub") == Notices()


def test_a_pause_is_set_and_removed_while_another_process_holds_the_lease(store, other):
    """Pausing and resuming need no lease: they work while a run holds it."""
    other().send("lease busy-run 60")
    pause = Pause(at=T0, reason="maintenance")
    store.set_pause("pub", pause)
    assert store.pause("pub") == pause
    store.set_pause("pub", None)
    assert store.pause("pub") is None


def test_a_snapshot_put_elsewhere_is_the_same_snapshot(backend, store, request):
    """put_snapshot then snapshot gives back everything, in another store of the same kind."""
    state = full_state()
    ledger = one_entry_ledger()
    commit(store, AgentState(agent="pub", data={"n": 0}))
    commit(store, state, ledger=ledger)
    with store.lease("pub", run_id="t", ttl_s=60) as lease:
        store.claim_tick(lease, T0)
    store.record_attempt("pub", Attempt(at=T0, run_id="r", status=RunStatus.SUCCEEDED, exit_code=0))
    store.set_pause("pub", Pause(at=T0))
    store.set_notices("pub", Notices(open=["failed"]))
    snapshot = store.snapshot("pub")
    assert snapshot.state == state
    assert snapshot.backup == AgentState(agent="pub", data={"n": 0})

    target = place(backend.kind, request).open()
    try:
        with target.lease("pub", run_id="copy", ttl_s=60) as lease:
            target.put_snapshot(lease, snapshot)
        assert same(target.snapshot("pub"), snapshot)
        # Putting an empty snapshot removes everything it does not hold.
        with target.lease("pub", run_id="copy", ttl_s=60) as lease:
            target.put_snapshot(lease, Snapshot("pub", None, None, None, None, None, None, None))
        assert target.snapshot("pub") == Snapshot("pub", None, None, None, None, None, None, None)
    finally:
        if hasattr(target, "close"):
            target.close()
