"""The hard deadline: a run's process ends by then, whatever its code is doing.

Signals cannot stop a run stuck inside C code, so these tests run real
processes stuck there (``sum(range(10**13))``) and check that the watchdog
ends them, that the lock is free, and that the next run records a timeout
saying where it was stuck.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
import time

from agentops._infra.fs import FileSystem
from agentops.run.deadline import hard_deadline_s, read_marker
from suite import AGENTOPS, STUBBORN, cron_env

HEADER = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    total: int
"""

QUICK = (
    HEADER
    + """
def run(params: Params, ctx: Context) -> Result:
    return Result(total=0)
"""
)

STUCK_IN_RUN = (
    HEADER
    + """
def run(params: Params, ctx: Context) -> Result:
    (ctx.home / "started").write_text("")
    return Result(total=sum(range(10**13)))  # C code: no signal handler runs in it
"""
)

STUCK_AT_IMPORT = "TOTAL = sum(range(10**13))  # stuck before run() is even found\n" + QUICK


TIMEOUT_S = 2.0
TIMEOUT = "2s"
"""The timeout of the stuck runs: many times what starting one takes, so each is stuck
where the test means it to be (in run(), importing its code) when time runs out."""


def line_of(code: str, text: str) -> int:
    return next(n for n, line in enumerate(code.splitlines(), 1) if text in line)


def agentops(project, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AGENTOPS), "--home", str(project.home), *args],
        env=cron_env(project.home),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def lock_is_free(project, name: str = "agent") -> bool:
    fd = os.open(project.home / "state" / f"{name}.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


# -- the watchdog, in real processes -------------------------------------------------


def watched(
    tmp_path, body: str, seconds: float, after: str = ""
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run ``body`` in a fresh Python under a HardDeadline of ``seconds``, then ``after``."""
    script = tmp_path / "watched.py"
    head = f"""\
import time
from datetime import UTC, datetime
from pathlib import Path
from agentops.run.deadline import HardDeadline
from agentops._infra.fs import FileSystem

path = Path({str(tmp_path / "watched.deadline")!r})
with HardDeadline(FileSystem(), path, run_id="r", started=datetime.now(UTC), seconds={seconds}):
"""
    script.write_text(head + textwrap.indent(body, "    ") + "\n" + after)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False
    )
    return result, str(script)


def test_the_watchdog_ends_a_process_stuck_in_c_code(tmp_path):
    """sum(range(10**13)) never sees a signal: the watchdog ends it and writes where it was."""
    started = time.monotonic()
    result, script = watched(tmp_path, "sum(range(10**13))", seconds=0.5)
    assert time.monotonic() - started < 120, "ended, not left to run for hours"
    assert result.returncode != 0
    marker = read_marker(FileSystem(), tmp_path / "watched.deadline")
    assert marker is not None
    assert marker.ended
    assert f'File "{script}", line ' in marker.last_words


def test_a_run_that_ends_in_time_disarms_the_watchdog(tmp_path):
    """Leaving the deadline in time cancels the watchdog: sleeping past it afterwards is fine."""
    after = "time.sleep(3.0)\nprint('still alive')\n"
    result, _ = watched(tmp_path, "time.sleep(0)", seconds=2.0, after=after)
    assert (result.returncode, result.stdout) == (0, "still alive\n"), result.stderr
    assert not (tmp_path / "watched.deadline").exists()


def test_a_run_stuck_in_c_code_is_ended_and_recorded_as_a_timeout(project):
    """Stuck in run(): ended at the deadline, lock free; a timeout the breaker counts."""
    project.add_agent("agent", STUCK_IN_RUN, f'timeout = "{TIMEOUT}"\n\n[circuit]\nfailures = 1\n')
    started = time.monotonic()
    stuck = agentops(project, "run", "agent")
    took = time.monotonic() - started
    assert (project.home / "started").exists(), "it was stuck in run()"
    assert hard_deadline_s(TIMEOUT_S) <= took < hard_deadline_s(TIMEOUT_S) + 120
    assert stuck.returncode != 0
    assert lock_is_free(project)
    project.add_agent("agent", QUICK, f'timeout = "{TIMEOUT}"\n\n[circuit]\nfailures = 1\n')
    following = agentops(project, "run", "agent")
    assert following.returncode == 75, "the timeout opened the circuit: this run is skipped"
    state = project.state("agent")
    where = f"stuck at agent.py:{line_of(STUCK_IN_RUN, 'sum(range')} in run()"
    assert state["last_run"]["status"] == "timeout"
    assert state["last_run"]["error"] == (
        f"agent: the run passed its hard deadline ({hard_deadline_s(TIMEOUT_S):g}s) and was ended, "
        + where
    )
    assert state["errors"][-1]["category"] == "timeout"
    assert state["metrics"]["failed"] == 1
    assert state["circuit"]["state"] == "open"
    assert state["circuit"]["failures"] == 1
    passed = next(e for e in project.events("agent") if e["event"] == "run.deadline_passed")
    assert passed["dead_run"] == state["last_run"]["run_id"]
    assert "agent.py" in passed["stack"]
    assert not (project.home / "state" / "agent.deadline").exists()


def test_a_run_ended_by_its_hard_deadline_prints_its_one_line_under_cron(project):
    """Cron mails what a job prints: the run the watchdog ended says so, in one line, once."""
    project.add_agent("agent", STUCK_IN_RUN, 'timeout = "0.5s"\n')
    stuck = agentops(project, "run", "agent")
    assert (stuck.returncode, stuck.stdout) == (1, "")
    log = project.log_path("agent")
    assert stuck.stderr == (
        f"agentops: agent: the run passed its hard deadline (5.5s) and was ended (log: {log})\n"
    )


def test_a_run_killed_or_ended_in_time_leaves_the_watcher_silent(project):
    """kill -9 is for the next run to tell, and a run that ends in time says nothing."""
    project.add_agent("agent", STUCK_IN_RUN, 'timeout = "30s"\n')
    proc = subprocess.Popen(
        [str(AGENTOPS), "--home", str(project.home), "run", "agent"],
        env=cron_env(project.home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60  # only bounds a hang
    while not (project.home / "started").exists():
        assert proc.poll() is None
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.kill()
    out, err = proc.communicate(timeout=60)  # EOF: the watcher has exited too
    assert (out, err) == ("", "")
    project.add_agent("agent", QUICK, 'timeout = "30s"\n')
    done = agentops(project, "run", "agent")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_a_run_stuck_while_importing_its_code_is_recorded_as_a_timeout(project):
    """Stuck importing agent.py, before the journal exists: still ended, and recorded as timeout."""
    project.add_agent("agent", STUCK_AT_IMPORT, f'timeout = "{TIMEOUT}"\n')
    started = time.monotonic()
    stuck = agentops(project, "run", "agent")
    assert time.monotonic() - started < hard_deadline_s(TIMEOUT_S) + 120
    assert stuck.returncode != 0
    assert not (project.home / "state" / "agent.journal").exists(), "it never got that far"
    assert lock_is_free(project)
    project.add_agent("agent", QUICK, f'timeout = "{TIMEOUT}"\n')
    assert agentops(project, "run", "agent").returncode == 0
    state = project.state("agent")
    [error] = state["errors"]
    assert error["category"] == "timeout"
    assert error["message"].endswith(
        f"stuck at agent.py:{line_of(STUCK_AT_IMPORT, 'TOTAL')} in <module>()"
    )
    assert state["metrics"]["failed"] == 1
    assert state["metrics"]["succeeded"] == 1
    assert state["rate_limits"] == {}, "it never passed admission, so it is not counted as a run"


def test_agent_code_that_swallows_every_stop_is_abandoned_and_recorded_as_a_timeout(project):
    """A bare except around a sleep loop: one line, the process exits; recorded as a timeout."""
    project.add_agent("agent", STUBBORN, f'timeout = "{TIMEOUT}"\n')
    started = time.monotonic()
    result = agentops(project, "run", "agent")
    assert time.monotonic() - started < 120, "abandoned, not left to loop"
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "run abandoned: timeout" in result.stderr
    assert lock_is_free(project)
    project.add_agent("agent", QUICK, f'timeout = "{TIMEOUT}"\n')
    assert agentops(project, "run", "agent").returncode == 0
    names = project.event_names("agent")
    assert "run.abandoned" in names
    assert "run.recovered" in names
    state = project.state("agent")
    [error] = state["errors"]
    assert error["category"] == "timeout", "not crashed: it counts for the breaker"
    assert state["metrics"]["failed"] == 1
