"""``agentops tick`` on three hosts sharing the real PostgreSQL store: each due agent once a tick.

A host is a home of its own with the same agents, and ``tickhost.py``: the
tick the command runs, in a process of its own that forks a child per agent,
its clock fixed at the tick the test chooses (so hosts started together tick
the same minute whatever the real time). What the agents do goes to files
outside every home; a host is killed with ``kill -9`` of its whole process
group, children included, as a host dies.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from agentops.store import STORE_URL_ENV
from agentops.store.base import Pause
from agentops.store.postgres import PostgresStore
from netns import Cable
from pgserver import PostgresServer
from suite import AGENTOPS, Project, cron_env, eventually, remember

if TYPE_CHECKING:
    from collections.abc import Iterator

TICKHOST = Path(__file__).parent.parent / "tickhost.py"
T1 = datetime(2026, 3, 2, 12, 0, 5, tzinfo=UTC)
NAMES = [f"w{n}" for n in range(6)]

WORKER = """
import os
import time
from pathlib import Path
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    world: str
    name: str
    hold: float = 0.0

class Result(BaseModel):
    pid: int

def run(params: Params, ctx: Context) -> Result:
    world = Path(params.world)
    running = world / "running"
    running.mkdir(exist_ok=True)
    (running / params.name).touch()
    at_once = len(os.listdir(running))
    with open(world / "starts", "a") as f:
        f.write(f"{params.name} {os.getppid()} {at_once}\\n")
    while not (world / "release").exists():  # the test lets it end
        time.sleep(0.02)
    time.sleep(params.hold)
    (running / params.name).unlink()
    return Result(pid=os.getpid())
"""


class Hosts:
    """Three homes with the same agents and one store."""

    def __init__(
        self, root: Path, url: str, toml: str = "", params: str = "", schedule: str = "* * * * *"
    ) -> None:
        self.url = url
        self.world = root / "world"
        self.world.mkdir()
        (self.world / "release").touch()
        template = Project(root / "template")
        for name in NAMES:
            template.add_agent(
                name,
                WORKER,
                f'schedule = "{schedule}"\n{toml}\n'
                f'[params]\nworld = "{self.world}"\nname = "{name}"\n{params}',
            )
        self.homes = []
        for host in ("a", "b", "c"):
            home = root / f"host-{host}"
            shutil.copytree(template.home / "agents", home / "agents")
            # Room for every agent at once: a host may win all of a tick's claims.
            (home / "agentops.toml").write_text("[tick]\nparallel = 6\n")
            self.homes.append(home)

    def env(self, host: int) -> dict[str, str]:
        return cron_env(
            self.homes[host],
            **{STORE_URL_ENV: self.url, "TZ": "UTC", "PYTHONPATH": str(TICKHOST.parent)},
        )

    def tick(self, host: int, at: datetime) -> subprocess.Popen[str]:
        """Start host ``host``'s tick at ``at``, in a process group of its own."""
        return subprocess.Popen(
            [sys.executable, str(TICKHOST), str(self.homes[host]), at.isoformat()],
            env=self.env(host),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def ticks(self, at: datetime, hosts: tuple[int, ...] = (0, 1, 2)) -> list[dict[str, Any]]:
        """Every host's tick at ``at``, all at once, to their ends: what each ran."""
        return [finish(process) for process in [self.tick(h, at) for h in hosts]]

    def starts(self) -> list[tuple[str, int, int]]:
        """Each run started: the agent, its tick's pid, how many were running then."""
        path = self.world / "starts"
        lines = path.read_text().splitlines() if path.exists() else []
        return [(name, int(pid), int(count)) for name, pid, count in map(str.split, lines)]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for home in self.homes for e in Project(home).events(name)]


def finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    """Wait for a host's tick; what it ran (its output kept for the scan for secrets)."""
    stdout, stderr = process.communicate(timeout=120)
    remember("tickhost: stdout", stdout)
    remember("tickhost: stderr", stderr)
    assert process.returncode == 0, stderr
    assert stderr == "", "cron's contract: silent when every agent succeeded or was skipped"
    found: dict[str, Any] = json.loads(stdout)
    return found


def ran_once_each(reports: list[dict[str, Any]]) -> bool:
    """Every agent ran (exit 0) on exactly one host."""
    ran = [name for report in reports for name in report["ran"]]
    codes = {code for report in reports for code in report["ran"].values()}
    return sorted(ran) == NAMES and codes == {0}


@pytest.fixture
def hosts(tmp_path, postgres) -> Hosts:
    return Hosts(tmp_path, postgres.database())


@pytest.fixture
def store(hosts) -> Iterator[PostgresStore]:
    found = PostgresStore(hosts.url)
    yield found
    found.close()


def test_three_hosts_run_each_due_agent_once_a_tick_even_when_one_is_killed(hosts, store):
    """Ticks on three hosts at once: each agent once; again: none; a host killed mid-tick.

    The killed host's agents ran once (their runs died with it) and no other
    host ran them again that tick; at the next tick every agent runs once
    more, and each dead run is recovered once.
    """
    assert ran_once_each(hosts.ticks(T1))
    assert len(hosts.starts()) == 6
    assert all(store.last_tick(name) == T1.replace(second=0) for name in NAMES)

    # The same tick again (a host whose clock is late): no host starts anything.
    again = hosts.ticks(T1 + timedelta(seconds=20))
    assert [report["ran"] for report in again] == [{}, {}, {}]
    assert all(sorted(report["due"]) == NAMES for report in again)
    assert len(hosts.starts()) == 6

    # The next tick: the agents hold on until released; the host running the
    # first of them dies (kill -9 of its process group, children included).
    (hosts.world / "release").unlink()
    t2 = T1 + timedelta(minutes=1)
    processes = [hosts.tick(h, t2) for h in range(3)]
    assert eventually(lambda: len(hosts.starts()) == 12), "every agent of the tick started"
    round_2 = hosts.starts()[6:]
    assert sorted(name for name, _, _ in round_2) == NAMES, "each once"
    doomed = next(i for i, p in enumerate(processes) if p.pid == round_2[0][1])
    killed = sorted(name for name, pid, _ in round_2 if pid == processes[doomed].pid)
    os.killpg(processes[doomed].pid, signal.SIGKILL)
    processes[doomed].communicate(timeout=60)
    assert processes[doomed].returncode == -signal.SIGKILL
    (hosts.world / "release").touch()
    survivors = [finish(p) for i, p in enumerate(processes) if i != doomed]
    survived = sorted(name for report in survivors for name in report["ran"])
    assert sorted(survived + killed) == NAMES, "no agent of the dead host ran again"
    assert len(hosts.starts()) == 12

    # The server frees the dead host's sessions soon, not at once.
    assert eventually(lambda: all(store.holder(name) is None for name in killed))
    assert ran_once_each(hosts.ticks(t2 + timedelta(minutes=1)))
    assert len(hosts.starts()) == 18
    for name in NAMES:
        recovered = [e for e in hosts.events(name) if e["event"] == "run.recovered"]
        assert len(recovered) == (1 if name in killed else 0), name


def test_a_group_limit_holds_across_hosts(tmp_path, postgres):
    """[groups] llm = 1 on every host: a tick and plain runs elsewhere, one at a time."""
    hosts = Hosts(tmp_path, postgres.database(), toml='group = "llm"', params="hold = 0.1\n")
    for home in hosts.homes:
        (home / "agentops.toml").write_text("[tick]\nparallel = 6\n[groups]\nllm = 1\n")
    tick = hosts.tick(0, T1)
    plain = [
        subprocess.Popen(
            [str(AGENTOPS), "--home", str(hosts.homes[h]), "run", name],
            env=hosts.env(h),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for h, name in ((1, "w0"), (2, "w1"))
    ]
    assert finish(tick)["ran"] == dict.fromkeys(NAMES, 0)
    for process in plain:
        stdout, stderr = process.communicate(timeout=120)
        remember("agentops run", stdout, stderr)
        assert process.returncode == 0, stderr
    starts = hosts.starts()
    assert len(starts) == 8
    assert [count for _, _, count in starts] == [1] * 8, "never two of the group at once"


def test_the_agents_a_dying_tick_won_but_had_not_started_run_once_at_the_next_tick(
    tmp_path, postgres
):
    """Host a's tick wins every hourly agent and starts one at a time; it is killed mid-tick.

    While it lives, host b's next tick takes none of its claims. Once it is
    dead (kill -9 of its process group), host c's next tick runs each agent
    it had not started, once, for the tick it claimed; host b's then runs
    none, and the agent it had started is not run again.
    """
    hosts = Hosts(tmp_path, postgres.database(), schedule="0 * * * *")
    (hosts.homes[0] / "agentops.toml").write_text("[tick]\nparallel = 1\n")
    (hosts.world / "release").unlink()
    doomed = hosts.tick(0, T1)
    assert eventually(lambda: len(hosts.starts()) == 1), "host a started its first agent"
    started = hosts.starts()[0][0]
    t2 = T1 + timedelta(minutes=1)  # no hourly agent is due
    assert finish(hosts.tick(1, t2)) == {"ran": {}, "due": []}, "a live tick keeps its claims"

    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.communicate(timeout=60)
    store = PostgresStore(hosts.url)
    try:
        # The server ends the dead tick's sessions soon, not at once.
        claims_held = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        assert eventually(lambda: store.execute(claims_held).fetchone() == (0,))
        (hosts.world / "release").touch()
        report = finish(hosts.tick(2, t2))
        assert report["due"] == []
        assert report["ran"] == {name: 0 for name in NAMES if name != started}
        assert finish(hosts.tick(1, t2 + timedelta(seconds=20)))["ran"] == {}, "taken once"
        assert sorted(name for name, _, _ in hosts.starts()) == NAMES, "each agent once"
        assert all(store.last_tick(name) == T1.replace(second=0) for name in NAMES)
    finally:
        store.close()


def test_a_tick_its_agent_skipped_before_starting_is_not_taken_over_by_the_next(tmp_path, postgres):
    """w0 is paused at host a's hourly tick, and no longer a minute later.

    Its run was refused (paused) before it started the tick: the tick was
    still settled, as a skip settles it. The next tick of host b takes
    nothing over: w0's skipped tick is not run a minute late, nor refused
    again every minute while the pause lasts.
    """
    hosts = Hosts(tmp_path, postgres.database(), schedule="0 * * * *")
    store = PostgresStore(hosts.url)
    try:
        store.set_pause("w0", Pause(at=T1, until=T1 + timedelta(seconds=30)))
        skipped = {name: 75 if name == "w0" else 0 for name in NAMES}  # 75: paused, quietly
        assert finish(hosts.tick(0, T1))["ran"] == skipped
        t2 = T1 + timedelta(minutes=1)
        assert finish(hosts.tick(1, t2)) == {"ran": {}, "due": []}, "nothing to take over"
        assert sorted(name for name, _, _ in hosts.starts()) == NAMES[1:], "w0 skipped its tick"
    finally:
        store.close()


def test_a_tick_killed_alone_leaves_its_queue_to_the_next_tick_while_its_child_runs(
    tmp_path, postgres
):
    """Host a's tick (parallel 1) is killed alone (kill -9 of its pid): its child runs on.

    The child does not keep the dead tick's claims alive (it holds no copy
    of the tick's connection): host c's next tick takes over the agents
    still queued at once, while the orphaned child still runs, and runs
    each once.
    """
    hosts = Hosts(tmp_path, postgres.database(), schedule="0 * * * *")
    (hosts.homes[0] / "agentops.toml").write_text("[tick]\nparallel = 1\n")
    (hosts.world / "release").unlink()
    doomed = hosts.tick(0, T1)
    store = PostgresStore(hosts.url)
    try:
        assert eventually(lambda: len(hosts.starts()) == 1), "host a started its first agent"
        started = hosts.starts()[0][0]
        os.kill(doomed.pid, signal.SIGKILL)  # the tick alone: its child is orphaned
        doomed.wait(timeout=60)  # (its output pipes stay open in the orphan)
        claims_held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2"
        assert eventually(lambda: store.execute(claims_held).fetchone() == (0,)), "claims freed"
        taker = hosts.tick(2, T1 + timedelta(minutes=1))
        assert eventually(lambda: len(hosts.starts()) == len(NAMES)), "the queue taken over"
        (hosts.world / "release").touch()
        assert finish(taker)["ran"] == {name: 0 for name in NAMES if name != started}
        assert sorted(name for name, _, _ in hosts.starts()) == NAMES, "each agent once"
    finally:
        (hosts.world / "release").touch()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(doomed.pid, signal.SIGKILL)  # the orphan, if it is still there
        doomed.communicate(timeout=60)
        store.close()


def test_a_dead_ticks_claims_are_not_run_after_a_later_fire_was_missed(tmp_path, postgres):
    """Host a dies mid-tick at 12:00 and no host ticks until 15:01: the hourly agents skip 12:00.

    A later fire (13:00, 14:00, 15:00) passed meanwhile, missed as when the
    hosts were down: an agent without ``catch_up`` skips it, as cron does,
    and the claims of 12:00 are not run three hours late, nor by a later tick.
    """
    hosts = Hosts(tmp_path, postgres.database(), schedule="0 * * * *")
    (hosts.homes[0] / "agentops.toml").write_text("[tick]\nparallel = 1\n")
    (hosts.world / "release").unlink()
    doomed = hosts.tick(0, T1)
    assert eventually(lambda: len(hosts.starts()) == 1), "host a started its first agent"
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.communicate(timeout=60)
    store = PostgresStore(hosts.url)
    try:
        claims_held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2"
        assert eventually(lambda: store.execute(claims_held).fetchone() == (0,))
        (hosts.world / "release").touch()
        late = T1 + timedelta(hours=3, minutes=1)
        assert finish(hosts.tick(2, late)) == {"ran": {}, "due": []}, "12:00 is not run at 15:01"
        assert finish(hosts.tick(1, late + timedelta(seconds=20)))["ran"] == {}, "nor later"
        assert len(hosts.starts()) == 1
    finally:
        store.close()


HOLDER = """
import sys
import time
from datetime import datetime

from agentops.store.postgres import PostgresStore

store = PostgresStore(sys.argv[1])
claims = store.claim_ticks({"hourly": datetime.fromisoformat(sys.argv[2])}, scheduled=["hourly"])
print(sorted(claims.ticks), flush=True)
time.sleep(600)
"""
"""A tick's claims on a store across the cable, held while it runs its agents (a long while)."""


def test_the_claims_of_a_tick_whose_host_was_lost_are_taken_over_within_its_keepalives():
    """A tick's host is lost mid-tick (its network gone: no FIN, no RST), its claims held.

    The server gives the lost session up within the store's TCP keepalives
    (here 1 s, then 2 probes 1 s apart), not the system's two hours: its
    claims are free, and the next tick of another host takes them over.
    """
    cable = Cable()
    server, holder = None, None
    try:
        server = PostgresServer(cable=cable)
        url = server.database()
        remote = server.tcp_url(url, cable) + (
            "?keepalives_idle=1&keepalives_interval=1&keepalives_count=2"
        )
        command = [sys.executable, "-c", HOLDER, remote, T1.replace(second=0).isoformat()]
        holder = subprocess.Popen(
            cable.host_side(command), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
        assert holder.stdout is not None
        assert holder.stdout.readline() == "['hourly']\n", "the lost host's tick won the claim"
        cable.cut()
        store = PostgresStore(url)
        try:
            held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2"
            given_up = eventually(lambda: store.execute(held).fetchone() == (0,), within_s=60)
            assert given_up, "the server gave the lost host's session up"
            taken = store.claim_ticks({}, scheduled=["hourly"])
            assert taken.ticks == {"hourly": T1.replace(second=0)}
        finally:
            store.close()
    finally:
        if holder is not None:
            holder.kill()
            holder.communicate(timeout=60)
        if server is not None:
            server.stop()
        cable.remove()


def test_a_live_tick_keeps_its_claims_on_a_server_that_ends_idle_sessions(tmp_path, postgres):
    """The database ends sessions idle for a second (``idle_session_timeout``), as a DBA may set.

    Host a's tick waits on its first agent for longer than that, its other
    claims held by its idle session: the server does not end it, and host
    b's next tick takes none of the live tick's claims.
    """
    hosts = Hosts(tmp_path, postgres.database(), schedule="0 * * * *")
    database = hosts.url.split("///", 1)[1].split("?", 1)[0]
    with psycopg.connect(postgres.url(), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" SET idle_session_timeout = 1000')
    (hosts.homes[0] / "agentops.toml").write_text("[tick]\nparallel = 1\n")
    (hosts.world / "release").unlink()
    live = hosts.tick(0, T1)
    assert eventually(lambda: len(hosts.starts()) == 1), "host a started its first agent"
    time.sleep(3)  # the tick's session idle for three times the server's bound
    taker = hosts.tick(1, T1 + timedelta(minutes=1))
    (hosts.world / "release").touch()
    assert finish(taker) == {"ran": {}, "due": []}, "a live tick keeps its claims"
    assert finish(live)["ran"] == dict.fromkeys(NAMES, 0)
