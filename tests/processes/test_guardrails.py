"""Guardrails where processes are the point: a signal, kill -9, runs racing from many processes.

Each test starts the real executable under cron's minimal environment and
asserts what an operator would notice: exit codes, the one line on stderr,
files the agent wrote, the state file and the JSON log. Every moment a test
acts on a process (a signal, a kill) is an event it waited for (a log line,
a line in a file, processes that exited), never a length of time.
"""

from __future__ import annotations

import random
import signal
import subprocess
from collections import Counter

import pytest

from agentops.model.ledger import Entry
from faultserver import ok, too_many
from suite import (
    AGENTOPS,
    SPENDING_AGENT,
    add_http_agent,
    agent_source,
    cron_env,
    eventually,
    logged,
)


def start(project, *args: str) -> subprocess.Popen[bytes]:
    """``agentops run ARGS`` as cron starts it, in the background."""
    return subprocess.Popen(
        [str(AGENTOPS), "--home", str(project.home), "run", *args],
        env=cron_env(project.home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def spent(state):
    return sum(spend["usd"] for spend in state["budget"]["spends"])


# -- signals ---------------------------------------------------------------------------


def test_sigterm_ends_a_long_retry_after_wait(project, fault_server):
    """SIGTERM while waiting out a 429's Retry-After: status interrupted, exit 1, one line."""
    url = fault_server.script("/api", too_many(retry_after=600), ok())
    add_http_agent(project, "api", url, max_wait="1h")
    proc = start(project, "api")
    assert eventually(lambda: logged(project, "api", "retry.attempt")), "the run never waited"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1
    lines = stderr.decode().splitlines()
    assert len(lines) == 1, stderr
    assert "interrupted by SIGTERM" in lines[0]
    assert project.state("api")["last_run"]["status"] == "interrupted"
    assert "run.finished" in project.event_names("api")


# -- exactly once under kill -9 --------------------------------------------------------

EFFECTS_AGENT = """
import time
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    count: int = 200
    pause: float = 0.025
    hold: int = -1

class Result(BaseModel):
    done: int

def _effect(path, key, pause, hold):
    with path.open("a") as f:
        f.write(f"{key}\\n")
    time.sleep(600 if key == hold else pause)  # the window between the effect and its commit
    return {"key": key}

def run(params: Params, ctx: Context) -> Result:
    path = ctx.home / "effects.txt"
    for i in range(params.count):
        ctx.action("effect", key=i, do=lambda i=i: _effect(path, i, params.pause, params.hold))
    return Result(done=params.count)

def reconcile(name: str, key: str, ctx: Context) -> bool:
    path = ctx.home / "effects.txt"
    return path.exists() and key in path.read_text().split()
"""


def test_actions_happen_exactly_once_under_random_sigkill(project):
    """kill -9 at random moments, rerun until done: each of 200 effects happened exactly once.

    The moments are effects: a run is killed once the file holds its target
    count of lines, whatever time that takes. The first run is killed inside
    ``do()`` (it holds its 20th effect open), so one kill surely lands between
    an effect and its record; the targets after it are random.
    """
    project.add_agent("effects", EFFECTS_AGENT)
    effects = project.home / "effects.txt"

    def written() -> int:
        return effects.read_text().count("\n") if effects.exists() else 0

    rng = random.Random(20261122)
    targets, target = [], 20
    while (target := target + rng.randint(5, 20)) < 200:
        targets.append(target)
    codes, kills = [], 0
    for target, args in [(20, ("-p", "hold=19")), *((t, ()) for t in targets), (None, ())]:
        proc = start(project, "effects", *args)
        if target is not None:
            assert eventually(lambda t=target, p=proc: written() >= t or p.poll() is not None)
            if proc.poll() is None:
                proc.kill()
                kills += 1
        _, stderr = proc.communicate(timeout=120)
        codes.append(proc.returncode)
        assert proc.returncode in (0, -signal.SIGKILL), stderr.decode()
    assert codes[-1] == 0, codes
    assert kills >= 8, f"the kills must actually interrupt runs: {codes}"

    counted = Counter(effects.read_text().split())
    assert sorted(counted, key=int) == [str(i) for i in range(200)]
    assert [key for key, n in counted.items() if n != 1] == [], "no effect repeated"
    state = project.state("effects")
    ledger = project.ledger("effects")["effect"]
    assert len(ledger) == 200
    assert {Entry.parse(entry).status for entry in ledger.values()} == {"committed"}
    assert state["last_run"]["status"] == "succeeded"
    assert not (project.home / "state" / "effects.journal").exists()
    names = project.event_names("effects")
    assert "run.recovered" in names
    assert "action.reconciled" in names, "some kill landed between an effect and its commit"


# -- budgets ---------------------------------------------------------------------------


def test_racing_runs_never_spend_past_the_cap(project):
    """Five runs started at once, twice over: recorded spend stays within cost_usd_per_day.

    In the first five, the run that takes the lock holds it (at a gate) until
    the four others have given up, so some surely lose the race for the lock;
    the second five race freely against the spent budget.
    """
    project.add_agent("spender", SPENDING_AGENT, "[limits]\ncost_usd_per_day = 1.0\n")
    gate = project.home / "gate"
    codes, errors = [], []
    for args in (("-p", f"gate={gate}"), ()):
        procs = [start(project, "spender", "-p", "pause=0.1", *args) for _ in range(5)]
        if args:
            assert eventually(lambda procs=procs: sum(p.poll() is not None for p in procs) >= 4)
            gate.touch()
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert out == b""
            errors.append(err)
            codes.append(proc.returncode)
    assert codes == [75] * 10
    loud = [err for err in errors if err]
    assert len(loud) == 1, "the run the budget stopped says so once; the skips are silent"
    assert b"cost_usd_per_day 1 reached" in loud[0]
    state = project.state("spender")
    assert spent(state) <= 1.0 + 1e-9
    assert spent(state) == pytest.approx(0.9)
    assert len({spend["run_id"] for spend in state["budget"]["spends"]}) == 1
    # Each run either lost the race for the lock, was refused by the budget, or ran.
    by_run: dict[str, set[str]] = {}
    for event in project.events("spender"):
        if event["event"] == "run.skipped":
            by_run.setdefault(event["run_id"], set()).add(event["reason"])
        elif event["event"] == "run.started":
            by_run.setdefault(event["run_id"], set()).add("started")
    assert len(by_run) == 10
    assert all(len(outcomes) == 1 for outcomes in by_run.values())
    outcomes = Counter(outcome for found in by_run.values() for outcome in found)
    assert outcomes["overlap"] >= 1, "runs that did not get the lock were skipped"
    assert set(outcomes) <= {"overlap", "budget", "started"}


# -- threads that outlive a run -------------------------------------------------------

LEFT_RUNNING = agent_source(
    """
    def keep_going() -> None:
        i = 0
        while True:
            ctx.spend(usd=0.0001, tokens=1)
            ctx.action("note", f"k{i}", lambda: i)
            i += 1

    threading.Thread(target=keep_going, daemon=True).start()
    time.sleep(0.05)
    return Result(started=True)
    """,
    result="started: bool",
    imports="import threading, time",
)


def test_a_thread_left_acting_after_the_run_cannot_spoil_the_next_runs(project, run_agentops):
    """A daemon thread spending and acting past run(): refused once the run ends.

    Nothing is written into a journal the run committed: every later run works
    and prints nothing.
    """
    project.add_agent("leaky", LEFT_RUNNING)
    for _ in range(10):
        result = run_agentops("run", "leaky")
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
        assert not (project.home / "state" / "leaky.journal").exists()
        assert not list((project.home / "state").glob("leaky.journal*"))
    state = project.state("leaky")
    assert state["metrics"]["runs"] == 10
