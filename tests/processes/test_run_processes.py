"""A run owns the processes it starts: they end with it, and never keep the agent's lock.

Real runs of the real executable, whose agent starts real processes and
leaves them running: a grandchild detached by a double fork and ``setsid()``,
a ``multiprocessing`` pool, a non-daemon ``multiprocessing.Process``, a
plain ``subprocess.Popen``. Each child writes ``<pid>.pid`` once it is
ready, and ``<pid>.TERM`` when SIGTERM reaches it: the tests wait on those
files and on the processes' end, never on a clock. Both the cgroup and the
subreaper (and the process group) are exercised, forced with
``AGENTOPS_PROCESS_TRACKING``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentops._infra import procs
from agentops._infra.cgroup import RunCgroup
from agentops.errors import Overlap
from agentops.run.deadline import hard_deadline_s
from agentops.run.processes import cgroup_prefix
from agentops.store.file import FileStore
from suite import AGENTOPS, cron_env, remember

SPAWNER = r'''
import multiprocessing, os, signal, subprocess, sys, time
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    how: str = "none"       # double_fork, popen, pool, process, none
    then: str = "return"    # return, sleep (past the timeout), stuck (in C code)
    ignore_term: bool = False

class Result(BaseModel):
    started: int

CHILD = """
import os, signal, sys
from pathlib import Path
pids, ignore = Path(sys.argv[1]), sys.argv[2] == "1"
pid = os.getpid()
if ignore:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    def term(signum, frame):
        (pids / f"{pid}.TERM").write_text("")
        os._exit(0)
    signal.signal(signal.SIGTERM, term)
(pids / f"{pid}.tmp").write_text(str(pid))
os.rename(pids / f"{pid}.tmp", pids / f"{pid}.pid")
"""

def ready(pids, ignore):
    pid = os.getpid()
    if ignore:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        def term(signum, frame):
            (pids / f"{pid}.TERM").write_text("")
            os._exit(0)
        signal.signal(signal.SIGTERM, term)
    (pids / f"{pid}.tmp").write_text(str(pid))
    os.rename(pids / f"{pid}.tmp", pids / f"{pid}.pid")

def idle(pids, ignore):
    ready(pids, ignore)
    while True:
        signal.pause()

def run(params: Params, ctx: Context) -> Result:
    pids = ctx.home / "pids"
    pids.mkdir(exist_ok=True)
    expected = {"double_fork": 1, "popen": 1, "pool": 2, "process": 1}.get(params.how, 0)
    if params.how == "double_fork":
        middle = os.fork()
        if middle == 0:
            try:
                os.setsid()
                if os.fork() == 0:
                    idle(pids, params.ignore_term)
            finally:
                os._exit(0)
        os.waitpid(middle, 0)
    elif params.how == "popen":
        code = CHILD + "\nwhile True:\n    signal.pause()\n"
        subprocess.Popen([sys.executable, "-c", code, str(pids), str(int(params.ignore_term))])
    elif params.how == "pool":
        pool = multiprocessing.Pool(2, initializer=ready, initargs=(pids, params.ignore_term))
        pool.apply_async(time.sleep, (600,))
    elif params.how == "process":
        multiprocessing.Process(target=idle, args=(pids, params.ignore_term)).start()
    while len(list(pids.glob("*.pid"))) < expected:
        time.sleep(0.01)
    (ctx.home / "started").write_text(str(os.getpid()))
    if params.then == "sleep":
        time.sleep(600)
    elif params.then == "stuck":
        sum(range(10**13))
    return Result(started=expected)
'''

WAIT_S = 120.0
"""Bounds a hang only: every wait below ends on an event long before."""


@pytest.fixture
def spawner(project):
    """The agent that starts processes; whatever it started is killed after the test."""
    # Long enough to start its processes on a busy machine; tests about the
    # timeout set a shorter one.
    project.add_agent("spawner", SPAWNER, 'timeout = "5s"\n')
    yield project
    for pid in started(project):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def agentops(project, *args: str, tracking: str, timeout: float = WAIT_S):
    """The real executable, as cron runs it, with the tracking forced."""
    env = cron_env(project.home, AGENTOPS_PROCESS_TRACKING=tracking)
    result = subprocess.run(
        [str(AGENTOPS), "--home", str(project.home), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    remember(f"agentops {' '.join(args)}", result.stdout, result.stderr)
    return result


def started(project) -> list[int]:
    """The pids of the processes the agent started (each wrote <pid>.pid when ready)."""
    return sorted(int(p.stem) for p in (project.home / "pids").glob("*.pid"))


def got_sigterm(project, pid: int) -> bool:
    return (project.home / "pids" / f"{pid}.TERM").exists()


def wait_for(condition, what: str) -> None:
    """Wait until ``condition()`` holds (an event another process causes), failing on a hang."""
    until = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > until:
            pytest.fail(f"waited {WAIT_S:.0f}s for {what}")
        time.sleep(0.02)


def gone(pid: int) -> bool:
    return not procs.alive(pid)  # a zombie has ended: only its parent has yet to reap it


def ended_events(project) -> list[dict]:
    return [e for e in project.events("spawner") if e["event"] == "run.processes_ended"]


def lock_is_free(project) -> bool:
    fd = os.open(project.home / "state" / "spawner.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def assert_next_run_is_not_blocked(project, tracking: str) -> None:
    following = agentops(project, "run", "spawner", tracking=tracking)
    assert following.returncode == 0, following.stderr
    assert lock_is_free(project)


HOWS = ["double_fork", "popen", "pool", "process"]


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.usefixtures("cgroups")
def test_what_an_agent_leaves_running_ends_with_the_run_in_its_cgroup(spawner, how):
    """Detached or not, every process gets SIGTERM as the run ends, and the log names it."""
    check_ends_with_the_run(spawner, how, "cgroup")


@pytest.mark.parametrize("how", HOWS)
def test_what_an_agent_leaves_running_ends_with_the_run_as_its_subreaper(spawner, how):
    """Without a cgroup the run is the subreaper: a double-forked grandchild is found too."""
    check_ends_with_the_run(spawner, how, "subreaper")


def check_ends_with_the_run(project, how: str, tracking: str) -> None:
    result = agentops(project, "run", "spawner", "-p", f"how={how}", tracking=tracking)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    event = ended_events(project)[0]
    assert event["tracking"] == tracking
    assert event["reason"] == "run_ended"
    assert event["signal"] == "SIGTERM"
    assert event["killed"] == 0
    named = {p["pid"]: p["command"] for p in event["processes"]}
    assert len(named) == (2 if how == "pool" else 1)
    for pid, command in named.items():
        assert gone(pid), f"{pid} outlived the run"
        assert got_sigterm(project, pid), "SIGTERM first: it may clean up"
        assert command
    # The pool's thread, left running, starts workers again until the process
    # exits: the keeper ends those then.
    for pid in started(project):
        wait_for(lambda pid=pid: gone(pid), f"{pid} to end")
    finished = next(e for e in project.events("spawner") if e["event"] == "run.finished")
    assert finished["status"] == "succeeded"
    assert_next_run_is_not_blocked(project, tracking)


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("tracking", ["cgroup", "subreaper"])
def test_at_the_timeout_its_processes_get_sigterm_and_the_next_run_is_not_blocked(
    spawner, tracking, how, request
):
    """Timed out while its processes run, detached or not: SIGTERM reaches them; the lock is free.

    A pool's thread starts workers again as they end: those it starts after
    the run are ended when the process exits (a second line may say so).
    """
    if tracking == "cgroup":
        request.getfixturevalue("cgroups")
    (spawner.home / "agents" / "spawner" / "agent.toml").write_text('timeout = "3s"\n')
    result = agentops(
        spawner, "run", "spawner", "-p", f"how={how}", "-p", "then=sleep", tracking=tracking
    )
    assert result.returncode == 1
    assert "timeout" in result.stderr
    event = ended_events(spawner)[0]
    assert (event["reason"], event["signal"], event["tracking"]) == ("timeout", "SIGTERM", tracking)
    named = [p["pid"] for p in event["processes"]]
    assert len(named) >= (2 if how == "pool" else 1)
    for pid in {*named, *started(spawner)}:
        wait_for(lambda pid=pid: gone(pid), f"{pid} to end")
    if how != "pool":  # a worker restarted before it could handle SIGTERM is ended by it
        assert named == started(spawner)
        assert got_sigterm(spawner, named[0])
    assert_next_run_is_not_blocked(spawner, tracking)


@pytest.mark.parametrize("tracking", ["cgroup", "subreaper", "group"])
def test_a_process_that_ignores_sigterm_is_killed_after_the_grace(spawner, tracking, request):
    """SIGTERM ignored: SIGKILL once the grace has passed, and the log says it was needed."""
    if tracking == "cgroup":
        request.getfixturevalue("cgroups")
    result = agentops(
        spawner, "run", "spawner", "-p", "how=popen", "-p", "ignore_term=true", tracking=tracking
    )
    assert result.returncode == 0, result.stderr
    [pid] = started(spawner)
    assert gone(pid)
    assert not got_sigterm(spawner, pid)
    [event] = ended_events(spawner)
    assert (event["signal"], event["killed"], event["count"]) == ("SIGTERM", 1, 1)
    assert_next_run_is_not_blocked(spawner, tracking)


@pytest.mark.parametrize(
    ("tracking", "how"),
    [("cgroup", "double_fork"), ("subreaper", "double_fork"), ("group", "popen")],
)
def test_no_process_survives_the_hard_deadline(spawner, tracking, how, request):
    """Stuck in C code with a child that ignores SIGTERM: the keeper kills it at the deadline."""
    if tracking == "cgroup":
        request.getfixturevalue("cgroups")
    (spawner.home / "agents" / "spawner" / "agent.toml").write_text('timeout = "2s"\n')
    args = ("-p", f"how={how}", "-p", "then=stuck", "-p", "ignore_term=true")
    begun = time.monotonic()
    result = agentops(spawner, "run", "spawner", *args, tracking=tracking)
    assert time.monotonic() - begun >= hard_deadline_s(2) - 1, "it was stuck until the deadline"
    assert result.returncode != 0
    [pid] = started(spawner)
    wait_for(lambda: gone(pid), f"{pid} to be killed by the keeper")
    [event] = ended_events(spawner)
    assert (event["reason"], event["signal"], event["tracking"]) == (
        "hard_deadline",
        "SIGKILL",
        tracking,
    )
    assert [p["pid"] for p in event["processes"]] == [pid]
    assert lock_is_free(spawner)
    following = agentops(spawner, "run", "spawner", tracking=tracking)
    assert following.returncode == 0, following.stderr
    state = json.loads((spawner.home / "state" / "spawner.json").read_text())
    assert state["errors"][-1]["category"] == "timeout"


@pytest.mark.parametrize(("tracking", "how"), [("cgroup", "double_fork"), ("group", "popen")])
def test_a_run_killed_with_sigkill_leaves_nothing_running(spawner, tracking, how, request):
    """kill -9 of the run: its keeper ends what its cgroup (or its process group) still holds."""
    if tracking == "cgroup":
        request.getfixturevalue("cgroups")
    (spawner.home / "agents" / "spawner" / "agent.toml").write_text('timeout = "10m"\n')
    env = cron_env(spawner.home, AGENTOPS_PROCESS_TRACKING=tracking)
    run = subprocess.Popen(
        [
            *(str(AGENTOPS), "--home", str(spawner.home), "run", "spawner"),
            *("-p", f"how={how}", "-p", "then=sleep", "-p", "ignore_term=true"),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: (spawner.home / "started").exists() or run.poll() is not None, "the start")
    [pid] = started(spawner)
    run.kill()
    run.wait()
    wait_for(lambda: gone(pid), f"{pid} to be ended by the keeper")
    said = lambda: [e for e in ended_events(spawner) if e["reason"] == "run_died"]  # noqa: E731
    wait_for(said, "the keeper's line in the log")
    [event] = said()
    assert [p["pid"] for p in event["processes"]] == [pid]
    assert lock_is_free(spawner)


@pytest.mark.usefixtures("cgroups")
def test_a_cgroup_an_earlier_run_left_is_emptied_and_no_other_agents(spawner, tmp_path):
    """The run and its keeper both killed: the agent's next run ends what their cgroup holds.

    The cgroups of an agent whose name starts the same, or of the same agent
    in another home, are left alone: they may belong to runs still going.
    """
    home = spawner.home.absolute()
    left = RunCgroup.create(f"{cgroup_prefix('spawner', home)}20261207T000000Z-dead00")[0]
    others = [
        RunCgroup.create(f"{cgroup_prefix('spawner-x', home)}20261207T000000Z-live00")[0],
        RunCgroup.create(f"{cgroup_prefix('spawner', tmp_path / 'elsewhere')}2026-live01")[0],
    ]
    assert left is not None
    assert None not in others
    sleepers = {}
    try:
        for cgroup in [left, *others]:
            sleeper = subprocess.Popen(["sleep", "600"])
            sleepers[cgroup.path] = sleeper
            (cgroup.path / "cgroup.procs").write_text(str(sleeper.pid))
        result = agentops(spawner, "run", "spawner", tracking="cgroup")
        assert (result.returncode, result.stderr) == (0, "")
        stale = sleepers[left.path]
        assert stale.wait(timeout=WAIT_S) == -signal.SIGKILL
        assert not left.path.exists(), "removed once empty"
        [event] = ended_events(spawner)
        assert event["reason"] == "left_by_an_earlier_run"
        assert [p["pid"] for p in event["processes"]] == [stale.pid]
        assert event["processes"][0]["command"] == "sleep 600"
        for cgroup in others:
            assert sleepers[cgroup.path].poll() is None, "another agent's: left alone"
    finally:
        for sleeper in sleepers.values():
            sleeper.kill()
            sleeper.wait()
        for cgroup in [left, *others]:
            cgroup.remove()


def test_a_process_that_escapes_every_tracking_does_not_keep_the_lock(spawner, tmp_path):
    """Process group only, a grandchild double-forked into its own session: it lives on, lockless.

    The forked copies of the run close their copy of the lock's descriptor
    at once: the lock is the run's alone, released when it ends.
    """
    # Output to files: the grandchild keeps a copy of the run's descriptors,
    # and a pipe would not reach its end while it lives.
    with (tmp_path / "out").open("w+") as out, (tmp_path / "err").open("w+") as err:
        run = subprocess.run(
            [str(AGENTOPS), "--home", str(spawner.home), "run", "spawner", "-p", "how=double_fork"],
            env=cron_env(spawner.home, AGENTOPS_PROCESS_TRACKING="group"),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            timeout=WAIT_S,
            check=False,
        )
        err.seek(0)
        assert (run.returncode, err.read()) == (0, "")
    [pid] = started(spawner)
    assert not gone(pid), "out of the run's group and descent: not found, as documented"
    lock = spawner.home / "state" / "spawner.lock"
    assert not any(fd.resolve() == lock for fd in Path(f"/proc/{pid}/fd").iterdir())
    assert lock_is_free(spawner)
    status = agentops(spawner, "status", "--json", tracking="group")
    assert json.loads(status.stdout)[0]["health"] == "ok"
    assert_next_run_is_not_blocked(spawner, "group")


def test_the_lock_is_not_inherited_by_a_program_the_agent_runs(project):
    """The lock's descriptor is close-on-exec: a program run with close_fds=False has no copy."""
    project.add_agent(
        "lister",
        """
import subprocess
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    fds: str

def run(params: Params, ctx: Context) -> Result:
    listed = subprocess.run(
        ["ls", "-l", "/proc/self/fd"], close_fds=False, capture_output=True, text=True
    )
    return Result(fds=listed.stdout)
""",
    )
    result = agentops(project, "run", "lister", tracking="subreaper")
    assert result.returncode == 0, result.stderr
    finished = next(e for e in project.events("lister") if e["event"] == "run.finished")
    assert "/proc/" in finished["result"]["fds"]
    assert "lister.lock" not in finished["result"]["fds"]


@pytest.mark.parametrize("tracking", ["cgroup", "subreaper", "group"])
def test_a_copy_of_the_run_the_agent_forks_ends_where_its_code_does(
    project, tmp_path, tracking, request
):
    """os.fork() in run(): the copy ends, the output closes at once, the run is logged once."""
    if tracking == "cgroup":
        request.getfixturevalue("cgroups")
    copy_pid = tmp_path / "copy.pid"
    project.add_agent(
        "forker",
        f"""
import os
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    ok: bool

def run(params: Params, ctx: Context) -> Result:
    copy = os.fork()
    if copy:  # the run notes its copy, which returns as the run does
        open({str(copy_pid)!r}, "w").write(str(copy))
    return Result(ok=True)
""",
    )
    # Its output is read to the end: a copy left running would hold it open past the bound.
    result = agentops(project, "run", "forker", tracking=tracking)
    assert result.returncode == 0, result.stderr
    assert gone(int(copy_pid.read_text()))
    events = [e["event"] for e in project.events("forker")]
    assert events.count("run.finished") == 1
    assert "state.save_failed" not in events
    assert project.state("forker")["last_run"]["status"] == "succeeded"


HOLD_THE_LOCK = """
import fcntl, os, signal, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
signal.pause()
"""


def test_status_says_blocked_while_a_process_that_is_no_run_holds_the_lock(spawner, tmp_path):
    """Another process keeps the lock: status says blocked and names it, health fails, runs skip."""
    assert agentops(spawner, "run", "spawner", tracking="subreaper").returncode == 0
    lock = spawner.home / "state" / "spawner.lock"
    ready = tmp_path / "holding"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLD_THE_LOCK,
            str(lock),
            str(ready),
        ]
    )
    try:
        wait_for(ready.exists, "the holder to take the lock")
        status = agentops(spawner, "status", "--json", tracking="subreaper")
        [row] = json.loads(status.stdout)
        assert row["health"] == "blocked"
        assert row["running"] is None
        assert f"pid {holder.pid} (" in row["why"]
        health = agentops(spawner, "health", tracking="subreaper")
        assert health.returncode == 1
        assert health.stdout.startswith("spawner: blocked: ")
        skipped = agentops(spawner, "run", "spawner", tracking="subreaper")
        assert (skipped.returncode, skipped.stderr) == (75, "")
        said = f"spawner: pid {holder.pid} holds {lock} and is not a run of it"
        lease = FileStore(lock.parent).lease("spawner", run_id="r")
        with pytest.raises(Overlap, match=re.escape(said)), lease:  # what a person is told
            pass
    finally:
        holder.kill()
        holder.wait()
    status = agentops(spawner, "status", "--json", tracking="subreaper")
    assert json.loads(status.stdout)[0]["health"] == "ok"


def test_an_unknown_tracking_is_a_configuration_error_in_one_line(spawner):
    """AGENTOPS_PROCESS_TRACKING must name a known means: 78, one line, nothing run."""
    result = agentops(spawner, "run", "spawner", tracking="containers")
    assert result.returncode == 78
    assert len(result.stderr.splitlines()) == 1
    assert "AGENTOPS_PROCESS_TRACKING" in result.stderr
    assert not (spawner.home / "started").exists()


def test_the_kernel_names_who_descends_from_whom():
    """/proc/<pid>/stat links a grandchild to its grandparent (who holds a lock: test_procs.py)."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.run(['sleep', '600'])"]
    )
    grandchild = 0
    try:
        wait_for(lambda: len(procs.descendants(child.pid)) == 1, "the grandchild")
        [grandchild] = procs.descendants(child.pid)
        assert grandchild in procs.descendants(os.getpid())
        assert procs.command_of(grandchild) == "sleep 600"
    finally:
        child.kill()
        child.wait()
        if grandchild:
            with contextlib.suppress(ProcessLookupError):
                os.kill(grandchild, signal.SIGKILL)
