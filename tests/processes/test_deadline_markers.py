"""Deadline markers in the shared store: a run ended on one host is a timeout on every other.

Two homes (host A, host B) share one real PostgreSQL store. A run its hard
deadline ends on host A leaves its marker in A's ``state/``, which host B
never sees: whoever outlived the run there (the ``agentops tick`` parent, the
run itself when it abandons itself, the PID-1 supervisor of a container)
publishes it to the store, and the next run, on host B, records the dead run
as ``timeout`` exactly once. PID 1 is real: ``unshare --pid --fork
--mount-proc`` as root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from agentops.run.deadline import hard_deadline_s
from agentops.store import STORE_URL_ENV
from agentops.store.postgres import PostgresStore
from pgserver import frozen
from suite import AGENTOPS, STUBBORN, Project, agent_source, cron_env, eventually, remember

QUICK = agent_source("return Result()", result="total: int = 0")
STUCK = agent_source(
    "return Result(total=sum(range(10**13)))  # C code: no signal handler runs in it",
    result="total: int",
)
TIMEOUT = "0.5s"
LINE = (
    "agentops: agent: the run passed its hard deadline "
    f"({hard_deadline_s(0.5):g}s) and was ended (log: {{log}})\n"
)
CIRCUIT = '\n[circuit]\nfailures = 1\ncooldown = "1h"\n'
"""The dead run's timeout opens the circuit: the breaker counted it, and only once."""


class Hosts:
    """Host A and host B: two homes with the same agent, one PostgreSQL store."""

    def __init__(self, root: Path, url: str) -> None:
        self.url = url
        self.a = Project(root / "host-a")
        self.b = Project(root / "host-b")

    def agent(self, code: str, toml: str = "") -> None:
        for host in (self.a, self.b):
            host.add_agent("agent", code, f'timeout = "{TIMEOUT}"\n{toml}')

    def env(self, host: Project) -> dict[str, str]:
        return cron_env(host.home, **{STORE_URL_ENV: self.url})

    def run(
        self, host: Project, *args: str, pid1: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """``agentops --home HOME ARGS`` as cron runs it; with ``pid1``, as a container's init."""
        command = [str(AGENTOPS), "--home", str(host.home), *args]
        if pid1:
            command = ["unshare", "--pid", "--fork", "--mount-proc", *command]
        done = subprocess.run(
            command,
            env=self.env(host),
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        remember("agentops: stdout", done.stdout)
        remember("agentops: stderr", done.stderr)
        return done

    def events(self, event: str) -> list[dict[str, Any]]:
        return [e for host in (self.a, self.b) for e in host.events("agent") if e["event"] == event]

    def markers(self) -> list[tuple[str, str]]:
        """The markers the store keeps: (agent, run id)."""
        store = PostgresStore(self.url)
        try:
            rows = store.execute("SELECT agent, run_id FROM {s}.deadline_marker").fetchall()
        finally:
            store.close()
        return [tuple(row) for row in rows]

    def state(self) -> Any:
        store = PostgresStore(self.url)
        try:
            return store.load("agent"), store.last_attempt("agent")
        finally:
            store.close()


@pytest.fixture
def hosts(tmp_path, postgres) -> Hosts:
    return Hosts(tmp_path, postgres.database())


@pytest.fixture
def as_root() -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a real PID 1 needs root and unshare (util-linux)")


def dead_run_of(host: Project) -> str:
    """The run id of the one run host ``host`` started."""
    [started] = [e for e in host.events("agent") if e["event"] == "run.started"]
    run_id: str = started["run_id"]
    return run_id


def recorded_once_on_b(hosts: Hosts, dead: str) -> None:
    """Host B's run records host A's dead run as a timeout, and no run records it again."""
    hosts.agent(QUICK, CIRCUIT)
    following = hosts.run(hosts.b, "run", "agent")
    assert following.returncode == 75, f"the timeout opened the circuit: {following.stderr}"
    assert hosts.markers() == [], "dropped in the commit that recorded the run"
    for host in (hosts.b, hosts.a):  # found again nowhere: not recorded again
        assert hosts.run(host, "run", "agent").returncode == 75
    state, attempt = hosts.state()
    assert state.last_run is not None
    assert (state.last_run.run_id, state.last_run.status) == (dead, "timeout")
    assert [(e.run_id, e.category) for e in state.errors] == [(dead, "timeout")]
    assert state.metrics.failed == 1
    assert (state.circuit.state, state.circuit.failures) == ("open", 1)
    assert attempt is not None
    assert attempt.status == "skipped"
    [passed] = hosts.events("run.deadline_passed")
    assert passed["dead_run"] == dead
    assert [e for e in hosts.events("run.recovered") if e["crashed_run"] == dead] != []
    assert not (hosts.a.home / "state" / "agent.deadline").exists()


@pytest.mark.usefixtures("as_root")
def test_a_run_ended_in_a_container_is_a_timeout_in_the_next_pod(hosts):
    """PID 1 on host A: its line is said, the marker published; host B records a timeout once."""
    hosts.agent(STUCK, CIRCUIT)
    ended = hosts.run(hosts.a, "run", "agent", pid1=True)
    assert ended.returncode == 1, ended.stderr
    assert ended.stdout == ""
    assert ended.stderr == LINE.format(log=hosts.a.log_path("agent"))
    dead = dead_run_of(hosts.a)
    assert hosts.markers() == [("agent", dead)]
    assert not (hosts.a.home / "state" / "agent.deadline").exists(), "the store keeps it now"
    recorded_once_on_b(hosts, dead)


@pytest.mark.usefixtures("as_root")
@pytest.mark.parametrize("command", [("run", "agent"), ("tick",)], ids=["run", "tick"])
def test_as_pid_1_the_supervisor_alone_hands_the_marker_over(hosts, postgres, command):
    """In a container the supervisor publishes the marker: the keeper and the tick do not try too.

    The supervisor waits for every process, the keeper too: a keeper (or a
    tick's parent) trying a store that does not answer held the container's
    end for up to ``LINGER_S`` more, before the supervisor tried it again,
    and the failure was said twice.
    """
    hosts.agent(STUCK, 'schedule = "* * * * *"\n' + CIRCUIT)
    (hosts.a.home / "agentops.toml").write_text("[store]\nconnect_timeout = 1\n")
    command = [str(AGENTOPS), "--home", str(hosts.a.home), *command]
    run = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", *command],
        env=hosts.env(hosts.a),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Its marker is written once it holds its lease: it needs no new connection after.
        assert eventually((hosts.a.home / "state" / "agent.deadline").exists)
        with frozen(postgres.postmaster_pid()):  # no new connection is answered
            out, err = run.communicate(timeout=120)
    finally:
        _end(run)
    remember("agentops: stderr", err)
    assert (run.returncode, out) == (1, "")
    line, unpublished = err.splitlines(keepends=True)
    assert line == LINE.format(log=hosts.a.log_path("agent"))
    assert "could not keep its deadline marker" in unpublished
    assert hosts.events("deadline.marker_unpublished") == [], "the keeper did not try"
    assert (hosts.a.home / "state" / "agent.deadline").exists(), "this pod's next run records it"


def test_a_run_ended_under_agentops_tick_is_a_timeout_on_another_host(hosts):
    """The tick's parent publishes its child's marker: host B records a timeout once."""
    hosts.agent(STUCK, 'schedule = "* * * * *"\n' + CIRCUIT)
    ticked = hosts.run(hosts.a, "tick")
    assert ticked.stderr == LINE.format(log=hosts.a.log_path("agent"))
    assert ticked.returncode == 1, "the agent said its line: it needs a human"
    dead = dead_run_of(hosts.a)
    assert hosts.markers() == [("agent", dead)]
    # The watcher may still have been reading it: the tick leaves the local
    # marker, and host A's next run finds that run recorded already.
    assert (hosts.a.home / "state" / "agent.deadline").exists()
    recorded_once_on_b(hosts, dead)


def test_a_run_ended_under_a_plain_crontab_line_is_a_timeout_on_another_host(hosts):
    """``agentops run AGENT`` alone: its keeper outlives it and publishes its marker."""
    hosts.agent(STUCK, CIRCUIT)
    ended = hosts.run(hosts.a, "run", "agent")
    assert ended.returncode == 1
    assert ended.stderr == LINE.format(log=hosts.a.log_path("agent"))
    dead = dead_run_of(hosts.a)
    # The keeper publishes once the run's processes are gone, after the run's exit.
    assert eventually(lambda: hosts.markers() == [("agent", dead)]), hosts.markers()
    assert (hosts.a.home / "state" / "agent.deadline").exists(), "the watcher may read it"
    recorded_once_on_b(hosts, dead)


def test_a_keeper_that_cannot_reach_the_store_says_so_and_keeps_nobody_waiting(hosts, postgres):
    """The store answers no new connection: the run's line is said at once, the keeper logs why.

    Cron mails a job's output once its pipes close: the keeper holds neither,
    so the line comes as the run ends, while the keeper still waits for the
    store (``connect_timeout``), and then logs ``deadline.marker_unpublished``.
    """
    hosts.agent(STUCK, CIRCUIT)
    (hosts.a.home / "agentops.toml").write_text("[store]\nconnect_timeout = 5\n")
    run = _start(hosts, hosts.a)
    try:
        assert eventually(lambda: _keeper_of(run.pid) is not None)
        keeper = _keeper_of(run.pid)
        assert keeper is not None
        with frozen(postgres.postmaster_pid()):  # the run's connections are made already
            out, err = run.communicate(timeout=120)
            assert _state(keeper)[0] not in "ZX", "the keeper was still trying the store"
            assert eventually(lambda: _state(keeper)[0] in "ZX")
    finally:
        _end(run)
    assert (run.returncode, out) == (1, "")
    assert err == LINE.format(log=hosts.a.log_path("agent"))
    dead = dead_run_of(hosts.a)
    [unpublished] = hosts.events("deadline.marker_unpublished")
    assert unpublished["run_id"] == dead
    assert f"run {dead} was ended by its deadline" in unpublished["error"]
    assert hosts.markers() == []
    assert (hosts.a.home / "state" / "agent.deadline").exists(), "this host's next run records it"


@pytest.mark.parametrize("tracking", ["subreaper", "cgroup"])
def test_a_run_frozen_past_its_deadline_is_a_timeout_on_every_host(hosts, tracking, request):
    """A run frozen (SIGSTOP) past its hard deadline is recorded once, as a timeout, everywhere.

    Without a cgroup, its keeper waits for its end to publish: thawed, the
    run's watchdog ends it at once and writes its marker (a keeper that gave
    the run up while it was frozen would publish nothing, and host B would
    record a crash). With one, the keeper ends the frozen run with its
    cgroup, saying first in the marker what the watchdog could not: the
    run's one line is printed all the same.
    """
    if tracking == "cgroup":
        request.getfixturevalue("cgroups")
    hosts.agent(STUCK, CIRCUIT)
    run = _start(hosts, hosts.a, AGENTOPS_PROCESS_TRACKING=tracking)
    try:
        _freeze_past_its_deadline(hosts, run.pid)
        out, err = run.communicate(timeout=120)
    finally:
        _end(run)
    remember("agentops: stderr", err)
    # Ended by its watchdog (exit 1), or killed with its cgroup.
    assert (run.returncode, out) == (1 if tracking == "subreaper" else -signal.SIGKILL, "")
    assert err == LINE.format(log=hosts.a.log_path("agent"))
    dead = dead_run_of(hosts.a)
    assert eventually(lambda: hosts.markers() == [("agent", dead)]), hosts.markers()
    recorded_once_on_b(hosts, dead)


@pytest.mark.usefixtures("cgroups")
def test_a_run_frozen_under_agentops_tick_is_one_line_and_a_timeout_on_every_host(hosts):
    """The tick's child, frozen past its deadline, ended with its cgroup: its one line only.

    Its keeper says in the marker what the frozen watchdog could not, so the
    watcher prints the run's line; the tick, seeing its child killed, says
    nothing more (it used to add "run killed by SIGKILL").
    """
    hosts.agent(STUCK, 'schedule = "* * * * *"\n' + CIRCUIT)
    tick = _start(hosts, hosts.a, "tick", AGENTOPS_PROCESS_TRACKING="cgroup")

    def child() -> int | None:
        kids = _children(tick.pid)
        return kids[0] if len(kids) == 1 else None

    try:
        assert eventually(lambda: child() is not None)
        run = child()
        assert run is not None
        _freeze_past_its_deadline(hosts, run)
        out, err = tick.communicate(timeout=120)
    finally:
        _end(tick)
    remember("agentops tick: stderr", err)
    assert (tick.returncode, out) == (1, "")
    assert err == LINE.format(log=hosts.a.log_path("agent"))
    dead = dead_run_of(hosts.a)
    assert eventually(lambda: hosts.markers() == [("agent", dead)]), hosts.markers()
    recorded_once_on_b(hosts, dead)


def test_a_run_that_abandons_itself_publishes_its_marker(hosts):
    """A run abandoned for swallowing its stop is alive, and tells the store itself."""
    hosts.agent(STUBBORN, CIRCUIT)
    abandoned = hosts.run(hosts.a, "run", "agent")
    assert abandoned.returncode == 1
    assert "run abandoned: timeout" in abandoned.stderr
    dead = dead_run_of(hosts.a)
    assert hosts.markers() == [("agent", dead)]
    recorded_once_on_b(hosts, dead)


@pytest.mark.usefixtures("as_root")
def test_a_run_ending_in_time_leaves_no_marker_in_the_store(hosts):
    """Nothing is published of a run that ended in time, as a container's init or not."""
    hosts.agent(QUICK)
    for pid1 in (False, True):
        done = hosts.run(hosts.a, "run", "agent", pid1=pid1)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert hosts.markers() == []
    assert not (hosts.a.home / "state" / "agent.deadline").exists()


SUPERVISED = """
import os, sys, time
from agentops.run.pid1 import supervise_as_init

supervise_as_init(["run", "agent"], {{"AGENTOPS_HOME": {home!r}}})
# The child, as the run: an orphan (a double fork) is reparented to PID 1, ends at once,
# and must be reaped by it, not left a zombie.
assert os.getpid() != 1
pid_r, pid_w = os.pipe()
go_r, go_w = os.pipe()
if os.fork() == 0:
    orphan = os.fork()
    if orphan == 0:
        os.read(go_r, 1)  # until its parent is gone: then it is PID 1's
        os._exit(0)
    os.write(pid_w, str(orphan).encode())
    os._exit(0)
os.wait()
orphan = int(os.read(pid_r, 64).decode())
os.write(go_w, b"x")
def state():
    try:
        with open(f"/proc/{{orphan}}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):  # reaped between the open and the read
        return "gone"
deadline = time.monotonic() + 120  # only bounds a hang
while state() != "gone" and time.monotonic() < deadline:
    time.sleep(0.02)
print(state(), flush=True)
sys.exit(3)
"""


@pytest.mark.usefixtures("as_root")
def test_as_pid_1_orphans_are_reaped_and_the_exit_code_is_the_runs(tmp_path):
    """The supervisor reaps what is reparented to it, and exits with its child's code."""
    script = tmp_path / "supervised.py"
    script.write_text(textwrap.dedent(SUPERVISED.format(home=str(tmp_path))))
    done = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, "gone\n", "")


@pytest.mark.usefixtures("as_root")
def test_as_pid_1_a_home_that_cannot_be_found_is_the_runs_one_line_and_code():
    """A --home too long to look up: the run's one line and 70, as without PID 1; no traceback."""
    command = [str(AGENTOPS), "--home", "/" + "a" * 5000, "run", "a"]
    done, alone = (
        subprocess.run(
            [*pid_1, *command],
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        for pid_1 in (["unshare", "--pid", "--fork", "--mount-proc"], [])
    )
    assert (done.returncode, done.stdout) == (alone.returncode, "")
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.usefixtures("as_root")
def test_as_pid_1_a_stop_reaches_the_run_and_a_signal_death_is_128_plus(tmp_path):
    """SIGTERM to PID 1 is forwarded to the run; killed by it, the exit code is 128 + 15."""
    script = tmp_path / "supervised.py"
    script.write_text(
        "import os, signal, sys, time\n"
        "from agentops.run.pid1 import supervise_as_init\n"
        "supervise_as_init(['run', 'agent'], {})\n"
        f"open({str(tmp_path / 'ready')!r}, 'w').close()\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert eventually((tmp_path / "ready").exists)
        [init] = _children(proc.pid)  # the supervisor: unshare's child
        os.kill(init, 15)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert (proc.returncode, out, err) == (128 + 15, "", "")


def _start(hosts: Hosts, host: Project, *args: str, **env: str) -> subprocess.Popen[str]:
    """``agentops ARGS`` (``run agent``) on ``host``, in a session of its own as cron starts it.

    Not in the suite's session: a stopped process in a group the kernel finds
    orphaned gets SIGHUP, which cron's jobs never see.
    """
    return subprocess.Popen(
        [str(AGENTOPS), "--home", str(host.home), *(args or ("run", "agent"))],
        env={**hosts.env(host), **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _freeze_past_its_deadline(hosts: Hosts, run: int) -> None:
    """Freeze the run ``run`` (SIGSTOP) once it started, until its keeper is done; thaw it."""
    # Its watcher (a shell) and its keeper are started once it holds its
    # lease; frozen once it said it started (its agent's code is next).
    assert eventually(lambda: _keeper_of(run) is not None)
    keeper = _keeper_of(run)
    assert keeper is not None
    assert eventually(lambda: "run.started" in hosts.a.event_names("agent"))
    os.kill(run, signal.SIGSTOP)
    # Until the keeper would have given the run up (its deadline and the
    # keeper's settling time passed): a lower bound only, never a result.
    eventually(lambda: _state(keeper)[0] in "ZX", within_s=hard_deadline_s(0.5) + 8)
    with contextlib.suppress(ProcessLookupError):  # killed with its cgroup
        os.kill(run, signal.SIGCONT)


def _end(run: subprocess.Popen[str]) -> None:
    """Whatever happened, ``run`` (thawed) and its pipes are done with."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(run.pid, signal.SIGCONT)
    run.kill()
    run.communicate()


def _keeper_of(run: int) -> int | None:
    """The keeper of the run ``run``, once it has its keeper and its watcher (a shell)."""
    named = {pid: _state(pid)[1] for pid in _children(run)}
    if sorted(name == "sh" for name in named.values()) != [False, True]:
        return None
    return next(pid for pid, name in named.items() if name != "sh")


def _state(pid: int) -> tuple[str, str]:
    """A process's state letter and its command's name (``X``: gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "X", ""
    name, _, rest = stat.partition(" (")[2].rpartition(") ")
    return rest.split()[0], name


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found
