"""Guarded actions, their ledger and the in-run guards (steps, spend, requests), in-process.

A crash inside ``do()`` is real: the agent calls ``os._exit`` there, in a
subprocess, and the next run finds the intent without its commit.
"""

from __future__ import annotations

import httpx
import pytest

from agentops.model.ledger import Entry
from suite import agent_source

EFFECTS = """
import os
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    keys: str = "a,b,c"
    die_in: str = ""

class Result(BaseModel):
    results: list

def effect(ctx, key, die_in):
    with (ctx.home / "effects").open("a") as f:
        f.write(key + "\\n")
    if key == die_in:
        os._exit(9)  # the process dies inside do(), after the effect
    return {"key": key, "run": ctx.run_id}

def run(params: Params, ctx: Context) -> Result:
    results = [
        ctx.action("effect", key=k, do=lambda k=k: effect(ctx, k, params.die_in))
        for k in params.keys.split(",")
    ]
    return Result(results=results)
"""

RECONCILE = """

def reconcile(name, key, ctx):
    effects = (ctx.home / "effects").read_text().splitlines()
    return key in effects
"""


def effects(project):
    path = project.home / "effects"
    return path.read_text().splitlines() if path.exists() else []


def test_an_action_runs_once_and_returns_its_recorded_result(project, clock):
    """The second run skips committed actions and gets their recorded results."""
    project.add_agent("agent", EFFECTS)
    first = project.run(clock=clock)
    assert first.exit_code == 0
    second = project.run(clock=clock, overrides={"keys": "a,b,c,d"})
    assert second.exit_code == 0
    assert effects(project) == ["a", "b", "c", "d"]
    results = project.events("agent")[-1]["result"]["results"]
    assert [r["run"] for r in results] == [first.run_id] * 3 + [second.run_id]
    skipped = [e for e in project.events("agent") if e["event"] == "action.skipped"]
    assert [(e["key"], e["reason"]) for e in skipped] == [(k, "duplicate") for k in "abc"]
    ledger = project.ledger("agent")["effect"]
    assert set(ledger) == {"a", "b", "c", "d"}
    assert {Entry.parse(e).status for e in ledger.values()} == {"committed"}
    assert Entry.parse(ledger["d"]).result == {"key": "d", "run": second.run_id}
    assert not (project.home / "state" / "agent.journal").exists()


def test_crash_inside_do_is_reconciled(project, run_agentops):
    """Died after the effect, before the commit: reconcile() says it happened; no redo."""
    project.add_agent("agent", EFFECTS + RECONCILE)
    crashed = run_agentops("run", "agent", "-p", "die_in=b")
    assert crashed.returncode == 9
    assert (project.home / "state" / "agent.journal").exists()
    assert run_agentops("run", "agent").returncode == 0
    assert effects(project) == ["a", "b", "c"], "b is not done twice"
    assert Entry.parse(project.ledger("agent")["effect"]["b"]).status == "committed"
    names = project.event_names("agent")
    assert "run.recovered" in names
    assert "action.reconciled" in names
    assert project.state("agent")["errors"][0]["category"] == "crashed"


def test_without_reconcile_an_unknown_effect_stops_the_run_until_settled(project, run_agentops):
    """No reconcile(): the action is unresolved, never redone, until an operator settles it."""
    project.add_agent("agent", EFFECTS)
    assert run_agentops("run", "agent", "-p", "die_in=b").returncode == 9
    blocked = run_agentops("run", "agent")
    assert blocked.returncode == 1
    assert "action effect 'b' is unresolved" in blocked.stderr
    assert "Settle it: agentops ledger agent --action effect --resolve b --done" in blocked.stderr
    assert effects(project) == ["a", "b"]

    listing = run_agentops("ledger", "agent")
    assert listing.returncode == 0
    assert listing.stdout.splitlines()[1].split()[:3] == ["effect", "b", "unresolved"]

    settled = run_agentops("ledger", "agent", "--resolve", "b", "--done")
    assert settled.returncode == 0
    assert "marked done" in settled.stdout
    assert run_agentops("run", "agent").returncode == 0
    assert effects(project) == ["a", "b", "c"], "settled as done: b is not redone"


def test_redo_lets_the_action_run_again(project, run_agentops):
    """--redo marks an unresolved action as not done: the next run does it."""
    project.add_agent("agent", EFFECTS)
    assert run_agentops("run", "agent", "-p", "die_in=b").returncode == 9
    assert run_agentops("ledger", "agent", "--resolve", "b", "--redo").returncode == 0
    assert run_agentops("run", "agent").returncode == 0
    assert effects(project) == ["a", "b", "b", "c"]


def test_resolving_an_unknown_key_is_a_usage_error(project, invoke):
    """--resolve of a key the ledger does not hold: exit 2, one line."""
    project.add_agent("agent", EFFECTS)
    result = invoke("ledger", "agent", "--resolve", "zzz", "--done")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"agentops: agent has no ledger entry 'zzz' (log: {project.log_path('agent')})"
    ]


def test_failing_do_is_recorded_and_may_run_again(project, clock):
    """do() raising: the run fails, the entry is 'failed', and the next run retries it."""
    project.add_agent(
        "agent",
        """
        from pydantic import BaseModel
        from agentops import Context

        class Params(BaseModel):
            pass

        class Result(BaseModel):
            ok: bool

        def flaky(ctx):
            marker = ctx.home / "tried"
            if not marker.exists():
                marker.write_text("")
                raise PermissionError("not yet")
            return "done"

        def run(params: Params, ctx: Context) -> Result:
            ctx.action("flaky", key="k", do=lambda: flaky(ctx))
            return Result(ok=True)
        """,
    )
    assert project.run(clock=clock).exit_code == 1
    assert Entry.parse(project.ledger("agent")["flaky"]["k"]).status == "failed"
    assert project.run(clock=clock).exit_code == 0
    assert Entry.parse(project.ledger("agent")["flaky"]["k"]).status == "committed"


def test_dry_run_performs_no_action(project, clock):
    """In a dry run do() is not called, nothing is journaled or saved."""
    project.add_agent("agent", EFFECTS.replace("results: list", "results: list[None]"))
    outcome = project.run(clock=clock, dry_run=True)
    assert outcome.exit_code == 0
    assert effects(project) == []
    assert not project.state_path("agent").exists()
    assert not (project.home / "state" / "agent.journal").exists()
    skipped = [e for e in project.events("agent") if e["event"] == "action.skipped"]
    assert {e["reason"] for e in skipped} == {"dry_run"}
    assert all(e.get("dry_run") is True for e in project.events("agent"))


def test_action_rate_limit_slides(project, clock):
    """publish = "2/hour": two per window; the run stops (75) and the rest waits."""
    project.add_agent("agent", EFFECTS, '[limits.actions]\neffect = "2/hour"\n')
    outcome = project.run(clock=clock, overrides={"keys": "a,b,c,d"})
    assert (outcome.status, outcome.exit_code) == ("rate_limited", 75)
    assert effects(project) == ["a", "b"]
    assert project.state("agent")["metrics"]["stopped"] == 1
    clock.advance(minutes=59)
    assert project.run(clock=clock, overrides={"keys": "a,b,c,d"}).exit_code == 75
    assert effects(project) == ["a", "b"]
    clock.advance(minutes=2)
    assert project.run(clock=clock, overrides={"keys": "a,b,c,d"}).exit_code == 0
    assert effects(project) == ["a", "b", "c", "d"]


LOOP = agent_source(
    """
    for i in range(params.steps):
        ctx.step(f"step {i}")
        if params.usd or params.tokens:
            ctx.spend(usd=params.usd, tokens=params.tokens)
    return Result(steps=params.steps)
    """,
    params="""
    steps: int = 5
    usd: float = 0.0
    tokens: int = 0
    """,
    result="steps: int",
)


def test_hourly_budget_holds_across_runs_and_slides(project, clock):
    """cost_usd_per_hour = 1: spends stop at the cap; runs skip until the refused spend fits."""
    project.add_agent("agent", LOOP, "[limits]\ncost_usd_per_hour = 1.0\n")
    outcome = project.run(clock=clock, overrides={"usd": "0.4"})
    assert (outcome.status, outcome.exit_code) == ("budget_exceeded", 75)
    assert "cost_usd_per_hour 1 reached" in outcome.message
    state = project.state("agent")
    assert state["metrics"]["cost_usd"] == pytest.approx(0.8)
    assert state["budget"]["waiting_usd"] == 0.4
    clock.advance(minutes=30)
    skipped = project.run(clock=clock, overrides={"usd": "0.1", "steps": "1"})
    assert (skipped.status, skipped.exit_code) == ("skipped", 75)
    assert "no room for the 0.4 a run asked for" in skipped.message
    assert project.events("agent")[-1]["reason"] == "budget"
    assert project.events("agent")[-1]["retry_after_s"] == 30 * 60
    clock.advance(minutes=30, seconds=1)  # the first run's spends leave the window
    assert project.run(clock=clock, overrides={"usd": "0.5", "steps": "2"}).exit_code == 0
    assert project.state("agent")["budget"]["waiting_usd"] == 0.0
    clock.advance(minutes=1)
    full = project.run(clock=clock, overrides={"usd": "0.1", "steps": "1"})
    assert full.exit_code == 75, "exactly at the cap: no room for any spend"


def test_tokens_per_run_caps_each_run(project, clock):
    """tokens_per_run = 100: a run asking for more stops; the next run starts afresh."""
    project.add_agent("agent", LOOP, "[limits]\ntokens_per_run = 100\n")
    outcome = project.run(clock=clock, overrides={"tokens": "40"})
    assert outcome.exit_code == 75
    assert "tokens_per_run 100 reached (80 used, 40 more asked)" in outcome.message
    assert project.run(clock=clock, overrides={"tokens": "50", "steps": "2"}).exit_code == 0
    assert project.state("agent")["metrics"]["tokens"] == 180


def test_a_swallowed_guard_stop_still_ends_the_run(project, clock):
    """An agent that catches everything around ctx.spend still ends budget_exceeded."""
    project.add_agent(
        "agent",
        agent_source(
            """
            for _ in range(3):
                try:
                    ctx.spend(tokens=60)
                except BaseException:
                    pass
            return Result(ok=True)
            """,
            result="ok: bool",
        ),
        "[limits]\ntokens_per_run = 100\n",
    )
    outcome = project.run(clock=clock)
    assert (outcome.status, outcome.exit_code) == ("budget_exceeded", 75)


@pytest.mark.parametrize("usd", ["nan", "inf", "-1"])
def test_a_spend_that_is_not_a_finite_amount_fails_the_run(project, clock, usd):
    """ctx.spend(usd=nan) fails the run; the state file stays loadable."""
    project.add_agent("agent", LOOP)
    outcome = project.run(clock=clock, overrides={"usd": usd, "steps": "1"})
    assert outcome.exit_code == 1
    assert "finite amounts" in outcome.message
    assert project.run(clock=clock, overrides={"steps": "1"}).exit_code == 0
    assert project.state("agent")["metrics"]["cost_usd"] == 0.0


def test_requests_per_minute_waits_for_room(project, clock):
    """requests_per_minute = 2: the third request waits until the minute has room."""
    project.add_agent(
        "agent",
        agent_source(
            """
            responses = [ctx.http.get("http://feed.test/") for _ in range(3)]
            return Result(statuses=[r.status_code for r in responses])
            """,
            result="statuses: list[int]",
        ),
        "[limits]\nrequests_per_minute = 2\n",
    )
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        clock.advance(seconds=seconds)

    transport = httpx.MockTransport(lambda _request: httpx.Response(200, text="ok"))
    outcome = project.run(clock=clock, sleep=sleep, http_transport=transport)
    assert outcome.exit_code == 0
    assert waits == [pytest.approx(60.0)]
    assert project.state("agent")["rate_limits"]["requests"] == ["2026-11-22T12:01:00Z"]
    assert [e["event"] for e in project.events("agent")].count("http.request") == 3


# -- one action asked for by many threads, or by itself ------------------------------

RACING_ACTIONS = agent_source(
    """
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
    """,
    params="threads: int = 8",
    result="results: list[str]",
    imports="import threading, time",
)


def test_threads_racing_for_one_action_run_it_once(project, invoke):
    """Eight threads ask for the same (name, key) at once: do() runs once, all get its result."""
    project.add_agent("racer", RACING_ACTIONS)
    result = invoke("run", "racer")
    assert (result.exit_code, result.stderr) == (0, "")
    assert (project.home / "done").read_text() == "sent\n"
    assert project.events("racer")[-1]["result"] == {"results": ["sent"] * 8}
    names = project.event_names("racer")
    assert (names.count("action.committed"), names.count("action.skipped")) == (1, 7)


NESTED_ACTION = agent_source(
    """
    ctx.action("send", "k1", lambda: ctx.action("send", "k1", lambda: "inner"))
    return Result(done=True)
    """,
    result="done: bool",
)


def test_an_action_asked_again_inside_its_own_do_stops_rather_than_waits(project, invoke):
    """do() asking for its own (name, key): the run stops with one line; it never hangs."""
    project.add_agent("nested", NESTED_ACTION, 'timeout = "30s"\n')
    result = invoke("run", "nested")
    assert result.exit_code == 1
    assert "action send 'k1' is unresolved" in result.stderr


# -- results, names and stops inside do() --------------------------------------------------


ACTING = agent_source(
    """
    if params.mode == "spend-inside":
        ctx.action("ask", key="q1", do=lambda: ctx.spend(tokens=500))
    elif params.mode == "bytes":
        ctx.action("raw", key="r1", do=lambda: b"\\xff\\xfe")
    elif params.mode == "cycle":
        loop = {}
        loop["self"] = loop
        ctx.action("raw", key="c1", do=lambda: loop)
    elif params.mode == "int-name":
        ctx.action(7, key=1, do=lambda: (ctx.home / "sevens").open("a").write("7\\n"))
    return Result(ok=True)
    """,
    params="mode: str",
    result="ok: bool",
)


def test_a_guard_stop_inside_do_means_not_done(project, clock):
    """A spend refused inside do() aborts the action: no false 'unresolved' later."""
    project.add_agent("agent", ACTING, "[limits]\ntokens_per_run = 100\n")
    outcome = project.run(clock=clock, overrides={"mode": "spend-inside"})
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert "a single spend of 500 tokens is more than tokens_per_run 100" in outcome.message
    entry = Entry.parse(project.ledger("agent")["ask"]["q1"])
    assert entry.status == "failed"


@pytest.mark.parametrize("mode", ["bytes", "cycle"])
def test_a_result_that_is_not_json_still_commits(project, clock, mode):
    """do() ran, so its commit is written even if its result cannot be JSON."""
    project.add_agent("agent", ACTING)
    assert project.run(clock=clock, overrides={"mode": mode}).exit_code == 0
    [entries] = project.ledger("agent")["raw"].values()
    assert Entry.parse(entries).status == "committed"
    assert "action.result_not_json" in project.event_names("agent")


def test_action_names_and_keys_are_text(project, clock):
    """ctx.action(7, key=1) is the same action after a reload: done once."""
    project.add_agent("agent", ACTING)
    for _ in range(2):
        assert project.run(clock=clock, overrides={"mode": "int-name"}).exit_code == 0
    assert (project.home / "sevens").read_text() == "7\n"


def test_rate_limit_lists_stay_bounded(project, clock):
    """Commits of an action with no rate limit leave no growing list in the state."""
    project.add_agent(
        "agent",
        ACTING.replace(
            'if params.mode == "spend-inside":',
            'if params.mode == "many":\n'
            '        [ctx.action("note", key=str(i), do=lambda: None) for i in range(50)]\n'
            '    elif params.mode == "spend-inside":',
        ),
    )
    assert project.run(clock=clock, overrides={"mode": "many"}).exit_code == 0
    assert "action:note" not in project.state("agent")["rate_limits"]
