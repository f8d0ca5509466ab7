"""The PostgreSQL store's own promises, beyond the contract every store keeps.

Against the suite's own server (tests/pgserver.py), each test on a fresh
database: a lease that lapsed while its holder lives (a frozen host) is taken
over and fenced off, the winner of a race for a lease is the one a death
frees at once, every connection carries the configured bounds, the tables
are created once by hosts starting together and refused when a newer
agentops made them, and ``agentops store check`` and ``agentops store copy``
work against the server.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from agentops.errors import LeaseLost, Overlap, StateError
from agentops.model.journal import Intent
from agentops.model.state import AgentState
from agentops.project.config import StoreConfig
from agentops.store.postgres import SCHEMA_VERSION, PostgresLease, PostgresStore
from storeprocess import StoreProcess, records
from suite import eventually

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from agentops.store.base import Lease, TickClaims

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def url(postgres) -> str:
    """A fresh database, its tables made (``agentops store init``)."""
    return postgres.database()


@pytest.fixture
def bare(postgres) -> str:
    """A fresh database without agentops' tables."""
    return postgres.database(init=False)


@pytest.fixture
def stores() -> Iterator[list[PostgresStore]]:
    """Open PostgreSQL stores on the test's database; closed after it."""
    opened: list[PostgresStore] = []
    yield opened
    for store in opened:
        store.close()


def open_store(stores: list[PostgresStore], url: str, **kwargs) -> PostgresStore:
    store = PostgresStore(url, **kwargs)
    stores.append(store)
    return store


def lapse(store: PostgresStore, name: str = "pub") -> None:
    """Move ``name``'s lease's expiry to the past, as a frozen holder's time running out would."""
    store.execute(
        "UPDATE {s}.lease SET expires_at = now() - interval '1 second' WHERE agent = %s", (name,)
    )


def lapsed(store: PostgresStore, name: str = "pub") -> bool:
    """Whether ``name``'s lease is past its expiry, by the server's clock."""
    found = store.execute("SELECT expires_at <= now() FROM {s}.lease WHERE agent = %s", (name,))
    return found.fetchone() == (True,)


# -- leases across hosts ---------------------------------------------------------------------


def test_a_lapsed_lease_is_taken_over_and_its_frozen_holder_fenced_off(stores, url):
    """A holder past its expiry, its connection still open: taken over; it can write nothing."""
    frozen, host_b = open_store(stores, url), open_store(stores, url)
    with frozen.lease("pub", run_id="frozen", ttl_s=3600) as old:
        journal = frozen.journal(old, "frozen")
        journal.append(records("frozen", 0)[0])
        with pytest.raises(Overlap), host_b.lease("pub", run_id="early", ttl_s=60):
            pytest.fail("taken before it lapsed")
        lapse(host_b)
        with host_b.lease("pub", run_id="new", ttl_s=60) as new:
            assert new.token > old.token
            holder = host_b.holder("pub")
            assert holder is not None
            assert (holder.run_id, holder.token) == ("new", new.token)
            with pytest.raises(LeaseLost) as info:
                journal.append(records("frozen", 1)[1])
            assert info.value.exit_code == 74
            with pytest.raises(LeaseLost):
                frozen.commit(old, AgentState(agent="pub", data={"by": "frozen"}))
            with pytest.raises(LeaseLost):
                old.check()
            # A third run meets the new holder, though the frozen one holds the advisory lock.
            with pytest.raises(Overlap), open_store(stores, url).lease("pub", run_id="3", ttl_s=60):
                pytest.fail("the lease was taken twice")
            assert host_b.pending("pub") == records("frozen", 0), "its late record never went in"
            host_b.commit(new, AgentState(agent="pub", data={"by": "new"}), drop_journal=True)
    assert host_b.load("pub").data == {"by": "new"}
    assert host_b.pending("pub") is None


def test_the_check_before_do_asks_the_server_after_the_intent_is_committed(stores, url):
    """The check before do() is not the intent's own fence: a lease lapsing as it goes in is lost.

    A trigger lapses the lease as the intent goes in, its fence passed: the
    check made after it (what a run makes right before do()) finds the lease
    lapsed, and the intent stays, for the next holder to settle.
    """
    store = open_store(stores, url)
    store.execute(
        "CREATE FUNCTION {s}.lapse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "UPDATE {s}.lease SET expires_at = now() - interval '1 second' WHERE agent = NEW.agent; "
        "RETURN NEW; END $$"
    )
    store.execute(
        "CREATE TRIGGER lapse AFTER INSERT ON {s}.journal FOR EACH ROW "
        "WHEN (NEW.record LIKE '%%\"lapse\"%%') EXECUTE FUNCTION {s}.lapse()"
    )
    intent = functools.partial(Intent, run_id="r", at=T0, action="publish")
    with store.lease("pub", run_id="r", ttl_s=3600) as lease:
        journal = store.journal(lease, "r")
        journal.append(records("r", 0)[0])
        journal.append(intent(key="held"), durable=True)
        lease.check()
        journal.append(intent(key="lapse"), durable=True)
        with pytest.raises(LeaseLost):
            lease.check()
    assert [r.key for r in store.pending("pub") or [] if isinstance(r, Intent)] == [
        "held",
        "lapse",
    ]


def test_a_lease_past_its_ttl_in_a_live_process_is_taken_over(stores, url):
    """Another process takes a lease for 0.2 s and stays alive: past it, taken over and fenced."""
    store = open_store(stores, url)
    process = StoreProcess(url)
    try:
        old_token = int(process.send("lease frozen 0.2").split()[1])
        assert eventually(lambda: lapsed(store))
        with store.lease("pub", run_id="new", ttl_s=60) as lease:
            assert lease.token > old_token
            assert process.send("journal 1") == "LeaseLost"
            assert process.send("commit") == "LeaseLost"
            assert store.pending("pub") is None
            holder = store.holder("pub")
            assert holder is not None
            assert holder.run_id == "new"
        assert store.load("pub") == AgentState(agent="pub"), "the frozen holder saved nothing"
    finally:
        process.close()


def let_go(observer: PostgresStore, claimer: int) -> bool:
    """Whether the server let go of ``claimer``'s claims (it ends a closed session soon)."""
    held = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 "
        "AND objid = %s::oid"
    )
    return eventually(lambda: observer.execute(held, (claimer,)).fetchone() == (0,))


def test_claims_of_a_tick_that_ended_before_starting_them_are_taken_over_once(stores, url):
    """Ticks claimed by a tick process whose session ended (it died): the next tick runs them.

    While its session lives, nobody takes its claims; once it is gone, the
    first other tick takes each one it did not start, for the tick claimed
    (late, once; a tick of the same minute claims it as its own); a tick it
    started is not run again, and an agent due again is claimed afresh.
    """
    dead, host_b, host_c = (open_store(stores, url) for _ in range(3))
    scheduled = ["started", "waiting", "hourly", "again", "same"]
    claims = dead.claim_ticks(dict.fromkeys(scheduled, T0), scheduled=scheduled)
    assert claims.ticks == dict.fromkeys(scheduled, T0)
    with dead.lease("started", run_id="a", ttl_s=60) as lease:
        assert dead.claim_tick(lease, T0, claimed=True)

    later = T0 + timedelta(minutes=1)
    alive = host_b.claim_ticks({"again": later, "same": T0}, scheduled=scheduled)
    assert alive.ticks == {"again": later}, "a live tick's claims are its own"
    dead.close()  # its session ends, as when its process dies
    assert let_go(host_b, claims.claimer)

    late = host_c.claim_ticks({"same": T0}, scheduled=["same"])
    assert late.ticks == {"same": T0}, "a late tick of the same minute claims it as its own"
    taken = host_b.claim_ticks({}, scheduled=scheduled)
    assert taken.ticks == {"waiting": T0, "hourly": T0}, "each claim not started, for its tick"
    assert host_c.claim_ticks({"same": T0}, scheduled=scheduled).ticks == {}, "taken once"
    with host_b.lease("waiting", run_id="b", ttl_s=60) as lease:
        assert host_b.claim_tick(lease, T0, claimed=True)
        assert not host_b.claim_tick(lease, T0, claimed=True), "started once"
    assert host_b.last_tick("hourly") == T0


@contextlib.contextmanager
def orphan_of_a_tick_taken_over(
    stores: list[PostgresStore], url: str
) -> Iterator[tuple[PostgresStore, Lease, PostgresStore, TickClaims]]:
    """A tick that died alone, its child (the orphan) holding the lease; host B took its claim.

    Yields the orphan's store and lease, host B's store and the claims it took over.
    """
    dead, orphan, host_b = (open_store(stores, url) for _ in range(3))
    claims = dead.claim_ticks({"pub": T0}, scheduled=["pub"])
    with orphan.lease("pub", run_id="orphan", ttl_s=60) as lease:
        dead.close()
        assert let_go(host_b, claims.claimer)
        taken = host_b.claim_ticks({}, scheduled=["pub"])
        assert taken.ticks == {"pub": T0}
        yield orphan, lease, host_b, taken


def test_an_orphaned_child_holding_the_lease_starts_the_claim_taken_over(stores, url):
    """The tick died alone: its child, holding the lease, still runs the tick; nobody else does.

    Another host's tick took the claim over meanwhile (the dead tick's lock
    is free): its own child for the agent finds the tick started.
    """
    with orphan_of_a_tick_taken_over(stores, url) as (orphan, lease, host_b, taken):
        assert orphan.claim_tick(lease, T0, claimed=True), "run, by the orphan"
    with host_b.lease("pub", run_id="b", ttl_s=60) as lease:
        assert not host_b.claim_tick(lease, T0, claimed=True), "not run twice"
    host_b.settle_ticks(taken.claimer, ["pub"])
    assert host_b.claim_ticks({}, scheduled=["pub"]).ticks == {}


def test_an_orphan_still_starts_the_claim_settled_by_a_child_that_found_it_busy(stores, url):
    """The other host's child found the agent busy (with the orphan) and its tick settled it.

    The orphan, reaching its claim only then, still runs the tick; a settled
    claim is not taken over by a later tick, and is started once.
    """
    with orphan_of_a_tick_taken_over(stores, url) as (orphan, lease, host_b, taken):
        with pytest.raises(Overlap), host_b.lease("pub", run_id="b", ttl_s=60):
            pass  # its child: busy
        host_b.settle_ticks(taken.claimer, ["pub"])
        assert host_b.claim_ticks({}, scheduled=["pub"]).ticks == {}, "settled: not taken over"
        assert orphan.claim_tick(lease, T0, claimed=True), "run, by the orphan"
        assert not orphan.claim_tick(lease, T0, claimed=True), "once"


def test_a_lost_claims_row_replaced_as_it_is_taken_over_is_claimed_for_its_tick(stores, url):
    """A ``store copy`` deleting the row between the claim's read and its write: the tick read.

    A trigger deletes the row just before the claim inserts, as a restore
    landing in that moment would: the claim is made anew for the lost tick.
    """
    dead, host_b = (open_store(stores, url) for _ in range(2))
    claims = dead.claim_ticks({"pub": T0}, scheduled=["pub"])
    dead.close()
    assert let_go(host_b, claims.claimer)
    host_b.execute(
        "CREATE FUNCTION {s}.vanish() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN DELETE FROM {s}.tick WHERE agent = NEW.agent; RETURN NEW; END $$"
    )
    host_b.execute(
        "CREATE TRIGGER vanish BEFORE INSERT ON {s}.tick FOR EACH ROW EXECUTE FUNCTION {s}.vanish()"
    )
    taken = host_b.claim_ticks({}, scheduled=["pub"])
    assert taken.ticks == {"pub": T0}
    assert host_b.last_tick("pub") == T0


def test_settled_claims_of_a_tick_that_ended_are_not_taken_over(stores, url):
    """A tick settles the claims whose runs ended without starting them (skipped): none is run.

    Only the claims still its own are settled: one another tick took over
    (its connection was cut) stays the other's.
    """
    dead, host_b = (open_store(stores, url) for _ in range(2))
    scheduled = ["skipped", "queued", "again"]
    claims = dead.claim_ticks(dict.fromkeys(scheduled, T0), scheduled=scheduled)
    later = T0 + timedelta(minutes=1)
    assert host_b.claim_ticks({"again": later}, scheduled=scheduled).ticks == {"again": later}
    dead.settle_ticks(claims.claimer, ["skipped", "again"])
    dead.close()
    assert let_go(host_b, claims.claimer)
    assert host_b.claim_ticks({}, scheduled=scheduled).ticks == {"queued": T0}
    with host_b.lease("again", run_id="b", ttl_s=60) as lease:
        assert host_b.claim_tick(lease, later, claimed=True), "still host b's claim"


def test_a_forked_child_that_forsakes_the_connection_leaves_the_session_to_its_parent(stores, url):
    """A child lets go of the inherited connection: the parent's session and claims live on."""
    store = open_store(stores, url)
    claims = store.claim_ticks({"pub": T0}, scheduled=["pub"])
    backend = store.execute("SELECT pg_backend_pid()").fetchone()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child ends in os._exit
        code = 1
        try:
            store.forsake()
            code = 0
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert store.execute("SELECT pg_backend_pid()").fetchone() == backend, "the same session"
    other = open_store(stores, url)
    assert other.claim_ticks({}, scheduled=["pub"]).ticks == {}, "its claims still held"
    store.close()
    assert let_go(other, claims.claimer)
    assert other.claim_ticks({}, scheduled=["pub"]).ticks == claims.ticks


def test_ticks_of_hosts_whose_due_agents_cross_never_deadlock(stores, url):
    """Two hosts, each claiming half the agents due and the other half's lost claims, at once.

    Hosts a minute apart (or scheduling differently) cross: what one claims
    as due the other may take over. The rows are locked in one order, so
    neither claim ever waits for the other in a circle.
    """
    names = [f"a{i:02d}" for i in range(40)]
    failed: list[BaseException] = []

    def host(half: int) -> None:
        store = PostgresStore(url)
        try:
            for minute in range(100):
                at = T0 + timedelta(minutes=minute)
                due = {name: at for i, name in enumerate(names) if i % 2 == half}
                store.claim_ticks(due, scheduled=names)
                store.close()  # its claims are lost: the other host takes them over
        except BaseException as exc:  # noqa: BLE001 - any failure fails the test, below
            failed.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=host, args=(half,)) for half in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failed == []
    assert open_store(stores, url).last_tick("a00") == T0 + timedelta(minutes=99)


def test_a_tick_settling_its_claims_never_deadlocks_with_another_hosts_claim(stores, url):
    """A tick settles claims while another host's tick claims the same rows: neither fails.

    After a few hundred agents' ticks and a vacuum, the rows lie in the table
    in no order of names. Settling locks them in the names' order, as a
    claim does; in the table's order it waited in a circle with a claim
    (``deadlock detected``), and one of the two failed.
    """
    import psycopg  # noqa: PLC0415 - the operator's session holding a row

    names = [f"a{i:03d}" for i in range(300)]
    for minute in range(3):
        past = open_store(stores, url)
        past.claim_ticks(dict.fromkeys(names, T0 + timedelta(minutes=minute)), scheduled=names)
        past.execute("VACUUM {s}.tick")
        past.close()
    settling, claiming, observer = (open_store(stores, url) for _ in range(3))
    claims = settling.claim_ticks(dict.fromkeys(names, T0 + timedelta(minutes=3)), scheduled=names)
    placed = [row[0] for row in observer.execute("SELECT agent FROM {s}.tick").fetchall()]
    first, later = next(
        (name, placed[i - 1]) for i, name in enumerate(placed) if i and name < placed[i - 1]
    )  # ``later`` lies before ``first`` in the table
    waiting = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    failed: list[BaseException] = []

    def call(do: Callable[[], object]) -> threading.Thread:
        def run() -> None:
            try:
                do()
            except BaseException as exc:  # noqa: BLE001 - any failure fails the test, below
                failed.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    holder = psycopg.connect(url, autocommit=True)
    with holder, holder.transaction():  # another run's claim of ``first``, a moment long
        holder.execute("SELECT 1 FROM agentops.tick WHERE agent = %s FOR UPDATE", (first,))
        due = dict.fromkeys([first, later], T0 + timedelta(minutes=4))
        threads = [call(functools.partial(claiming.claim_ticks, due, scheduled=list(due)))]
        assert eventually(lambda: observer.execute(waiting).fetchone() == (1,))
        threads.append(call(lambda: settling.settle_ticks(claims.claimer, [first, later])))
        assert eventually(lambda: observer.execute(waiting).fetchone() == (2,))
    for thread in threads:
        thread.join(120)
    assert failed == []


def test_a_row_a_frozen_session_holds_holds_up_no_claim_but_its_own_agents(stores, url):
    """A session froze holding the tick row of an agent not due: the ticks of others go on.

    A tick takes over only claims that are lost: it locks the rows of the
    agents due and of lost claims, not every scheduled agent's. A run frozen
    in the middle of claiming its own tick (its host stopped) holds up no
    other agent's tick on any host, for as long as the server keeps it.
    """
    import psycopg  # noqa: PLC0415 - the frozen session holding a row

    scheduled = ["busy", "due"]
    seed = open_store(stores, url)
    seed.settle_ticks(
        seed.claim_ticks(dict.fromkeys(scheduled, T0), scheduled=scheduled).claimer, scheduled
    )
    host = open_store(stores, url, config=StoreConfig(lock_timeout="1s"))
    holder = psycopg.connect(url, autocommit=True)
    with holder, holder.transaction():
        holder.execute("SELECT 1 FROM agentops.tick WHERE agent = 'busy' FOR UPDATE")
        later = T0 + timedelta(minutes=1)
        assert host.claim_ticks({"due": later}, scheduled=scheduled).ticks == {"due": later}


class Race:
    """Stores racing for one lease from threads of their own; the winner holds it until ended."""

    def __init__(self, contenders: list[PostgresStore], run_id: str) -> None:
        self.won: list[PostgresLease] = []
        self.lost: list[Overlap] = []
        self._barrier = threading.Barrier(len(contenders))
        self._done = threading.Event()
        self._run_id = run_id
        self.threads = [threading.Thread(target=self._contend, args=(s,)) for s in contenders]
        for thread in self.threads:
            thread.start()
        assert eventually(lambda: len(self.won) + len(self.lost) == len(contenders))

    def _contend(self, store: PostgresStore) -> None:
        self._barrier.wait()
        try:
            with store.lease("pub", run_id=self._run_id, ttl_s=3600) as lease:
                self.won.append(lease)
                self._done.wait(30)
        except Overlap as exc:
            self.lost.append(exc)

    def end(self) -> None:
        """Let the winner leave its block, and wait for every thread."""
        self._done.set()
        for thread in self.threads:
            thread.join(30)


def test_the_winner_of_a_race_for_a_lease_is_freed_by_its_death_at_once(stores, url):
    """Runs racing for a free lease: the winner holds the advisory lock, so its death frees it.

    A winner that took the row without the lock could only be taken over at
    its expiry (an hour here) after being killed.
    """
    contenders = [open_store(stores, url) for _ in range(4)]
    contenders[0].migrate()
    for round_ in range(25):
        race = Race(contenders, f"r{round_}")
        try:
            assert len(race.won) == 1, f"round {round_}: {len(race.won)} winners"
            race.won[0].connection.close()  # as a SIGKILL would
            # Once the server has ended the dead winner's session (soon, not at once)...
            gone = eventually(lambda: contenders[0].holder("pub") is None)
            assert gone, f"round {round_}: the dead winner still holds the lease"
            # ...the next run takes the lease.
            with contenders[0].lease("pub", run_id="next", ttl_s=60):
                pass
        finally:
            race.end()


def test_a_released_lease_frees_its_advisory_lock_before_the_block_returns(stores, url):
    """The next run finds the lock free at once, so the lease it takes is freed by its death.

    Closing the connection alone frees the lock only when the server has ended
    the session: a run starting meanwhile would take the lease without it.
    """
    store = open_store(stores, url)
    for run in range(50):
        with store.lease("pub", run_id=f"r{run}", ttl_s=60):
            pass
        held = store.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
        assert held.fetchone() == (0,)
        with store.lease("pub", run_id=f"next{run}", ttl_s=60):
            row = store.execute("SELECT locked FROM {s}.lease WHERE agent = 'pub'").fetchone()
            assert row == (True,)


# -- the bounds set on every connection ------------------------------------------------------


def test_every_connection_carries_the_configured_bounds(url):
    """The store's connection and each lease's: the server's timeouts; libpq's keepalives."""
    config = StoreConfig(
        statement_timeout="3s", lock_timeout="1500ms", idle_in_transaction_timeout="4s"
    )
    store = PostgresStore(url, config=config)
    query = (
        "SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), "
        "current_setting('idle_in_transaction_session_timeout')"
    )
    try:
        assert store.execute(query).fetchone() == ("3s", "1500ms", "4s")
        with store.lease("hello", run_id="r", ttl_s=60) as lease:
            on_lease = store.execute(query, connection=lease.connection).fetchone()
            assert on_lease == ("3s", "1500ms", "4s")
            parameters = lease.connection.info.get_parameters()
        assert {k: parameters[k] for k in ("keepalives", "keepalives_idle", "connect_timeout")} == {
            "keepalives": "1",
            "keepalives_idle": "30",
            "connect_timeout": "10",
        }
        assert parameters["application_name"] == "agentops"
    finally:
        store.close()


def test_what_the_location_says_wins_over_the_defaults(url):
    """A URL's own connect_timeout or keepalives are libpq's to use, not overridden."""
    store = PostgresStore(f"{url}&connect_timeout=3&keepalives_idle=7")
    try:
        parameters = store.execute("SELECT 1").connection.info.get_parameters()
        assert (parameters["connect_timeout"], parameters["keepalives_idle"]) == ("3", "7")
    finally:
        store.close()


# -- the tables ------------------------------------------------------------------------------


def test_hosts_starting_together_create_the_tables_once(stores, url):
    """Eight stores migrating a fresh schema at once: no error, one creates, one version row."""
    racers = [open_store(stores, url, schema="team_a") for _ in range(8)]
    barrier = threading.Barrier(len(racers))
    found: list[int | BaseException] = []

    def migrate(store: PostgresStore) -> None:
        barrier.wait()
        try:
            found.append(store.migrate())
        except BaseException as exc:  # noqa: BLE001 - reported by the assert
            found.append(exc)

    threads = [threading.Thread(target=migrate, args=(store,)) for store in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(found, key=str) == [0] + [SCHEMA_VERSION] * 7, found
    rows = racers[0].execute("SELECT key, value FROM {s}.meta").fetchall()
    assert rows == [("schema_version", str(SCHEMA_VERSION))]
    assert open_store(stores, url, schema="team_a").migrate() == SCHEMA_VERSION


def test_migrate_says_whether_it_created_the_tables(stores, bare):
    """migrate() on a database without the tables creates them: it says 0, then 1."""
    store = open_store(stores, bare)
    assert store.migrate() == 0
    assert store.migrate() == SCHEMA_VERSION
    assert open_store(stores, bare).load("pub") == AgentState(agent="pub")
    assert open_store(stores, bare).migrate() == SCHEMA_VERSION


def test_tables_of_a_newer_agentops_are_refused_with_74(stores, url):
    """schema_version 2 in the store: every use raises StateError (74) saying to upgrade."""
    open_store(stores, url).migrate()
    open_store(stores, url).execute(
        "UPDATE {s}.meta SET value = %s WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
    )
    with pytest.raises(StateError) as info:
        open_store(stores, url).load("pub")
    assert info.value.exit_code == 74
    assert f"schema version {SCHEMA_VERSION + 1}" in info.value.message
    assert "upgrade agentops" in info.value.message


# -- the reply cache -------------------------------------------------------------------------


@pytest.fixture
def store(postgres) -> Iterator[PostgresStore]:
    """A fresh database whose tables ``agentops store init`` made."""
    found = PostgresStore(postgres.database())
    yield found
    found.close()


def test_the_stores_cache_keeps_a_reply_for_its_ttl_and_its_bound(store):
    """As the file cache: found until the TTL, the oldest pushed out past the bound, per agent."""
    cache = store.reply_cache("a", ttl_s=60, max_entries=2)
    cache.put("k", {"text": "hi", "cost_usd": 0.5}, 1000.0)
    assert cache.get("k", 1059.0) == {"text": "hi", "cost_usd": 0.5}
    assert cache.get("k", 1060.0) is None
    assert store.reply_cache("b", ttl_s=60, max_entries=2).get("k", 1000.0) is None
    for number, key in enumerate("abc"):
        cache.put(key, {"text": key}, 1001.0 + number)
    assert [cache.get(key, 1004.0) is not None for key in "kabc"] == [False, False, True, True]
    cache.put("c", {"text": "again"}, 1005.0)
    assert cache.get("c", 1005.0) == {"text": "again"}
    assert (cache.reset_because, cache.unavailable) == (None, None)


def test_a_cache_whose_store_fails_is_done_without(store):
    """A store that cannot answer makes the cache unavailable for the run, never an error."""
    cache = store.reply_cache("a", ttl_s=60, max_entries=2)
    store.execute("DROP TABLE {s}.reply")
    assert cache.get("k", 1000.0) is None
    assert cache.unavailable is not None
    assert "reply" in cache.unavailable
    cache.put("k", {"text": "hi"}, 1000.0)  # not even tried
