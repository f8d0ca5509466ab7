"""Several hosts, one PostgreSQL store: real ``agentops`` processes under cron's environment.

A "host" is a home directory of its own, holding the same agents (their
files copied) and its own state/ and logs/: the hosts share nothing but the
database, named by ``$AGENTOPS_STORE_URL``. What an agent does to the world
goes to files outside every home, which the test reads as the world would.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from agentops.model.ledger import Entry
from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import run_agent
from agentops.store import STORE_URL_ENV
from agentops.store.postgres import PostgresStore
from suite import AGENTOPS, SPENDING_AGENT, FakeClock, Project, cron_env, remember

if TYPE_CHECKING:
    from collections.abc import Iterator

TICKED = """
import time
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    executions: str
    hold: float = 0.3

class Result(BaseModel):
    run_id: str

def run(params: Params, ctx: Context) -> Result:
    with open(params.executions, "a") as f:
        f.write(ctx.run_id + "\\n")
    time.sleep(params.hold)  # still running while most of the others start
    return Result(run_id=ctx.run_id)
"""

PUBLISHING = """
import time
from pathlib import Path
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    outbox: str
    items: int = 8
    block_at: int = -1  # inside this item's do(), after its effect: block until killed

class Result(BaseModel):
    published: int

def _publish(params, key, run_id):
    with open(params.outbox, "a") as f:
        f.write(f"{key} {run_id}\\n")
    if key == f"item-{params.block_at}":
        Path(params.outbox + ".blocked").write_text(run_id)
        while True:
            time.sleep(1)
    return {"run_id": run_id}

def run(params: Params, ctx: Context) -> Result:
    for i in range(params.items):
        key = f"item-{i}"
        ctx.action("publish", key=key, do=lambda key=key: _publish(params, key, ctx.run_id))
    return Result(published=params.items)

def reconcile(name: str, key: str, ctx: Context) -> bool:
    lines = Path(ctx.params.outbox).read_text().splitlines()
    return any(line.split()[0] == key for line in lines)
"""

FROZEN = """
import time
from pathlib import Path
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    outbox: str
    wait_for: str = ""  # a file: wait for it before acting

class Result(BaseModel):
    run_id: str

def _publish(params, run_id):
    with open(params.outbox, "a") as f:
        f.write(run_id + "\\n")
    return {"run_id": run_id}

def run(params: Params, ctx: Context) -> Result:
    if params.wait_for:
        Path(params.wait_for + ".waiting").write_text(ctx.run_id)
        while not Path(params.wait_for).exists():
            time.sleep(0.02)
    ctx.state["by"] = ctx.run_id
    ctx.action("publish", key=ctx.run_id, do=lambda: _publish(params, ctx.run_id))
    return Result(run_id=ctx.run_id)
"""

STUCK = """
import time
from pathlib import Path
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    gate: str

class Result(BaseModel):
    run_id: str

def run(params: Params, ctx: Context) -> Result:
    if not Path(params.gate).exists():
        Path(params.gate + ".waiting").write_text(ctx.run_id)
        while True:  # swallows every stop: only its hard deadline ends it
            try:
                time.sleep(0.05)
            except BaseException:
                pass
    return Result(run_id=ctx.run_id)
"""


@dataclass
class Hosts:
    """Homes with the same agents and one store: the hosts of one deployment."""

    url: str
    homes: list[Path]
    shared: Path
    """Outside every home: what the agents do to the world."""

    def env(self, host: int) -> dict[str, str]:
        """Cron's environment on ``host``, pointed at the store (schedules read in UTC)."""
        return cron_env(self.homes[host], **{STORE_URL_ENV: self.url, "TZ": "UTC"})

    def command(self, host: int, *args: str) -> list[str]:
        return [str(AGENTOPS), "--home", str(self.homes[host]), *args]

    def start(self, host: int, *args: str) -> subprocess.Popen[str]:
        """Start ``agentops ARGS`` on ``host``, in a session of its own as cron starts a job.

        Not in the suite's session: there, a run stopped (SIGSTOP, a frozen
        host) is in a process group that the kernel hangs up (SIGHUP) should
        the group become orphaned while it is stopped, which cron's jobs
        never see and which once ended a frozen run before its deadline.
        """
        return subprocess.Popen(
            self.command(host, *args),
            env=self.env(host),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def run(self, host: int, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``agentops ARGS`` on ``host`` to its end."""
        return finish(self.start(host, *args), f"host {host}: agentops {' '.join(args)}")

    def events(self, name: str) -> list[dict[str, Any]]:
        """Every log line of ``name`` on every host."""
        return [e for home in self.homes for e in Project(home).events(name)]

    def outcomes(self, name: str) -> Counter[str]:
        """How each run of ``name`` on every host went: started, or skipped for a reason."""
        found: Counter[str] = Counter()
        for event in self.events(name):
            if event["event"] == "run.started":
                found["started"] += 1
            elif event["event"] == "run.skipped":
                found[event["reason"]] += 1
        return found


def finish(process: subprocess.Popen[str], where: str) -> subprocess.CompletedProcess[str]:
    """Wait for ``process``; what it printed is kept for the scan for secrets."""
    stdout, stderr = process.communicate(timeout=120)
    remember(f"{where}: stdout", stdout)
    remember(f"{where}: stderr", stderr)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture
def hosts(tmp_path, postgres) -> Hosts:
    """Three hosts with the test's agents, sharing a fresh database."""
    shared = tmp_path / "world"
    shared.mkdir()
    template = Project(tmp_path / "template")
    template.add_agent(
        "ticked", TICKED, f'schedule = "@yearly"\n[params]\nexecutions = "{shared}/executions"\n'
    )
    template.add_agent("publisher", PUBLISHING, f'[params]\noutbox = "{shared}/outbox"\n')
    template.add_agent("frozen", FROZEN, f'[params]\noutbox = "{shared}/outbox"\n')
    template.add_agent("spender", SPENDING_AGENT, "[limits]\ncost_usd_per_day = 1.0\n")
    template.add_agent("stuck", STUCK, f'timeout = "1s"\n[params]\ngate = "{shared}/gate"\n')
    homes = []
    for name in ("a", "b", "c"):
        home = tmp_path / f"host-{name}"
        shutil.copytree(template.home / "agents", home / "agents")
        homes.append(home)
    return Hosts(postgres.database(), homes, shared)


@pytest.fixture
def store(hosts) -> Iterator[PostgresStore]:
    """The hosts' store, as the test reads it."""
    found = PostgresStore(hosts.url)
    yield found
    found.close()


def eventually(check, *, within_s: float = 30.0) -> bool:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def scheduled_starts(hosts: Hosts) -> list[int]:
    """4 scheduled starts of ``ticked`` on each of the 3 hosts, all at once; their exit codes."""
    started = [hosts.start(h, "run", "ticked", "--scheduled") for h in range(3) for _ in range(4)]
    done = [finish(process, "a scheduled start") for process in started]
    assert all((d.stdout, d.stderr) == ("", "") for d in done), "skips are silent under cron"
    return sorted(d.returncode for d in done)


def test_simultaneous_scheduled_starts_on_three_hosts_run_each_tick_once(hosts, store):
    """4 starts x 3 hosts for one tick, twice: one run; the next tick runs once too."""
    assert scheduled_starts(hosts) == [0] + [75] * 11
    assert len((hosts.shared / "executions").read_text().split()) == 1
    # The same tick again (cron on a host whose clock is late): none runs.
    assert scheduled_starts(hosts) == [75] * 12
    assert len((hosts.shared / "executions").read_text().split()) == 1
    outcomes = hosts.outcomes("ticked")
    assert outcomes["started"] == 1
    assert outcomes["tick_taken"] >= 1, "whichever start of the second round got the lease"
    assert set(outcomes) <= {"started", "overlap", "tick_taken"}
    assert sum(outcomes.values()) == 24
    this_year = datetime(datetime.now(UTC).year, 1, 1, tzinfo=UTC)
    assert store.last_tick("ticked") == this_year

    # The next tick (a year on, by a clock of the test's): once, whichever host runs it.
    clock = FakeClock(this_year.replace(year=this_year.year + 1, second=30))
    environ = {STORE_URL_ENV: hosts.url, "TZ": "UTC"}
    codes = []
    for host in (1, 2, 0):
        options: dict[str, Any] = {"environ": environ, "clock": clock, "scheduled": True}
        outcome = run_agent(AgentopsProject(hosts.homes[host]), "ticked", **options)
        codes.append((outcome.exit_code, outcome.reason))
    assert codes == [(0, None), (75, "tick_taken"), (75, "tick_taken")]
    assert store.last_tick("ticked") == clock.now.replace(second=0)
    # A start late for the first tick claims nothing: a later one was run.
    assert hosts.run(2, "run", "ticked", "--scheduled").returncode == 75
    assert len((hosts.shared / "executions").read_text().split()) == 2


def test_a_host_killed_mid_publish_is_finished_by_another_exactly_once(hosts, store):
    """Host A dies (SIGKILL) inside do() after its effect; host B recovers and finishes.

    Every item is published once; the ledger says each is committed; host B
    asked reconcile() about the item A was publishing when it died.
    """
    outbox = hosts.shared / "outbox"
    host_a = hosts.start(0, "run", "publisher", "-p", "block_at=3")
    assert eventually(lambda: Path(f"{outbox}.blocked").exists()), "host A never got to item 3"
    host_a.send_signal(signal.SIGKILL)
    assert finish(host_a, "host A").returncode == -signal.SIGKILL

    # The server ends the dead host's session soon, not at once: until then, 75.
    for _ in range(100):
        host_b = hosts.run(1, "run", "publisher")
        if host_b.returncode != 75:
            break
        time.sleep(0.1)
    assert (host_b.returncode, host_b.stdout, host_b.stderr) == (0, "", "")

    published = Counter(line.split()[0] for line in outbox.read_text().splitlines())
    assert published == {f"item-{i}": 1 for i in range(8)}
    ledger = store.load_ledger("publisher").entries["publish"]
    assert {key: Entry.parse(line).status for key, line in ledger.items()} == {
        f"item-{i}": "committed" for i in range(8)
    }
    names = [e["event"] for e in Project(hosts.homes[1]).events("publisher")]
    assert "run.recovered" in names
    assert "action.reconciled" in names
    assert store.pending("publisher") is None
    assert store.load("publisher").last_run.status == "succeeded"


def test_a_budget_raced_from_three_hosts_is_never_passed(hosts, store):
    """Three runs a host started at once, twice over: the spend stays within the daily cap."""
    codes, loud = [], []
    for _ in range(2):
        started = [
            hosts.start(host, "run", "spender", "-p", "pause=0.1")
            for host in range(3)
            for _ in range(3)
        ]
        for process in started:
            done = finish(process, "a spender")
            codes.append(done.returncode)
            if done.stderr:
                loud.append(done.stderr)
    assert codes == [75] * 18
    assert len(loud) == 1, "the run the budget stopped says so once; the skips are silent"
    assert "cost_usd_per_day 1 reached" in loud[0]
    spends = store.load("spender").budget.spends
    assert sum(s.usd for s in spends) <= 1.0 + 1e-9
    assert sum(s.usd for s in spends) == pytest.approx(0.9)
    assert len({s.run_id for s in spends}) == 1
    outcomes = hosts.outcomes("spender")
    assert outcomes["started"] == 1
    assert set(outcomes) <= {"started", "overlap", "budget"}
    assert sum(outcomes.values()) == 18


def test_a_run_whose_lease_lapsed_cannot_act_or_save(hosts, store):
    """A frozen host's lease lapses and another host takes the agent: the frozen run exits 74.

    Its lease is made to lapse in the database (as its time running out
    would); host B then runs the agent. When host A wakes, its next action
    is refused before its effect, and its state is not saved.
    """
    gate = hosts.shared / "gate"
    host_a = hosts.start(0, "run", "frozen", "-p", f"wait_for={gate}")
    try:
        assert eventually(lambda: Path(f"{gate}.waiting").exists())
        run_a = Path(f"{gate}.waiting").read_text()
        assert hosts.run(1, "run", "frozen").returncode == 75, "A's lease holds until it lapses"
        store.execute(
            "UPDATE {s}.lease SET expires_at = now() - interval '1 second' WHERE agent = 'frozen'"
        )
        host_b = hosts.run(1, "run", "frozen")
        assert (host_b.returncode, host_b.stderr) == (0, "")
        gate.write_text("")
        done_a = finish(host_a, "host A")
    finally:
        with contextlib.suppress(ProcessLookupError):
            host_a.kill()
    assert done_a.returncode == 74, done_a.stderr
    (line,) = done_a.stderr.splitlines()
    assert "lease lapsed or was taken over by another run" in line
    outbox = (hosts.shared / "outbox").read_text().split()
    assert run_a not in outbox, "the fenced-off run's action never ran"
    assert len(outbox) == 1
    state = store.load("frozen")
    assert state.data["by"] == outbox[0], "the state is host B's"
    assert state.last_run.status == "succeeded"
    assert store.pending("frozen") is None
    events_a = [e["event"] for e in Project(hosts.homes[0]).events("frozen")]
    assert "state.save_failed" in events_a


def test_a_frozen_hosts_dead_run_is_recorded_once(hosts, store):
    """Host A freezes mid-run; B takes over and records A's run as crashed; A wakes and dies.

    A's run swallows every stop, so it is ended by its deadline, which leaves
    its deadline marker on host A. A's next run reads that marker of a run
    the store already recorded: it is not recorded a second time (as a
    timeout), so the failures and the breaker count it once.
    """
    gate = hosts.shared / "gate"
    host_a = hosts.start(0, "run", "stuck")
    try:
        assert eventually(lambda: Path(f"{gate}.waiting").exists(), within_s=60)
        dead = Path(f"{gate}.waiting").read_text()
        host_a.send_signal(signal.SIGSTOP)
        store.execute(
            "UPDATE {s}.lease SET expires_at = now() - interval '1 second' WHERE agent = 'stuck'"
        )
        gate.write_text("")
        host_b = hosts.run(1, "run", "stuck")
        assert (host_b.returncode, host_b.stderr) == (0, "")
        host_a.send_signal(signal.SIGCONT)
        done_a = finish(host_a, "host A")
    finally:
        with contextlib.suppress(ProcessLookupError):
            host_a.send_signal(signal.SIGCONT)
            host_a.kill()
    assert done_a.returncode == 1, done_a.stderr
    assert (hosts.homes[0] / "state" / "stuck.deadline").exists(), "A's marker says it was ended"
    assert [e.run_id for e in store.load("stuck").errors] == [dead]

    again = hosts.run(0, "run", "stuck")
    assert (again.returncode, again.stderr) == (0, "")
    state = store.load("stuck")
    assert [(e.run_id, e.category) for e in state.errors] == [(dead, "crashed")]
    assert state.metrics.failed == 1
    assert state.metrics.runs == 3, "A's dead run, B's run, A's next run"
    assert not (hosts.homes[0] / "state" / "stuck.deadline").exists()
