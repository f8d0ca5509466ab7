"""Every wait on a PostgreSQL store is bounded: no lock, freeze or stall hangs a command.

Against the suite's server (tests/pgserver.py), with short bounds in the
project's agentops.toml, real ``agentops`` processes under cron's
environment meet what once hung a whole fleet: a psql session holding the
migration lock, or an agent's lease row, its backend frozen too; a run's own
backends frozen (SIGSTOP) between two statements; the whole server frozen.
Each command ends within its bound with exit 74 and one line saying what it
waited for, and those that need no lock are not held up at all. A lease
granted after a long wait counts its life from the grant, by the database's
clock. ``status``, ``ledger`` and ``store check`` read a database that
allows nothing but reading, and a real hot standby.
"""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from agentops.project.config import StoreConfig
from agentops.store import STORE_URL_ENV
from agentops.store._pgschema import advisory_key
from agentops.store.postgres import PostgresStore
from pgserver import Psql, frozen
from suite import AGENTOPS, Project, cron_env, eventually, remember

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from agentops.store.base import Lease

BOUNDS = """[store]
connect_timeout = "2s"
statement_timeout = "2s"
lock_timeout = "1s"
idle_in_transaction_timeout = "2s"
"""
"""Short bounds: a command waits at most 2 s to connect and 7 s for an answer."""

HANG_S = 90.0
"""How long a test waits for a command: only to tell a hang (every bound here is seconds)."""

GATED = """
import time
from pathlib import Path
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    gate: str

class Result(BaseModel):
    done: bool

def run(params: Params, ctx: Context) -> Result:
    Path(params.gate + ".waiting").write_text(ctx.run_id)
    while not Path(params.gate).exists():
        time.sleep(0.02)
    ctx.action("publish", key="one", do=lambda: {"ok": True})
    return Result(done=True)
"""

ACTING = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    n: int

def run(params: Params, ctx: Context) -> Result:
    n = ctx.state.get("n", 0) + 1
    ctx.state["n"] = n
    ctx.action("publish", key=f"item-{n}", do=lambda: {"n": n})
    return Result(n=n)
"""


@dataclass
class Fleet:
    """A project on the suite's server, with short bounds: its commands run as cron runs them."""

    project: Project
    url: str
    server: Any
    gate: Path

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start ``agentops ARGS``."""
        return subprocess.Popen(
            [str(AGENTOPS), "--home", str(self.project.home), *args],
            env=cron_env(self.project.home, **{STORE_URL_ENV: self.url}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
        """Wait for ``process`` (at most :data:`HANG_S`); what it printed is kept for the scan."""
        stdout, stderr = process.communicate(timeout=HANG_S)
        remember(f"agentops {process.args}: stdout", stdout)
        remember(f"agentops {process.args}: stderr", stderr)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``agentops ARGS`` to its end."""
        return self.finish(self.start(*args))

    def psql(self) -> Psql:
        """An operator's psql session on the store's database."""
        return Psql(self.server, self.url)


@pytest.fixture
def fleet(project, postgres, tmp_path) -> Fleet:
    """Agents on a fresh database whose tables are made, with the short bounds."""
    gate = tmp_path / "gate"
    project.add_agent("hello")
    project.add_agent("acting", ACTING)
    project.add_agent("gated", GATED, f'[params]\ngate = "{gate}"\n')
    (project.home / "agentops.toml").write_text(BOUNDS)
    return Fleet(project, postgres.database(), postgres, gate)


@pytest.fixture
def psql(fleet) -> Iterator[Callable[[], Psql]]:
    """Open psql sessions on the fleet's database; closed after the test."""
    opened: list[Psql] = []

    def open_session() -> Psql:
        session = fleet.psql()
        opened.append(session)
        return session

    yield open_session
    for session in opened:
        session.close()


def one_line(done: subprocess.CompletedProcess[str], code: int = 74) -> str:
    """The one line a command that could not use its store printed (exit ``code``)."""
    assert (done.returncode, done.stdout) == (code, ""), (done.returncode, done.stderr)
    (line,) = done.stderr.splitlines()
    return line


def quiet(done: subprocess.CompletedProcess[str]) -> None:
    """The command succeeded."""
    assert done.returncode == 0, done.stderr


def test_a_session_holding_the_migration_lock_holds_up_init_and_migrate_only(fleet, psql):
    """psql holds the migration lock: init and migrate end at lock_timeout; the rest run."""
    quiet(fleet.run("run", "acting"))
    session = psql()
    session.send(f"SELECT pg_advisory_lock({advisory_key('agentops', 'migrate')});")
    quiet(fleet.run("run", "acting"))
    for command in (("status",), ("store", "check"), ("ledger", "acting")):
        quiet(fleet.run(*command))
    for command in ("init", "migrate"):
        line = one_line(fleet.run("store", command))
        assert "another `agentops store init` or `store migrate` held the migration lock" in line
        assert "longer than lock_timeout (1 s); nothing was changed" in line
    session.close()
    quiet(fleet.run("store", "init"))


def test_a_frozen_session_holding_a_lease_row_ends_the_run_within_its_bound(fleet, psql):
    """psql holds acting's lease row, its backend frozen: run and copy end at lock_timeout, 74.

    Reading needs no lock: status, ledger and store check are not held up.
    """
    quiet(fleet.run("run", "acting"))
    session = psql()
    session.send("BEGIN; SELECT agent FROM agentops.lease WHERE agent = 'acting' FOR UPDATE;")
    with frozen(session.pid):
        line = one_line(fleet.run("run", "acting"))
        assert "waited longer than lock_timeout (1 s) for a lock another session holds" in line
        copy_to = fleet.project.home / "copy"
        copied = one_line(fleet.run("store", "copy", "--to", str(copy_to)))
        assert "waited longer than lock_timeout" in copied
        assert not any(copy_to.glob("*.json")), "nothing was copied"
        for command in (("status", "acting"), ("store", "check"), ("ledger", "acting")):
            quiet(fleet.run(*command))
        quiet(fleet.run("run", "hello"))  # another agent's lease is another row
    session.close()
    quiet(fleet.run("run", "acting"))


def test_a_run_whose_backends_freeze_between_two_statements_ends_within_its_bound(fleet, psql):
    """The run's backends stop (SIGSTOP) while its agent works: its next write is cut off.

    No timeout of the server's can fire (a frozen backend runs nothing): the
    client's own bound ends the run, 74, one line, nothing left hanging.
    """
    run = fleet.start("run", "gated")
    waiting = Path(f"{fleet.gate}.waiting")
    assert eventually(waiting.exists, within_s=HANG_S), "the agent never started"
    session = psql()
    backends = [
        int(pid)
        for pid in session.send(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'agentops';"
        )
    ]
    assert len(backends) == 2, "the store's connection and the lease's"
    with frozen(*backends):
        fleet.gate.write_text("")
        line = one_line(fleet.finish(run))
    assert "did not answer within 7 s (statement_timeout 2 s and 5 s more)" in line


def test_a_frozen_server_ends_every_command_within_its_bound(fleet, postgres):
    """The postmaster stops answering: each command gives up connecting after connect_timeout."""
    quiet(fleet.run("run", "hello"))
    with frozen(postgres.postmaster_pid()):
        started = [
            fleet.start(*command)
            for command in (
                ("run", "hello"),
                ("store", "check"),
                ("store", "init"),
                ("ledger", "acting"),
                ("status", "--json"),
            )
        ]
        lines = [one_line(fleet.finish(process)) for process in started]
    for line in lines:
        assert "cannot connect to the store postgresql:///" in line
        assert "timeout expired" in line


def test_a_lease_granted_after_a_long_wait_counts_its_life_from_the_grant(fleet, psql):
    """A lease waiting on its row longer than its ttl is live when granted (clock_timestamp()).

    Counted from the start of its transaction (``now()``), it would be born
    lapsed, and its run would fail as taken over with no other run anywhere.
    """
    store = PostgresStore(fleet.url, config=StoreConfig(lock_timeout=3600))
    try:
        with store.lease("pub", run_id="first", ttl_s=60):
            pass
        session, watcher = psql(), psql()  # pg_stat_activity is read once a transaction
        session.send("BEGIN; SELECT agent FROM agentops.lease WHERE agent = 'pub' FOR UPDATE;")
        granted: list[tuple[Lease, bool]] = []
        done = threading.Event()

        def take() -> None:
            with store.lease("pub", run_id="late", ttl_s=1) as lease:
                lease.check()  # raises LeaseLost if born lapsed
                granted.append((lease, store.holder("pub") is not None))
                done.wait(HANG_S)

        thread = threading.Thread(target=take)
        thread.start()
        try:
            # By the database's clock: the waiter's transaction began over its ttl ago.
            assert eventually(
                lambda: (
                    watcher.send(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND application_name = 'agentops' "
                        "AND clock_timestamp() - xact_start > interval '1.5 seconds';"
                    )
                    == ["1"]
                ),
                within_s=HANG_S,
            )
            session.send("ROLLBACK;")
            assert eventually(lambda: bool(granted), within_s=HANG_S)
            ((lease, held),) = granted
            assert held, "the holder is live"
            assert lease.token == 2
        finally:
            done.set()
            thread.join(HANG_S)
    finally:
        store.close()


def test_reading_commands_work_against_a_read_only_database(fleet, psql):
    """default_transaction_read_only, as on a replica: status, ledger, check read; a run is 74.

    Until issue 18 every command first ran the migration, whose CREATE SCHEMA
    a replica refuses: even status failed.
    """
    quiet(fleet.run("run", "acting"))
    quiet(fleet.run("run", "hello"))
    database = fleet.url.split("?")[0].rsplit("/", 1)[1]
    psql().send(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on;')
    status = fleet.run("status", "--json")
    quiet(status)
    rows = {row["agent"]: row for row in json.loads(status.stdout)}
    assert rows["acting"]["health"] == rows["hello"]["health"] == "ok"
    quiet(fleet.run("ledger", "acting", "--all"))
    checked = fleet.run("store", "check")
    quiet(checked)
    assert checked.stdout.endswith("schema version 4, 2 agent(s) with state: ok\n")
    line = one_line(fleet.run("run", "acting"))
    assert "read-only transaction" in line
    quiet(fleet.run("store", "init"))  # the tables are this agentops': nothing to write


# -- the bounds set on every connection --------------------------------------------------------


def test_reading_commands_work_against_a_streaming_replica(project, tmp_path):
    """A real hot standby: status, ledger and store check read it; a run there is 74, one line."""
    from pgserver import PostgresServer  # noqa: PLC0415 - two servers of this test's own

    project.add_agent("acting", ACTING)
    primary = PostgresServer()
    try:
        url = primary.database()
        replica = PostgresServer(standby_of=primary)
        try:
            on_primary = Fleet(project, url, primary, tmp_path / "gate")
            quiet(on_primary.run("run", "acting"))
            replica_url = url.replace(str(primary.socket_dir), str(replica.socket_dir))
            on_replica = Fleet(project, replica_url, replica, tmp_path / "gate")
            watcher = on_replica.psql()
            try:
                assert watcher.send("SELECT pg_is_in_recovery();") == ["t"]
                assert eventually(
                    lambda: watcher.send("SELECT count(*) FROM agentops.agent_state;") == ["1"],
                    within_s=HANG_S,
                ), "the replica never caught up"
            finally:
                watcher.close()
            status = on_replica.run("status", "acting", "--json")
            quiet(status)
            assert json.loads(status.stdout)[0]["last_run"]["status"] == "succeeded"
            ledger = on_replica.run("ledger", "acting", "--all", "--json")
            quiet(ledger)
            assert [row["key"] for row in json.loads(ledger.stdout)] == ["item-1"]
            quiet(on_replica.run("store", "check"))
            assert "read-only transaction" in one_line(on_replica.run("run", "acting"))
        finally:
            replica.stop()
    finally:
        primary.stop()


PATIENT = """[store]
connect_timeout = "60s"
statement_timeout = "60s"
lock_timeout = "60s"
idle_in_transaction_timeout = "60s"
"""
"""Bounds far past the run's own hard deadline: only the deadline can end its wait."""


@pytest.mark.parametrize("holder", ["lease_row", "server"])
def test_a_run_without_its_lease_by_its_hard_deadline_ends_with_one_line(fleet, psql, holder):
    """The hard deadline counts from the start: a run kept from its lease ends there, 74.

    ``brief`` times out after 1 s, so its hard deadline is 6 s from its
    start, far before the store's own 60 s bounds: a psql session holding
    its lease row with its backend frozen, or the whole server frozen,
    cannot keep it longer. It says so in one line and in its log.
    """
    fleet.project.add_agent("brief", ACTING, 'timeout = "1s"\n')
    (fleet.project.home / "agentops.toml").write_text(PATIENT)
    quiet(fleet.run("run", "brief"))
    if holder == "lease_row":
        session = psql()
        session.send("BEGIN; SELECT agent FROM agentops.lease WHERE agent = 'brief' FOR UPDATE;")
        pid = session.pid
    else:
        pid = fleet.server.postmaster_pid()
    with frozen(pid):
        line = one_line(fleet.run("run", "brief"))
    assert line.startswith("agentops: brief: the store gave the run no lease and state within")
    assert "its hard deadline (6 s from its start); nothing was run (log: " in line
    aborted = [e for e in fleet.project.events("brief") if e["event"] == "run.aborted"]
    assert [e["exit_code"] for e in aborted] == [74]
    if holder == "lease_row":
        session.close()
    quiet(fleet.run("run", "brief"))
    assert fleet.project.events("brief")[-1]["event"] == "run.finished"


@pytest.mark.parametrize(
    "keepalives",
    [
        "keepalives_idle=32767&keepalives_interval=32767&keepalives_count=127",  # Linux's most
        "keepalives_idle=inf",
        "keepalives_idle=99999999999",
        "keepalives_idle=-5&keepalives_count=abc",
    ],
)
def test_odd_keepalives_in_the_location_never_break_the_session(fleet, keepalives):
    """What libpq takes (or, on a Unix socket, ignores) is given to the server within its range.

    The server's session is set the client's keepalives and the time they
    add up to (``tcp_user_timeout``, at most the server's largest): values
    libpq accepts never make the server refuse the session, nor agentops crash.
    """
    odd = Fleet(fleet.project, f"{fleet.url}&{keepalives}", fleet.server, fleet.gate)
    quiet(odd.run("store", "check"))
    quiet(odd.run("run", "hello"))
