"""Guardrails seen from cron: real `agentops run` subprocesses against a fault-injecting server.

Each test starts the real executable under cron's minimal environment and
asserts what an operator would notice: exit codes, the one line on stderr,
files the agent wrote, the state file and the JSON log. The HTTP faults come
from :mod:`faultserver` on loopback; waits are measured twice, from the
``retry.attempt`` log events and from the server's request arrival times.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from collections import Counter

import pytest

from agentops.model.ledger import Entry
from conftest import AGENTOPS, cron_env
from faultserver import FaultServer, error, garbage, http_date, ok, slow, too_many

FAST_RETRY = """
[retry]
attempts = {attempts}
initial = "0.05s"
max = "{max}"
"""

HTTP_AGENT = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    url: str
    timeout: float = 5.0

class Result(BaseModel):
    status: int
    body: dict

def run(params: Params, ctx: Context) -> Result:
    response = ctx.http.get(params.url, timeout=params.timeout)
    response.raise_for_status()
    return Result(status=response.status_code, body=response.json())
"""


@pytest.fixture
def server():
    with FaultServer() as fault_server:
        yield fault_server


def http_agent(project, name, url, *, attempts=3, max_wait="2s", timeout=5.0):
    """An agent that GETs ``url`` once per attempt (client ``timeout``), with fast retries."""
    toml = f'[params]\nurl = "{url}"\ntimeout = {timeout}\n'
    project.add_agent(name, HTTP_AGENT, toml + FAST_RETRY.format(attempts=attempts, max=max_wait))


def events(project, name, event):
    return [e for e in project.events(name) if e["event"] == event]


def one_line(result, project, name):
    """The single stderr line of a failed run, checked to be a single line naming the log."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"agentops: {name}: ")
    assert lines[0].endswith(f"(log: {project.log_path(name)})")
    assert result.stdout == ""
    return lines[0]


def spent(state):
    return sum(spend["usd"] for spend in state["budget"]["spends"])


# -- retries ---------------------------------------------------------------------------


def test_429_with_retry_after_is_retried_after_the_wait(project, run_agentops, server):
    """429 Retry-After: 1 then 200: exit 0, two requests at least a second apart."""
    url = server.script("/api", too_many(retry_after=1), ok({"n": 1}))
    http_agent(project, "api", url)
    result = run_agentops("run", "api")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert len(server.hits("/api")) == 2
    (gap,) = server.gaps("/api")
    assert 1.0 <= gap < 5.0
    (retry,) = events(project, "api", "retry.attempt")
    assert (retry["attempt"], retry["category"], retry["wait_s"]) == (1, "http_429", 1.0)
    assert project.state("api")["last_run"]["status"] == "succeeded"


@pytest.mark.parametrize(
    "retry_after",
    [pytest.param("30", id="seconds"), pytest.param(http_date(3600), id="http-date")],
)
def test_retry_after_is_capped_by_max(project, run_agentops, server, retry_after):
    """Retry-After far beyond [retry] max = 0.3s: the wait is 0.3s, not the server's."""
    url = server.script("/api", too_many(retry_after=retry_after), ok())
    http_agent(project, "api", url, max_wait="0.3s")
    result = run_agentops("run", "api")
    assert result.returncode == 0, result.stderr
    (retry,) = events(project, "api", "retry.attempt")
    assert (retry["category"], retry["wait_s"]) == ("http_429", 0.3)
    (gap,) = server.gaps("/api")
    assert 0.3 <= gap < 5.0


def test_retry_after_as_an_http_date_is_honoured(project, run_agentops, server):
    """Retry-After as an HTTP date three seconds ahead: the run waits until about then."""
    url = server.script("/api", too_many(retry_after=http_date(3)), ok())
    http_agent(project, "api", url, max_wait="10s")
    result = run_agentops("run", "api")
    assert result.returncode == 0, result.stderr
    (retry,) = events(project, "api", "retry.attempt")
    assert retry["category"] == "http_429"
    assert 1.0 <= retry["wait_s"] <= 3.0
    (gap,) = server.gaps("/api")
    assert retry["wait_s"] <= gap < retry["wait_s"] + 3.0


def test_503_with_retry_after_is_honoured(project, run_agentops, server):
    """503 with Retry-After: 1 is a transient 5xx: retried after the server's wait."""
    url = server.script("/api", error(503, retry_after=1), ok())
    http_agent(project, "api", url)
    assert run_agentops("run", "api").returncode == 0
    (retry,) = events(project, "api", "retry.attempt")
    assert (retry["category"], retry["wait_s"]) == ("http_5xx", 1.0)
    (gap,) = server.gaps("/api")
    assert gap >= 1.0


def test_persistent_500_fails_after_all_attempts(project, run_agentops, server):
    """500, 500, 500 with attempts = 3: exit 1 after exactly 3 requests, one line on stderr."""
    url = server.script("/api", error(500))
    http_agent(project, "api", url, attempts=3)
    result = run_agentops("run", "api")
    assert result.returncode == 1
    line = one_line(result, project, "api")
    assert "HTTPStatusError" in line
    assert "500 Internal Server Error" in line
    assert len(server.hits("/api")) == 3
    retries = events(project, "api", "retry.attempt")
    assert [(r["attempt"], r["category"]) for r in retries] == [(1, "http_5xx"), (2, "http_5xx")]
    assert all(gap >= 0.05 for gap in server.gaps("/api"))
    assert project.state("api")["last_run"]["status"] == "failed"


def test_404_is_not_retried(project, run_agentops, server):
    """404 is a client error: exit 1 after exactly one request, no retry."""
    url = server.script("/api", error(404), ok())
    http_agent(project, "api", url)
    result = run_agentops("run", "api")
    assert result.returncode == 1
    assert "404 Not Found" in one_line(result, project, "api")
    assert len(server.hits("/api")) == 1
    assert events(project, "api", "retry.attempt") == []


def test_body_that_is_not_json_is_not_retried(project, run_agentops, server):
    """A 200 whose body is not JSON: response.json() fails, exit 1 after one request."""
    url = server.script("/api", garbage(), ok())
    http_agent(project, "api", url)
    result = run_agentops("run", "api")
    assert result.returncode == 1
    assert "JSONDecodeError" in one_line(result, project, "api")
    assert len(server.hits("/api")) == 1
    assert events(project, "api", "retry.attempt") == []
    assert project.state("api")["errors"][-1]["category"] == "failed"


def test_slow_response_past_the_client_timeout_is_retried(project, run_agentops, server):
    """A reply slower than ctx.http's 0.2s timeout is a timeout: retried, then 200."""
    url = server.script("/api", slow(3.0), ok({"n": 2}))
    http_agent(project, "api", url, attempts=3, timeout=0.2)
    result = run_agentops("run", "api")
    assert (result.returncode, result.stderr) == (0, "")
    assert len(server.hits("/api")) == 2
    (gap,) = server.gaps("/api")
    assert gap < 2.0, "the client gave up after 0.2s; it did not wait for the 3s reply"
    (retry,) = events(project, "api", "retry.attempt")
    assert retry["category"] == "timeout"
    assert "ReadTimeout" in retry["error"]
    assert len(events(project, "api", "http.error")) == 1


def test_timeout_ends_a_long_retry_after_wait(project, run_agentops, server):
    """timeout = "1s", a 429 asking for 30s: the wait ends at the timeout (status timeout, 1)."""
    url = server.script("/api", too_many(retry_after=30), ok())
    http_agent(project, "api", url, max_wait="60s")
    agent_toml = project.home / "agents" / "api" / "agent.toml"
    agent_toml.write_text('timeout = "1s"\n' + agent_toml.read_text())
    started = time.monotonic()
    result = run_agentops("run", "api")
    assert time.monotonic() - started < 10, "the 30s wait was cut short"
    assert result.returncode == 1
    assert "passed the timeout of 1s" in one_line(result, project, "api")
    assert len(server.hits("/api")) == 1
    assert project.state("api")["last_run"]["status"] == "timeout"
    # The next run is not blocked, and meets the scripted success.
    assert (run_agentops("run", "api").returncode, len(server.hits("/api"))) == (0, 2)


def test_sigterm_ends_a_long_retry_after_wait(project, server):
    """SIGTERM while waiting out a 429's Retry-After: status interrupted, exit 1, one line."""
    url = server.script("/api", too_many(retry_after=30), ok())
    http_agent(project, "api", url, max_wait="60s")
    proc = subprocess.Popen(
        [str(AGENTOPS), "--home", str(project.home), "run", "api"],
        env=cron_env(project.home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not events(project, "api", "retry.attempt") and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 1
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "interrupted by SIGTERM" in lines[0]
    assert project.state("api")["last_run"]["status"] == "interrupted"
    assert "run.finished" in project.event_names("api")


HANGING_AGENT = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    url: str
    hang: bool = True

class Result(BaseModel):
    done: bool

def _effect(path, key):
    with path.open("a") as f:
        f.write(key + "\\n")
    return {"key": key}

def run(params: Params, ctx: Context) -> Result:
    ctx.action("effect", key="before", do=lambda: _effect(ctx.home / "effects.txt", "before"))
    if params.hang:
        ctx.http.get(params.url, timeout=60)  # a server that never answers in time
    ctx.action("effect", key="after", do=lambda: _effect(ctx.home / "effects.txt", "after"))
    return Result(done=True)
"""


def test_run_past_its_timeout_stops_and_keeps_committed_work(project, run_agentops, server):
    """timeout = "1s", an API hanging: status timeout, exit 1; the next run starts and finishes."""
    url = server.script("/hang", slow(20.0))
    toml = f'timeout = "1s"\n[params]\nurl = "{url}"\n' + FAST_RETRY.format(attempts=3, max="1s")
    project.add_agent("hang", HANGING_AGENT, toml)
    started = time.monotonic()
    result = run_agentops("run", "hang")
    assert time.monotonic() - started < 10
    assert result.returncode == 1
    assert "passed the timeout of 1s" in one_line(result, project, "hang")
    assert len(server.hits("/hang")) == 1, "a timeout of the run is not retried"
    state = project.state("hang")
    assert state["last_run"]["status"] == "timeout"
    assert Entry.parse(project.ledger("hang")["effect"]["before"]).status == "committed"
    assert not (project.home / "state" / "hang.journal").exists(), "folded into the state"

    again = run_agentops("run", "hang", "-p", "hang=false")
    assert (again.returncode, again.stderr) == (0, ""), "the lock was released"
    assert (project.home / "effects.txt").read_text().splitlines() == ["before", "after"]
    ledger = project.ledger("hang")["effect"]
    assert {key: Entry.parse(entry).status for key, entry in ledger.items()} == {
        "before": "committed",
        "after": "committed",
    }


# -- the circuit breaker ---------------------------------------------------------------


def test_circuit_opens_after_two_identical_failures_and_reset_closes_it(
    project, run_agentops, server
):
    """Always 500: fail, fail with CIRCUIT OPEN, then skipped without a request; reset reopens."""
    url = server.script("/api", error(500))
    http_agent(project, "api", url, attempts=1)

    first = run_agentops("run", "api")
    assert first.returncode == 1
    assert "CIRCUIT OPEN" not in one_line(first, project, "api")

    second = run_agentops("run", "api")
    assert second.returncode == 1
    line = one_line(second, project, "api")
    assert "CIRCUIT OPEN" in line
    assert "agentops reset api --circuit" in line
    assert len(server.hits("/api")) == 2
    assert project.state("api")["circuit"]["state"] == "open"

    third = run_agentops("run", "api")
    assert (third.returncode, third.stdout, third.stderr) == (75, "", "")
    assert len(server.hits("/api")) == 2, "an open circuit makes no request"
    assert events(project, "api", "run.skipped")[-1]["reason"] == "circuit_open"

    reset = run_agentops("reset", "api", "--circuit")
    assert reset.returncode == 0, reset.stderr
    assert "circuit closed" in reset.stdout
    assert project.state("api")["circuit"]["state"] == "closed"

    fourth = run_agentops("run", "api")
    assert fourth.returncode == 1
    assert "CIRCUIT OPEN" not in one_line(fourth, project, "api")
    assert len(server.hits("/api")) == 3


def test_two_different_failures_do_not_open_the_circuit(project, run_agentops, server):
    """500 then 404 then 500: no two consecutive failures alike, so every run calls the server."""
    url = server.script("/api", error(500), error(404), error(500), error(500))
    http_agent(project, "api", url, attempts=1)
    results = [run_agentops("run", "api") for _ in range(3)]
    assert [r.returncode for r in results] == [1, 1, 1]
    assert not any("CIRCUIT OPEN" in r.stderr for r in results)
    assert len(server.hits("/api")) == 3
    assert project.state("api")["circuit"]["state"] == "closed"

    fourth = run_agentops("run", "api")  # the same 500 twice in a row now
    assert "CIRCUIT OPEN" in one_line(fourth, project, "api")


def test_circuit_half_open_after_cooldown_reopens_or_closes(project, run_agentops, server):
    """cooldown = "1s": after it one trial run goes ahead; a failure reopens, a success closes."""
    url = server.script("/api", error(500))
    http_agent(project, "api", url, attempts=1)
    agent_toml = project.home / "agents" / "api" / "agent.toml"
    agent_toml.write_text(agent_toml.read_text() + '[circuit]\nfailures = 2\ncooldown = "1s"\n')
    assert [run_agentops("run", "api").returncode for _ in range(3)] == [1, 1, 75]
    assert len(server.hits("/api")) == 2

    time.sleep(1.2)
    trial = run_agentops("run", "api")
    assert trial.returncode == 1
    assert "CIRCUIT OPEN" in one_line(trial, project, "api"), "the failed trial reopens it"
    assert len(server.hits("/api")) == 3
    assert run_agentops("run", "api").returncode == 75

    time.sleep(1.2)
    server.script("/api", ok())
    assert run_agentops("run", "api").returncode == 0
    circuit = project.state("api")["circuit"]
    assert (circuit["state"], circuit["failures"]) == ("closed", 0)
    assert len(server.hits("/api")) == 4


# -- exactly once under kill -9 --------------------------------------------------------

EFFECTS_AGENT = """
import time
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    count: int = 200
    pause: float = 0.025

class Result(BaseModel):
    done: int

def _effect(path, key, pause):
    with path.open("a") as f:
        f.write(f"{key}\\n")
    time.sleep(pause)  # widen the window between the effect and its commit record
    return {"key": key}

def run(params: Params, ctx: Context) -> Result:
    path = ctx.home / "effects.txt"
    for i in range(params.count):
        ctx.action("effect", key=i, do=lambda i=i: _effect(path, i, params.pause))
    return Result(done=params.count)

def reconcile(name: str, key: str, ctx: Context) -> bool:
    path = ctx.home / "effects.txt"
    return path.exists() and key in path.read_text().split()
"""


@pytest.mark.slow
def test_actions_happen_exactly_once_under_random_sigkill(project):
    """kill -9 at random moments, rerun until done: each of 200 effects happened exactly once."""
    project.add_agent("effects", EFFECTS_AGENT)
    command = [str(AGENTOPS), "--home", str(project.home), "run", "effects"]
    rng = random.Random(20261122)
    codes, kills = [], 0
    # Past the kill window (or on a very slow machine) runs are left to finish.
    stop_killing = time.monotonic() + 30
    while not codes or codes[-1] != 0:
        assert len(codes) < 300, f"no run finished: {codes}"
        proc = subprocess.Popen(
            command, env=cron_env(project.home), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        if time.monotonic() < stop_killing:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=rng.uniform(0.25, 0.75))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
        _, stderr = proc.communicate(timeout=60)
        codes.append(proc.returncode)
        assert proc.returncode in (0, -signal.SIGKILL), stderr.decode()
    assert kills >= 8, f"the timings must actually interrupt runs: {codes}"

    written = Counter((project.home / "effects.txt").read_text().split())
    assert sorted(written, key=int) == [str(i) for i in range(200)]
    assert [key for key, n in written.items() if n != 1] == [], "no effect repeated"
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

SPENDING_AGENT = """
import time
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    usd: float = 0.3
    tokens: int = 0
    calls: int = 10
    pause: float = 0.0

class Result(BaseModel):
    calls: int

def run(params: Params, ctx: Context) -> Result:
    for _ in range(params.calls):
        ctx.spend(usd=params.usd, tokens=params.tokens)
        time.sleep(params.pause)
    return Result(calls=params.calls)
"""


def test_daily_budget_stops_the_run_then_skips_the_next(project, run_agentops):
    """Spends of 0.3 under a 1.0 daily cap: stop at 0.9 (75, one line); the next skips quietly."""
    project.add_agent("spender", SPENDING_AGENT, "[limits]\ncost_usd_per_day = 1.0\n")
    first = run_agentops("run", "spender")
    assert (first.returncode, first.stdout) == (75, "")
    assert first.stderr.count("\n") == 1
    assert "cost_usd_per_day 1 reached (0.9000 spent, 0.3 more asked)" in first.stderr
    state = project.state("spender")
    assert state["last_run"]["status"] == "budget_exceeded"
    assert spent(state) == pytest.approx(0.9)
    assert state["metrics"]["cost_usd"] == pytest.approx(0.9)
    assert len(events(project, "spender", "budget.spent")) == 3

    second = run_agentops("run", "spender")
    assert (second.returncode, second.stdout, second.stderr) == (75, "", "")
    assert spent(project.state("spender")) <= 1.0
    assert events(project, "spender", "run.skipped")[-1]["reason"] == "budget"
    assert len(events(project, "spender", "run.started")) == 1, "the second run never started"


def test_daily_budget_spent_to_the_cent_skips_the_next_run(project, run_agentops):
    """Spends of 0.25 fill cost_usd_per_day = 1.0 exactly: the next run is skipped (budget)."""
    project.add_agent("spender", SPENDING_AGENT, "[limits]\ncost_usd_per_day = 1.0\n")
    first = run_agentops("run", "spender", "-p", "usd=0.25")
    assert first.returncode == 75
    assert spent(project.state("spender")) == pytest.approx(1.0)
    second = run_agentops("run", "spender", "-p", "usd=0.25")
    assert (second.returncode, second.stdout, second.stderr) == (75, "", "")
    assert events(project, "spender", "run.skipped")[-1]["reason"] == "budget"
    assert spent(project.state("spender")) == pytest.approx(1.0)


def test_a_cap_filled_exactly_is_announced_once(project, run_agentops):
    """Four spends of 0.25 fill cost_usd_per_day = 1.0 and succeed: that run says so, once.

    The run exits 0 with one line naming the cap (a cap reached exactly stops
    nothing, but every run after it is skipped); the skips that follow are quiet.
    """
    project.add_agent("spender", SPENDING_AGENT, "[limits]\ncost_usd_per_day = 1.0\n")
    first = run_agentops("run", "spender", "-p", "usd=0.25", "-p", "calls=4")
    assert (first.returncode, first.stdout) == (0, "")
    assert first.stderr.count("\n") == 1
    assert "spender: succeeded; cost_usd_per_day 1 now spent: the next runs are skipped" in (
        first.stderr
    )
    assert project.state("spender")["last_run"]["status"] == "succeeded"
    (filled,) = events(project, "spender", "budget.filled")
    assert (filled["window"], filled["cap_usd"]) == ("cost_usd_per_day", 1.0)
    for _ in range(2):
        skipped = run_agentops("run", "spender", "-p", "usd=0.25", "-p", "calls=4")
        assert (skipped.returncode, skipped.stdout, skipped.stderr) == (75, "", "")
    assert len(events(project, "spender", "budget.filled")) == 1
    assert spent(project.state("spender")) == pytest.approx(1.0)


def test_a_cap_left_with_room_says_nothing(project, run_agentops):
    """Three spends of 0.25 under 1.0: a quiet success, no budget.filled."""
    project.add_agent("spender", SPENDING_AGENT, "[limits]\ncost_usd_per_day = 1.0\n")
    run = run_agentops("run", "spender", "-p", "usd=0.25", "-p", "calls=3")
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
    assert events(project, "spender", "budget.filled") == []


def test_racing_runs_never_spend_past_the_cap(project):
    """Five runs started at once, twice over: recorded spend stays within cost_usd_per_day."""
    project.add_agent("spender", SPENDING_AGENT, "[limits]\ncost_usd_per_day = 1.0\n")
    command = [str(AGENTOPS), "--home", str(project.home), "run", "spender", "-p", "pause=0.1"]
    codes, errors = [], []
    for _ in range(2):
        procs = [
            subprocess.Popen(
                command, env=cron_env(project.home), stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for _ in range(5)
        ]
        for proc in procs:
            out, err = proc.communicate(timeout=60)
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


def test_tokens_per_run_caps_one_run_only(project, run_agentops):
    """tokens_per_run = 100: a run stops at its third spend of 40; the next run may spend again."""
    project.add_agent("tokens", SPENDING_AGENT, "[limits]\ntokens_per_run = 100\n")
    first = run_agentops("run", "tokens", "-p", "usd=0", "-p", "tokens=40", "-p", "calls=3")
    assert first.returncode == 75
    assert "tokens_per_run 100 reached (80 used, 40 more asked)" in first.stderr
    state = project.state("tokens")
    assert state["last_run"]["status"] == "budget_exceeded"
    assert state["metrics"]["tokens"] == 80

    second = run_agentops("run", "tokens", "-p", "usd=0", "-p", "tokens=40", "-p", "calls=2")
    assert (second.returncode, second.stderr) == (0, "")
    state = project.state("tokens")
    assert state["last_run"]["status"] == "succeeded"
    assert state["metrics"]["tokens"] == 160
    assert [s["tokens"] for s in state["budget"]["spends"]] == [40, 40, 40, 40]


# -- per-action rate limit -------------------------------------------------------------

PUBLISHING_AGENT = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    items: int = 5

class Result(BaseModel):
    published: list[str]

def _publish(path, key, run_id):
    with path.open("a") as f:
        f.write(key + "\\n")
    return {"key": key, "run_id": run_id}

def run(params: Params, ctx: Context) -> Result:
    outbox = ctx.home / "outbox.txt"
    published = []
    for i in range(params.items):
        key = f"item-{i}"
        receipt = ctx.action(
            "publish", key=key, do=lambda key=key: _publish(outbox, key, ctx.run_id)
        )
        if receipt["run_id"] == ctx.run_id:
            published.append(key)
    return Result(published=published)
"""


def test_action_rate_limit_stops_the_run_and_keeps_committed_work(project, run_agentops):
    """publish = "3/hour", five items: both runs exit 75 with the same three published once."""
    project.add_agent("pub", PUBLISHING_AGENT, '[limits.actions]\npublish = "3/hour"\n')
    first = run_agentops("run", "pub")
    assert (first.returncode, first.stdout, first.stderr) == (75, "", "")
    state = project.state("pub")
    assert state["last_run"]["status"] == "rate_limited"
    committed = sorted(project.ledger("pub")["publish"])
    assert committed == ["item-0", "item-1", "item-2"]
    assert (project.home / "outbox.txt").read_text().splitlines() == committed

    second = run_agentops("run", "pub")
    assert (second.returncode, second.stdout, second.stderr) == (75, "", "")
    state = project.state("pub")
    assert state["last_run"]["status"] == "rate_limited"
    assert sorted(project.ledger("pub")["publish"]) == committed
    assert (project.home / "outbox.txt").read_text().splitlines() == committed, "none repeated"
    assert len(state["rate_limits"]["action:publish"]) == 3
    duplicates = [e for e in events(project, "pub", "action.skipped") if e["reason"] == "duplicate"]
    assert [e["key"] for e in duplicates] == committed


# -- rollback --------------------------------------------------------------------------

ROLLBACK_AGENT = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    accept: bool = False

class Result(BaseModel):
    keys: list[str]

def _append(path, line):
    with path.open("a") as f:
        f.write(line + "\\n")

def _do(ctx, key):
    _append(ctx.home / "effects.txt", f"do {key}")
    return {"key": key}

def run(params: Params, ctx: Context) -> Result:
    for key in ("a", "b", "c"):
        ctx.action(
            "write",
            key=key,
            do=lambda key=key: _do(ctx, key),
            undo=lambda result: _append(ctx.home / "undo.txt", f"undo {result['key']}"),
        )
    return Result(keys=["a", "b", "c"])

def validate(result: Result, ctx: Context) -> None:
    if not ctx.params.accept:
        raise ValueError("the editor said no")
"""


def test_rejected_output_undoes_actions_newest_first(project, run_agentops):
    """validate() raises: exit 65, undo c, b, a in that order, ledger undone; then redone."""
    project.add_agent("writer", ROLLBACK_AGENT)
    first = run_agentops("run", "writer")
    assert first.returncode == 65
    assert "output rejected by validate(): the editor said no" in one_line(first, project, "writer")
    assert (project.home / "undo.txt").read_text().splitlines() == ["undo c", "undo b", "undo a"]
    state = project.state("writer")
    assert state["last_run"]["status"] == "rejected"
    assert {
        k: Entry.parse(e).status for k, e in project.ledger("writer")["write"].items()
    } == dict.fromkeys("abc", "undone")
    assert [e["key"] for e in events(project, "writer", "action.undone")] == ["c", "b", "a"]

    second = run_agentops("run", "writer", "-p", "accept=true")
    assert (second.returncode, second.stderr) == (0, "")
    state = project.state("writer")
    assert {
        k: Entry.parse(e).status for k, e in project.ledger("writer")["write"].items()
    } == dict.fromkeys("abc", "committed")
    assert (project.home / "effects.txt").read_text().splitlines() == [
        "do a",
        "do b",
        "do c",
        "do a",
        "do b",
        "do c",
    ]
    assert len((project.home / "undo.txt").read_text().splitlines()) == 3, "nothing undone again"


RACING_ACTIONS = """
import threading
import time
from pathlib import Path
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    threads: int = 8

class Result(BaseModel):
    results: list[str]

def run(params: Params, ctx: Context) -> Result:
    barrier = threading.Barrier(params.threads)
    done = ctx.home / "done"

    def send() -> str:
        with done.open("a") as out:
            out.write("sent\\n")
        time.sleep(0.2)  # long enough for every other thread to ask meanwhile
        return "sent"

    def one(_: int) -> str:
        barrier.wait()
        return ctx.action("send", "k1", send)

    threads = []
    results = []
    for i in range(params.threads):
        thread = threading.Thread(target=lambda i=i: results.append(one(i)))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return Result(results=results)
"""


def test_threads_racing_for_one_action_run_it_once(project, run_agentops):
    """Eight threads ask for the same (name, key) at once: do() runs once, all get its result."""
    project.add_agent("racer", RACING_ACTIONS)
    result = run_agentops("run", "racer")
    assert (result.returncode, result.stderr) == (0, "")
    assert (project.home / "done").read_text() == "sent\n"
    assert project.events("racer")[-1]["result"] == {"results": ["sent"] * 8}
    names = project.event_names("racer")
    assert (names.count("action.committed"), names.count("action.skipped")) == (1, 7)


LEFT_RUNNING = """
import threading
import time
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    started: bool

def run(params: Params, ctx: Context) -> Result:
    def keep_going() -> None:
        i = 0
        while True:
            ctx.spend(usd=0.0001, tokens=1)
            ctx.action("note", f"k{i}", lambda: i)
            i += 1

    threading.Thread(target=keep_going, daemon=True).start()
    time.sleep(0.05)
    return Result(started=True)
"""


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


NESTED_ACTION = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    done: bool

def run(params: Params, ctx: Context) -> Result:
    ctx.action("send", "k1", lambda: ctx.action("send", "k1", lambda: "inner"))
    return Result(done=True)
"""


def test_an_action_asked_again_inside_its_own_do_stops_rather_than_waits(project, run_agentops):
    """do() asking for its own (name, key): the run stops with one line; it never hangs."""
    project.add_agent("nested", NESTED_ACTION, 'timeout = "30s"\n')
    result = run_agentops("run", "nested", timeout=20)
    assert result.returncode == 1
    assert "action send 'k1' is unresolved" in result.stderr


UNSAVABLE_STATE = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    deep: bool = False

class Result(BaseModel):
    ok: bool

def run(params: Params, ctx: Context) -> Result:
    if params.deep:
        nested = []
        for _ in range(100_000):
            nested = [nested]
        ctx.state["x"] = nested
    else:
        loop = {}
        loop["self"] = loop
        ctx.state["x"] = loop
    return Result(ok=True)
"""


@pytest.mark.parametrize("deep", ["false", "true"])
def test_a_state_that_cannot_be_json_fails_the_run_in_one_line(project, run_agentops, deep):
    """A cycle, or nesting past any parser, in ctx.state: the task failed (1), not agentops (70)."""
    project.add_agent("cyc", UNSAVABLE_STATE)
    result = run_agentops("run", "cyc", "-p", f"deep={deep}")
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert "ctx.state holds a value that is not JSON" in line
    assert project.state("cyc")["data"] == {}  # the failed run's state is not kept
