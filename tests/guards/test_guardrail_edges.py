"""Edges of the guardrails that a second adversarial review found, each pinned.

Crash recovery that must not lose or repeat a commit, spends that are not
amounts, confidences that are not numbers, and operator commands that must
always answer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from agentops.guards.failure import classify
from agentops.model.ledger import Entry
from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import approve_held
from suite import AGENTOPS, REPO, cron_env


def write_journal(project, name, *records):
    """A journal as a run that died would leave it."""
    lines = [
        json.dumps(
            {
                "run_id": "20261122T100000Z-dead00",
                **({"agent": name} if r["op"] == "begin" else {}),
                **r,
            }
        )
        for r in records
    ]
    path = project.home / "state" / f"{name}.journal"
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


BEGIN = {"op": "begin", "at": "2026-11-22T10:00:00Z", "kind": "run"}


def intent(key, action="effect", second=1):
    return {"op": "intent", "at": f"2026-11-22T10:00:0{second}Z", "action": action, "key": key}


def commit(key, action="effect", second=2):
    return {**intent(key, action, second), "op": "commit", "result": {"key": key}}


# -- crash recovery ------------------------------------------------------------------


def test_publisher_recovers_a_crash_inside_a_write(project, run_agentops):
    """Killed after writing post-01 but before its commit: reconciled, never rewritten."""
    shutil.copytree(REPO / "agents" / "publisher", project.home / "agents" / "publisher")
    shutil.rmtree(project.home / "agents" / "publisher" / "outbox", ignore_errors=True)
    outbox = project.home / "agents" / "publisher" / "outbox"
    outbox.mkdir()
    (outbox / "post-01.md").write_text("written by the run that died\n")
    write_journal(project, "publisher", BEGIN, intent("post-01", "publish"))
    for _ in range(2):
        result = run_agentops("run", "publisher")
        assert (result.returncode, result.stderr) == (0, "")
    assert (outbox / "post-01.md").read_text() == "written by the run that died\n"
    assert len(list(outbox.glob("*.md"))) == 12
    assert project.events("publisher")[-1]["result"] == {"published": [], "already": 12}


RECONCILED = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    results: list

def run(params: Params, ctx: Context) -> Result:
    return Result(results=[ctx.action("effect", key=k, do=lambda: "fresh") for k in "ab"])

def reconcile(name, key, ctx):
    return {"found": key} if key == "a" else True
"""


def test_reconcile_can_return_the_result_it_found(project, clock):
    """reconcile() returning a receipt: ctx.action returns it; returning True: None."""
    project.add_agent("agent", RECONCILED)
    write_journal(project, "agent", BEGIN, intent("a"), intent("b", second=2))
    assert project.run(clock=clock).exit_code == 0
    assert project.events("agent")[-1]["result"] == {"results": [{"found": "a"}, None]}


def test_a_damaged_journal_is_left_alone_and_nothing_is_redone(project, clock):
    """A garbled line before other records: exit 74, the journal kept, no commit lost."""
    project.add_agent("agent", RECONCILED)
    path = write_journal(project, "agent", BEGIN, commit("a"), commit("b", second=3))
    damaged = path.read_bytes().replace(b'{"run_id"', b'#"run_id"', 2)
    path.write_bytes(damaged)
    outcome = project.run(clock=clock)
    assert outcome.exit_code == 74
    assert "unreadable journal (line 1 is not a journal record: not JSON)" in outcome.message
    assert path.read_bytes() == damaged


def test_a_journal_of_another_agent_is_refused(project, clock):
    """A journal copied from another agent is not folded in: exit 74."""
    project.add_agent("agent", RECONCILED)
    write_journal(project, "agent", {**BEGIN, "agent": "other"}, commit("a"))
    outcome = project.run(clock=clock)
    assert outcome.exit_code == 74
    assert "journal of agent 'other'" in outcome.message


def test_the_ledger_command_shows_a_crashed_runs_actions(project, run_agentops):
    """After a kill, `agentops ledger` lists the unresolved action from the journal."""
    project.add_agent("agent", RECONCILED)
    write_journal(project, "agent", BEGIN, commit("a"), intent("b", second=3))
    listing = run_agentops("ledger", "agent")
    assert listing.returncode == 0
    assert listing.stdout.splitlines()[1].split()[:3] == ["effect", "b", "unresolved"]
    every = json.loads(run_agentops("ledger", "agent", "--all", "--json").stdout)
    assert {(r["key"], r["status"]) for r in every} == {("a", "committed"), ("b", "unresolved")}
    assert (project.home / "state" / "agent.journal").exists(), "looking changes nothing"


def test_a_dry_run_after_a_crash_reconciles_in_memory_and_saves_nothing(project, clock):
    """A dry run sees what a real run would, and leaves the journal for the real one."""
    project.add_agent("agent", RECONCILED)
    path = write_journal(project, "agent", BEGIN, intent("a"))
    assert project.run(clock=clock, dry_run=True).exit_code == 0
    assert path.exists()
    assert not project.state_path("agent").exists()


def test_settle_command_is_quoted_for_the_shell(project, run_agentops):
    """A key with spaces or shell characters is quoted in the line that says how to settle it."""
    project.add_agent(
        "agent",
        """
        from pydantic import BaseModel
        class Params(BaseModel):
            pass
        class Result(BaseModel):
            ok: bool
        def run(params: Params, ctx) -> Result:
            ctx.action("post", key="post 1; rm -rf ~", do=lambda: None)
            return Result(ok=True)
        """,
    )
    write_journal(project, "agent", BEGIN, intent("post 1; rm -rf ~", "post"))
    result = run_agentops("run", "agent")
    assert result.returncode == 1
    assert (
        "agentops ledger agent --action post --resolve 'post 1; rm -rf ~' --done" in result.stderr
    )


# -- actions and spends ---------------------------------------------------------------

ACTING = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    mode: str

class Result(BaseModel):
    ok: bool

def run(params: Params, ctx: Context) -> Result:
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
"""


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


SPENDER = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    usd: float

class Result(BaseModel):
    ok: bool

def run(params: Params, ctx: Context) -> Result:
    ctx.spend(usd=params.usd)
    return Result(ok=True)
"""


def test_a_spend_larger_than_the_cap_fails_loudly_and_does_not_block(project, clock):
    """One spend above the whole cap: exit 1 saying so; smaller spends still run."""
    project.add_agent("agent", SPENDER, "[limits]\ncost_usd_per_hour = 1.0\n")
    outcome = project.run(clock=clock, overrides={"usd": "2"})
    assert outcome.exit_code == 1
    assert "a single spend of 2 is more than cost_usd_per_hour 1" in outcome.message
    assert project.state("agent")["budget"]["waiting_usd"] == 0.0
    assert project.run(clock=clock, overrides={"usd": "0.1"}).exit_code == 0


@pytest.mark.parametrize("usd", ["1e10", "1e308"])
def test_implausible_spends_are_refused(project, clock, usd):
    """Amounts that would overflow the totals fail the run; the state stays loadable."""
    project.add_agent("agent", SPENDER)
    assert project.run(clock=clock, overrides={"usd": usd}).exit_code == 1
    assert project.run(clock=clock, overrides={"usd": "0.5"}).exit_code == 0


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


# -- retries ----------------------------------------------------------------------------


def test_a_negative_retry_after_is_not_a_crash(project, clock):
    """TransientError(retry_after_s=-5) is retried at once, not an internal error."""
    project.add_agent(
        "agent",
        """
        from pydantic import BaseModel
        from agentops.errors import TransientError

        class Params(BaseModel):
            pass

        class Result(BaseModel):
            ok: bool

        def run(params: Params, ctx) -> Result:
            tries = ctx.home / "tries"
            tries.write_text(tries.read_text() + "x" if tries.exists() else "x")
            if len(tries.read_text()) < 2:
                raise TransientError("busy", retry_after_s=-5)
            return Result(ok=True)
        """,
    )
    slept = []
    outcome = project.run(clock=clock, sleep=slept.append)
    assert outcome.exit_code == 0
    assert slept == [0.0]


@pytest.mark.parametrize(
    ("make", "category", "transient"),
    [
        (
            "import urllib.error\nraise urllib.error.URLError(ConnectionRefusedError(1, 'no'))",
            "connection",
            True,
        ),
        (
            "import urllib.error\nraise urllib.error.HTTPError('http://x', 503, 'busy', {}, None)",
            "http_5xx",
            True,
        ),
        (
            "import urllib.error\nraise urllib.error.HTTPError('http://x', 408, 'slow', {}, None)",
            "timeout",
            True,
        ),
        (
            "import urllib.error\nraise urllib.error.HTTPError('http://x', 404, 'gone', {}, None)",
            "http_4xx",
            False,
        ),
        ("import httpx\nhttpx.get('example.com/no-scheme')", "error", False),
    ],
    ids=["urllib refused", "urllib 503", "urllib 408", "urllib 404", "httpx no scheme"],
)
def test_more_failures_are_classified(make, category, transient):
    """urllib's errors and a URL without a scheme are classified like their httpx kin."""
    try:
        exec(make, {})  # noqa: S102 - fixed test snippets
    except Exception as exc:  # noqa: BLE001 - the exception is what is tested
        failure = classify(exc)
    assert (failure.category, failure.transient) == (category, transient)


def test_the_same_api_failing_on_different_paths_is_one_failure():
    """A fingerprint ignores the URL and ids, so a failing API trips the breaker."""
    import httpx  # noqa: PLC0415

    def failure(path):
        request = httpx.Request("GET", f"http://127.0.0.1:8731/items/{path}")
        response = httpx.Response(503, request=request)
        try:
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            return classify(exc)
        raise AssertionError

    assert failure("rec_8c1f2a").fingerprint == failure("abc-def").fingerprint


# -- review -----------------------------------------------------------------------------

DRAFTER = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    confidence: str | None = None

class Result(BaseModel):
    confidence: float | str | None

def run(params: Params, ctx: Context) -> Result:
    ctx.state["drafted"] = True
    try:
        confidence = float(params.confidence)
    except (TypeError, ValueError):
        confidence = params.confidence  # "high": not a number at all
    return Result(confidence=confidence)

def apply(result: Result, ctx: Context) -> None:
    ctx.state["applied"] = ctx.state.get("applied", 0) + 1
"""


@pytest.mark.parametrize("confidence", ["nan", "1.5", "-0.1", "high"])
def test_a_confidence_that_is_not_a_probability_is_rejected(project, clock, confidence):
    """NaN, out of range or text: the output is rejected (65), never applied."""
    project.add_agent("agent", DRAFTER)
    outcome = project.run(clock=clock, overrides={"confidence": confidence})
    assert outcome.exit_code == 65
    expected = (
        "NaN or an infinity" if confidence == "nan" else "confidence must be a number from 0 to 1"
    )
    assert expected in outcome.message
    assert "applied" not in project.state("agent")["data"]


def test_what_apply_keeps_in_ctx_state_is_saved(project, clock):
    """apply() writing ctx.state: kept after an automatic apply and after an approval."""
    project.add_agent("agent", DRAFTER)
    assert project.run(clock=clock, overrides={"confidence": "0.99"}).exit_code == 0
    assert project.state("agent")["data"] == {"drafted": True, "applied": 1}
    held = project.run(clock=clock, overrides={"confidence": "0.6"})
    assert held.status == "held"
    approved = approve_held(AgentopsProject(project.home), "agent", held.run_id, environ={})
    assert approved.exit_code == 0
    assert project.state("agent")["data"] == {"drafted": True, "applied": 2}


def test_approving_without_apply_is_a_configuration_error(project, clock):
    """If apply() is gone, approving applies nothing: exit 78, the result stays held."""
    project.add_agent("agent", DRAFTER)
    held = project.run(clock=clock, overrides={"confidence": "0.6"})
    project.add_agent("agent", DRAFTER.split("def apply", maxsplit=1)[0])
    approved = approve_held(AgentopsProject(project.home), "agent", held.run_id, environ={})
    assert approved.exit_code == 78
    assert "no apply()" in approved.message
    assert len(project.state("agent")["review"]) == 1


def test_review_list_survives_a_broken_agent(project, invoke):
    """One agent with broken TOML is reported; the others' held results are listed."""
    project.add_agent("drafter", DRAFTER)
    assert invoke("run", "drafter", "-p", "confidence=0.6").exit_code == 0
    project.add_agent("broken", toml="nonsense = [\n")
    result = invoke("review", "list", "--json")
    assert result.exit_code == 78
    assert "bad TOML" in result.stderr
    assert [row["agent"] for row in json.loads(result.stdout)] == ["drafter"]


# -- operator commands -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--resolve", "a", "--done", "--redo"], "needs one of --done or --redo"),
        (["--action", "effect"], "go with --resolve KEY"),
        (["--resolve", "a", "--redo"], "'a' is committed"),
    ],
)
def test_ledger_refuses_ambiguous_or_dangerous_settlements(project, run_agentops, args, expected):
    """Both --done and --redo, --action alone, --redo of a committed action: exit 2."""
    project.add_agent("agent", RECONCILED)
    assert run_agentops("run", "agent").returncode == 0
    result = run_agentops("ledger", "agent", *args)
    assert result.returncode == 2
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1


def test_operator_commands_say_why_when_the_agent_is_busy(project):
    """reset while a run holds the lock: exit 75 with one line, not silence."""
    project.add_agent(
        "agent",
        """
        import time
        from pydantic import BaseModel
        class Params(BaseModel):
            pass
        class Result(BaseModel):
            ok: bool
        def run(params: Params, ctx) -> Result:
            (ctx.home / "running").write_text("")
            time.sleep(30)
        """,
    )
    base = [str(AGENTOPS), "--home", str(project.home)]
    holder = subprocess.Popen([*base, "run", "agent"], env=cron_env(project.home))
    try:
        deadline = time.monotonic() + 30
        while not (project.home / "running").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        result = subprocess.run(
            [*base, "reset", "agent", "--circuit"],
            env=cron_env(project.home),
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 75
    assert "is already running" in result.stderr
    assert result.stderr.count("\n") == 1
