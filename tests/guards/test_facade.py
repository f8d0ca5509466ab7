"""RunGuards: guarded actions and their undo, secrets in names and keys, costs, steps, requests.

Most tests drive a :class:`RunGuards` directly, over a real journal file on
tmp_path and a real log file. A process killed inside ``undo()`` needs a real
process: those tests run ``agentops`` in a subprocess and kill it there.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from agentops._infra.fs import FileSystem
from agentops._infra.log import RunLogSink, make_logger
from agentops._infra.redact import Redactor
from agentops.errors import (
    AgentCodeFailed,
    BudgetExceeded,
    BudgetExhausted,
    BudgetTooSmall,
    LeaseLost,
    PermissionDenied,
    RunTimeout,
    StepLimitExceeded,
)
from agentops.guards import policies
from agentops.guards.facade import GuardStop, RunGuards
from agentops.guards.interrupts import RunInterrupts
from agentops.model.journal import Begin, parse_lines, written
from agentops.model.ledger import Ledger
from agentops.model.state import AgentState
from agentops.project.config import AgentConfig, Limits, Permissions
from agentops.store.file import FileJournal
from suite import AGENTOPS, agent_source, cron_env

if TYPE_CHECKING:
    from pathlib import Path

    from agentops.store.base import Lease

RUN_ID = "20261122T120000Z-abcdef"
SECRET, OTHER = "tok-3f9a8c7e2b1d5a", "tok-7c6b5a4d3e2f1b"
ENVIRON = {"SERVICE_TOKEN": SECRET, "BACKUP_TOKEN": OTHER}


class RecordingFS(FileSystem):
    """The real file system, remembering the steps it took."""

    def __init__(self) -> None:
        self.steps: list[str] = []

    def write(self, fd: int, data: bytes) -> None:
        self.steps.append("write")
        super().write(fd, data)

    def fsync(self, fd: int) -> None:
        self.steps.append("fsync")
        super().fsync(fd)


@dataclass
class Guarded:
    """A RunGuards over a real journal and log, and what it writes to."""

    guards: RunGuards
    state: AgentState
    ledger: Ledger
    fs: RecordingFS
    journal_path: Path
    log_path: Path
    sleeps: list[float]

    def records(self) -> list:
        """The journal's records after its begin."""
        return parse_lines(self.journal_path.read_bytes(), agent="agent")[1:]

    def ops(self) -> list[str]:
        return [record.op for record in self.records()]

    def events(self, name: str) -> list[dict]:
        lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
        return [e for e in map(json.loads, lines) if e["event"] == name]

    def written(self) -> str:
        """Everything written so far: the journal and the log."""
        log = self.log_path.read_text() if self.log_path.exists() else ""
        return written(self.journal_path.read_bytes()).decode() + log


@pytest.fixture
def make_guards(tmp_path, clock):
    """Build RunGuards the way a session does, each over a journal of its own."""
    sinks: list[RunLogSink] = []

    def make(
        *,
        limits: Limits | None = None,
        permissions: Permissions | None = None,
        environ: dict[str, str] | None = None,
        timeout_s: float = 600.0,
        ledger: Ledger | None = None,
        state: AgentState | None = None,
        lease: Lease | None = None,
    ) -> Guarded:
        number = len(sinks)
        fs = RecordingFS()
        journal_path = tmp_path / f"agent-{number}.journal"
        journal = FileJournal(fs, journal_path, RUN_ID)
        journal.append(Begin.model_construct(run_id=RUN_ID, at=clock(), agent="agent"))
        log_path = tmp_path / f"agent-{number}.jsonl"
        redactor = Redactor(environ or {})
        sink = RunLogSink(log_path)
        sinks.append(sink)
        log = make_logger(sink, clock=clock, redactor=redactor, agent="agent", run_id=RUN_ID)
        state = state or AgentState(agent="agent")
        ledger = ledger if ledger is not None else Ledger()
        sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            clock.advance(seconds=seconds)

        guards = RunGuards(
            agent="agent",
            limits=limits or Limits(),
            state=state,
            ledger=lambda: ledger,
            journal=journal,
            interrupts=RunInterrupts(timeout_s),
            log=log,
            redactor=redactor,
            clock=clock,
            sleep=sleep,
            permissions=permissions,
            lease=lease,
        )
        return Guarded(guards, state, ledger, fs, journal_path, log_path, sleeps)

    yield make
    for sink in sinks:
        sink.close()


def call_agent(what, function, *args):
    """What the gatekeeper does around agent code, without the timeout."""
    try:
        return function(*args)
    except Exception as exc:
        raise AgentCodeFailed(f"agent: {what} raised {type(exc).__name__}: {exc}") from exc


# -- secrets in names and keys ---------------------------------------------------------


def test_secrets_in_action_keys_are_kept_as_distinct_digests(make_guards):
    """Keys holding two different secrets stay two keys, [REDACTED:xxxxxxxx]; neither is written."""
    guarded = make_guards(environ=ENVIRON)
    guarded.guards.action("login", f"account-{SECRET}", do=lambda: 1)
    guarded.guards.action("login", f"account-{OTHER}", do=lambda: 2)
    keys = sorted(guarded.ledger.entries["login"])
    assert len(keys) == 2
    assert all(re.fullmatch(r"account-\[REDACTED:[0-9a-f]{8}\]", key) for key in keys)
    assert [guarded.ledger.get("login", key).result for key in keys] in ([1, 2], [2, 1])
    assert SECRET not in guarded.written()
    assert OTHER not in guarded.written()


def test_a_secret_in_an_action_name_is_kept_as_a_digest(make_guards):
    """An action named with a secret is journaled, logged and ledgered under its digest."""
    guarded = make_guards(environ=ENVIRON)
    guarded.guards.action(f"post-as-{SECRET}", "k", do=lambda: "done")
    [name] = guarded.ledger.entries
    assert re.fullmatch(r"post-as-\[REDACTED:[0-9a-f]{8}\]", name)
    assert guarded.events("action.committed")[0]["action"] == name
    assert SECRET not in guarded.written()


def test_a_digested_key_is_the_same_key_in_the_next_run(make_guards):
    """The digest is stable across runs, so a key holding a secret is still done exactly once."""
    first = make_guards(environ=ENVIRON)
    assert first.guards.action("login", f"account-{SECRET}", do=lambda: "first") == "first"
    saved = Ledger(json.loads(json.dumps(first.ledger.entries)))  # as the next run reads it
    second = make_guards(environ=dict(ENVIRON), ledger=saved)
    calls = []
    found = second.guards.action("login", f"account-{SECRET}", do=lambda: calls.append(1))
    assert (found, calls) == ("first", [])
    assert second.events("action.skipped")[0]["reason"] == "duplicate"


def test_the_error_of_a_failed_do_is_redacted_in_the_journal_and_the_log(make_guards):
    """do() raising with a secret in its message: the abort record and action.failed hide it."""
    guarded = make_guards(environ=ENVIRON)

    def do():
        raise PermissionError(f"401 Unauthorized for token {SECRET}")

    with pytest.raises(PermissionError):
        guarded.guards.action("publish", "post-1", do=do)
    abort = guarded.records()[-1]
    assert abort.op == "abort"
    assert abort.error == "PermissionError: 401 Unauthorized for token [REDACTED]"
    assert guarded.events("action.failed")[0]["error"] == abort.error
    assert SECRET not in guarded.written()
    assert guarded.ledger.get("publish", "post-1").status == "failed"


# -- undo, journaled like do() ---------------------------------------------------------


def test_an_undo_is_journaled_durably_before_undo_runs_and_settled_after(make_guards):
    """An undo record is fsynced before undo() is called, an undone record follows it."""
    guarded = make_guards()
    seen = {}

    def undo(result):
        seen["ops"] = guarded.ops()
        seen["last_step"] = guarded.fs.steps[-1]
        seen["status"] = guarded.ledger.get("publish", "post-1").status
        seen["result"] = result

    guarded.guards.action("publish", "post-1", do=lambda: {"id": 7}, undo=undo)
    guarded.guards.undo_committed(call_agent)
    assert seen == {
        "ops": ["intent", "commit", "undo"],
        "last_step": "fsync",
        "status": "unresolved",
        "result": {"id": 7},
    }
    assert guarded.ops() == ["intent", "commit", "undo", "undone"]
    entry = guarded.ledger.get("publish", "post-1")
    assert (entry.status, entry.result) == ("undone", {"id": 7})
    assert guarded.events("action.undone")[0]["key"] == "post-1"


def test_an_undo_that_raises_leaves_the_action_committed_saying_why(make_guards):
    """undo() raising: undo_failed is journaled (redacted) and the effect stands as committed."""
    guarded = make_guards(environ=ENVIRON)

    def undo(_result):
        raise RuntimeError(f"delete refused for {SECRET}")

    guarded.guards.action("publish", "post-1", do=lambda: {"id": 7}, undo=undo)
    guarded.guards.undo_committed(call_agent)
    assert guarded.ops() == ["intent", "commit", "undo", "undo_failed"]
    failed = guarded.records()[-1]
    assert failed.error == (
        "agent: undo() of publish raised RuntimeError: delete refused for [REDACTED]"
    )
    entry = guarded.ledger.get("publish", "post-1")
    assert (entry.status, entry.result) == ("committed", {"id": 7})
    assert guarded.events("action.undo_failed")[0]["error"] == failed.error
    assert SECRET not in guarded.written()


def test_an_action_without_undo_is_left_committed_and_said_so(make_guards):
    """Without undo there is nothing to journal: action.not_undone, the entry stays committed."""
    guarded = make_guards()
    guarded.guards.action("notify", "n-1", do=lambda: "sent")
    guarded.guards.undo_committed(call_agent)
    assert guarded.ops() == ["intent", "commit"]
    assert guarded.ledger.get("notify", "n-1").status == "committed"
    assert guarded.events("action.not_undone")[0]["key"] == "n-1"


UNDOING = """
import time
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    reject: bool = False
    undo_sleep: float = 0.0

class Result(BaseModel):
    receipt: dict

def publish(ctx, key):
    (ctx.home / key).write_text(key)
    return {"path": key}

def delete(ctx, receipt, pause):
    (ctx.home / receipt["path"]).unlink()  # the effect is gone...
    (ctx.home / "undo-started").write_text("")
    time.sleep(pause)  # ...and undo() has not returned yet

def run(params: Params, ctx: Context) -> Result:
    receipt = ctx.action(
        "publish",
        "post-1",
        do=lambda: publish(ctx, "post-1"),
        undo=lambda r: delete(ctx, r, params.undo_sleep),
    )
    return Result(receipt=receipt)

def validate(result: Result, ctx: Context) -> None:
    if ctx.params.reject:
        raise ValueError("rejected by review")
"""

RECONCILE = """
def reconcile(action, key, ctx):
    return (ctx.home / key).exists()
"""


def start_rejected_run(project, undo_sleep: float) -> subprocess.Popen:
    """Start a run whose output is rejected; return once its undo() has removed the effect."""
    command = [str(AGENTOPS), "--home", str(project.home), "run", "agent"]
    command += ["-p", "reject=true", "-p", f"undo_sleep={undo_sleep}"]
    proc = subprocess.Popen(
        command,
        env=cron_env(project.home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (project.home / "undo-started").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "undo() never started"
        time.sleep(0.02)
    return proc


def test_a_kill_inside_undo_leaves_the_action_unresolved_until_reconciled(project, invoke, clock):
    """SIGKILL inside undo(): never committed for an effect that is gone; reconcile() settles it."""
    project.add_agent("agent", UNDOING)
    proc = start_rejected_run(project, undo_sleep=30)
    proc.kill()
    proc.communicate()
    assert not (project.home / "post-1").exists(), "the effect is gone"
    listed = invoke("ledger", "agent", "--json")
    assert [(r["key"], r["status"]) for r in json.loads(listed.stdout)] == [
        ("post-1", "unresolved")
    ]
    blocked = project.run(clock=clock)
    assert blocked.exit_code == 1
    assert "action publish 'post-1' is unresolved" in blocked.message
    assert "--resolve post-1" in blocked.message
    assert not (project.home / "post-1").exists(), "nothing is redone blindly"
    assert project.state("agent")["errors"][0]["category"] == "crashed"
    project.add_agent("agent", UNDOING + RECONCILE)
    settled = project.run(clock=clock)
    assert settled.exit_code == 0
    assert (project.home / "post-1").exists(), "reconcile() found it gone, so do() ran again"
    assert project.ledger("agent")["publish"]["post-1"].split()[1] == "committed"


def test_sigterm_inside_undo_waits_for_undo_to_finish(project):
    """SIGTERM while undo() runs: the undo finishes and is recorded undone before the run ends."""
    project.add_agent("agent", UNDOING)
    proc = start_rejected_run(project, undo_sleep=1.0)
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - signalled < 10
    # Rejected (65) as it was already ending, or interrupted (1): either way, after the undo.
    assert proc.returncode in (1, 65), stderr
    assert len(stderr.splitlines()) == 1
    assert not (project.home / "post-1").exists()
    assert project.ledger("agent")["publish"]["post-1"].split()[1] == "undone"
    assert "action.undone" in project.event_names("agent")
    assert not (project.home / "state" / "agent.journal").exists(), "the run ended cleanly"


HANGING_UNDO = """
import os, signal, time
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    ok: bool

def publish(ctx):
    (ctx.home / "post-1").write_text("")
    return "post-1"

def delete(ctx):
    (ctx.home / "post-1").unlink()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)  # hangs past the grace

def run(params: Params, ctx: Context) -> Result:
    ctx.action("publish", "post-1", do=lambda: publish(ctx), undo=lambda r: delete(ctx))
    return Result(ok=True)

def validate(result: Result, ctx: Context) -> None:
    raise ValueError("rejected by review")
"""


def test_an_undo_that_hangs_past_the_grace_is_abandoned_as_unresolved(project, clock):
    """A stop waits for undo() only for the grace: then the run ends, the effect left unknown."""
    project.add_agent("agent", HANGING_UNDO, 'timeout = "2s"\n')
    started = time.monotonic()
    outcome = project.run(clock=clock)
    assert time.monotonic() - started < 10
    assert (outcome.status, outcome.exit_code) == ("interrupted", 1)
    assert "undo() of publish interrupted by SIGTERM" in outcome.message
    assert project.ledger("agent")["publish"]["post-1"].split()[1] == "unresolved"


STOPPED_BETWEEN_UNDOS = """
import os, signal, time
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    ok: bool

def publish(ctx, key):
    (ctx.home / key).write_text(key)
    return key

def delete(ctx, key):
    if key == "second":  # undone first, newest first: SIGTERM arrives while it runs
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.3)
    (ctx.home / key).unlink()

def run(params: Params, ctx: Context) -> Result:
    for key in ("first", "second"):
        ctx.action(
            "publish", key, do=lambda key=key: publish(ctx, key), undo=lambda r: delete(ctx, r)
        )
    return Result(ok=True)

def validate(result: Result, ctx: Context) -> None:
    raise ValueError("rejected by review")
"""


def test_a_stop_during_one_undo_leaves_the_undos_not_started_as_they_are(project, clock):
    """A stop while undoing the newer action: the older one, never undone, is not unresolved."""
    project.add_agent("agent", STOPPED_BETWEEN_UNDOS)
    outcome = project.run(clock=clock)
    assert outcome.exit_code == 1
    assert "interrupted by SIGTERM" in outcome.message
    ledger = project.ledger("agent")["publish"]
    assert ledger["second"].split()[1] == "undone"
    assert not (project.home / "second").exists()
    # Its undo() was never called: the effect is there, and the ledger must say so.
    assert (project.home / "first").exists()
    assert ledger["first"].split()[1] == "committed"


# -- least privilege: actions ------------------------------------------------------------


def test_an_action_not_in_permissions_is_refused_before_do(make_guards):
    """[permissions] actions: an unlisted action logs guard.denied and stops; do() never runs."""
    guarded = make_guards(permissions=Permissions(actions=["publish"]))
    calls = []
    with pytest.raises(GuardStop) as caught:
        guarded.guards.action("delete", "post-1", do=lambda: calls.append(1))
    error = caught.value.error
    assert isinstance(error, PermissionDenied)
    assert error.exit_code == 1
    assert error.message == "agent: action 'delete' is not allowed by [permissions] actions"
    assert guarded.guards.stopped is error, "a swallowed stop still ends the run"
    assert calls == []
    assert guarded.ops() == [], "nothing journaled"
    denied = guarded.events("guard.denied")[0]
    assert (denied["action"], denied["allowed"]) == ("delete", ["publish"])
    assert guarded.guards.action("publish", "post-1", do=lambda: "ok") == "ok"


def test_without_an_actions_list_every_action_is_allowed(make_guards):
    """No [permissions] actions (or no [permissions]) means no restriction."""
    for permissions in (None, Permissions(), Permissions(hosts=["api.example.com"])):
        guarded = make_guards(permissions=permissions)
        assert guarded.guards.action("anything", "k", do=lambda: 1) == 1


def test_an_agent_cannot_swallow_a_refused_action(project, clock):
    """except Exception around a refused ctx.action: the run still fails with the refusal."""
    project.add_agent(
        "agent",
        agent_source(
            """
            try:
                ctx.action("delete", "everything", do=lambda: (ctx.home / "deleted").write_text(""))
            except Exception:
                pass
            return Result(ok=True)
            """,
            result="ok: bool",
        ),
        '[permissions]\nactions = ["publish"]\n',
    )
    outcome = project.run(clock=clock)
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert "action 'delete' is not allowed by [permissions] actions" in outcome.message
    assert not (project.home / "deleted").exists()
    assert "guard.denied" in project.event_names("agent")


# -- the lease, checked right before do() ------------------------------------------------


class _LapsedLease:
    agent = "agent"
    token = 7

    def keep_until_exit(self) -> None:
        pass

    def check(self) -> None:
        raise LeaseLost("agent: the run's lease lapsed or was taken over", agent="agent")


def test_a_lease_found_lapsed_right_before_do_stops_the_run_before_the_effect(make_guards):
    """The intent is written, the lease checked: do() never starts; the intent is unresolved."""
    guarded = make_guards(lease=_LapsedLease())
    called = []
    with pytest.raises(GuardStop) as stopped:
        guarded.guards.action("publish", "item", do=called.append)
    assert called == []
    assert isinstance(stopped.value.error, LeaseLost)
    assert guarded.guards.stopped is stopped.value.error
    assert guarded.ledger.get("publish", "item").status == "unresolved"
    assert b'"intent"' in guarded.journal_path.read_bytes()


# -- costs, steps and requests ---------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "spend", "expected"),
    [
        (
            {"tokens_per_run": 1000},
            {"tokens": 1001},
            "agent: a single spend of 1001 tokens is more than tokens_per_run 1000",
        ),
        (
            {"cost_usd_per_hour": 1.0},
            {"usd": 1.5},
            "agent: a single spend of 1.5 is more than cost_usd_per_hour 1",
        ),
    ],
    ids=["tokens", "usd"],
)
def test_one_spend_larger_than_a_whole_cap_fails_the_run(make_guards, limits, spend, expected):
    """Tokens like dollars: a spend no run could fit fails (exit 1), recording nothing."""
    guarded = make_guards(limits=Limits(**limits))
    with pytest.raises(GuardStop) as caught:
        guarded.guards.spend(**spend)
    error = caught.value.error
    assert isinstance(error, BudgetTooSmall)
    assert error.exit_code == 1
    assert error.message == f"{expected}: raise the cap or spend less per call"
    assert guarded.ops() == []
    assert guarded.state.budget.spends == []
    assert guarded.state.budget.waiting_usd == 0.0


def test_tokens_that_fit_one_by_one_but_not_together_stop_the_run(make_guards):
    """tokens_per_run counts the run's total: the spend that would pass it stops the run (75)."""
    guarded = make_guards(limits=Limits(tokens_per_run=1000))
    guarded.guards.spend(tokens=600)
    with pytest.raises(GuardStop) as caught:
        guarded.guards.spend(tokens=600)
    assert isinstance(caught.value.error, BudgetExceeded)
    assert caught.value.error.exit_code == 75
    assert guarded.guards.tokens == 600
    assert (caught.value.error.asked_tokens, caught.value.error.asked_usd) == (600, 0.0)
    assert guarded.state.budget.waiting_usd == 0.0, "a run's tokens are no window to wait for"


def test_a_spend_a_full_window_refuses_is_waited_for_by_the_next_runs(make_guards, clock):
    """The refused amount is on the error and in the state; gate 2 skips until it fits."""
    config = AgentConfig(limits=Limits(cost_usd_per_hour=1.0))
    guarded = make_guards(limits=config.limits)
    guarded.guards.spend(usd=0.75)
    with pytest.raises(GuardStop) as caught:
        guarded.guards.spend(usd=0.5)
    assert isinstance(caught.value.error, BudgetExceeded)
    assert caught.value.error.message == (
        "agent: cost_usd_per_hour 1 reached (0.7500 spent, 0.5 more asked)"
    )
    assert caught.value.error.asked_usd == 0.5
    assert guarded.state.budget.waiting_usd == 0.5
    clock.advance(minutes=30)  # 0.25 of room would do for any spend, not for this one
    with pytest.raises(BudgetExhausted) as skipped:
        policies.admit(config, guarded.state, clock())
    assert skipped.value.message == (
        "agent: cost_usd_per_hour 1 has no room for the 0.5 a run asked for; room in 1800s"
    )
    clock.advance(minutes=30)
    policies.admit(config, guarded.state, clock())
    assert guarded.state.budget.waiting_usd == 0.0


def test_each_attempt_gets_a_fresh_step_budget(make_guards):
    """steps_per_run counts per attempt: new_attempt() starts the count again."""
    guarded = make_guards(limits=Limits(steps_per_run=3))
    for _ in range(3):
        guarded.guards.step("fetch")
    with pytest.raises(GuardStop) as caught:
        guarded.guards.step("fetch")
    assert isinstance(caught.value.error, StepLimitExceeded)
    assert caught.value.error.message == "agent: more than steps_per_run 3 steps (at fetch)"
    guarded.guards.new_attempt()
    for _ in range(3):
        guarded.guards.step("fetch")


def test_a_request_wait_longer_than_the_time_left_fails_at_once(make_guards):
    """requests_per_minute would wait 60 s with 30 s left: the run stops now, without sleeping."""
    guarded = make_guards(limits=Limits(requests_per_minute=1), timeout_s=30)
    guarded.guards.admit_request("api.example.com")
    with pytest.raises(GuardStop) as caught:
        guarded.guards.admit_request("api.example.com")
    error = caught.value.error
    assert isinstance(error, RunTimeout)
    assert error.message == (
        "agent: requests_per_minute 1 would wait 60s for the next request, but the run has 30s left"
    )
    assert guarded.sleeps == []


def test_a_request_wait_shorter_than_the_time_left_sleeps(make_guards):
    """With time enough, the request waits for the minute to have room, and is counted."""
    guarded = make_guards(limits=Limits(requests_per_minute=1), timeout_s=120)
    guarded.guards.admit_request("api.example.com")
    guarded.guards.admit_request("api.example.com")
    assert guarded.sleeps == [pytest.approx(60.0)]
    assert len(guarded.state.rate_limits["requests"]) == 1, "the window holds one minute"
    assert guarded.events("requests.waiting")[0]["limit"] == "1/minute"


def test_a_host_not_in_permissions_is_refused_before_the_request(make_guards):
    """admit_request refuses an unlisted host with guard.denied, and stops the run."""
    guarded = make_guards(permissions=Permissions(hosts=["api.example.com"]))
    guarded.guards.admit_request("api.example.com")
    with pytest.raises(GuardStop) as caught:
        guarded.guards.admit_request("evil.example.net")
    assert isinstance(caught.value.error, PermissionDenied)
    assert caught.value.error.message == (
        "agent: request refused: evil.example.net is not in [permissions] hosts"
    )
    denied = guarded.events("guard.denied")[0]
    assert denied["host"] == "evil.example.net"
    assert denied["reason"] == "evil.example.net is not in [permissions] hosts"


MANY = agent_source(
    """
    last = None
    for i in range(params.spends):
        ctx.spend(usd=0.001, tokens=1)
    for i in range(params.start, params.start + params.actions):
        last = ctx.action("publish", str(i), do=lambda i=i: i)
    return Result(last=last)
    """,
    params="""
    start: int = 0
    spends: int = 0
    actions: int = 0
    """,
    result="last: int | None",
)


class NoSync(FileSystem):
    """Real files without fsync: 4,000 durable records cost seconds of disk, not of logic."""

    def fsync(self, fd: int) -> None:
        pass

    def fsync_dir(self, directory: Path) -> None:
        pass


def test_thousands_of_spends_and_limited_actions_in_one_run_add_up(project, clock):
    """2,000 spends and 2,000 limited actions: exact totals, full windows, the next one waits."""
    project.add_agent(
        "agent",
        MANY,
        '[limits]\ncost_usd_per_hour = 2.0005\n\n[limits.actions]\npublish = "2000/hour"\n',
    )
    outcome = project.run(clock=clock, fs=NoSync(), overrides={"spends": 2000, "actions": 2000})
    assert outcome.exit_code == 0
    assert (outcome.spent_usd, outcome.tokens) == (pytest.approx(2.0), 2000)
    state = project.state("agent")
    assert (state["metrics"]["cost_usd"], state["metrics"]["tokens"]) == (2.0, 2000)
    assert len(state["budget"]["spends"]) == 2000
    assert len(state["rate_limits"]["action:publish"]) == 2000
    ledger = project.ledger("agent")["publish"]
    assert len(ledger) == 2000
    assert {line.split()[1] for line in ledger.values()} == {"committed"}
    assert json.loads(ledger["1999"].split(" ", 3)[3]) == 1999
    # Both windows are full: one more of either waits until the hour has passed.
    clock.advance(minutes=59)
    more_actions = project.run(clock=clock, overrides={"start": 2000, "actions": 1})
    assert (more_actions.status, more_actions.exit_code) == ("rate_limited", 75)
    more_spends = project.run(clock=clock, overrides={"spends": 1})
    assert (more_spends.status, more_spends.exit_code) == ("budget_exceeded", 75)
    clock.advance(minutes=1, seconds=1)
    later = project.run(clock=clock, overrides={"start": 2000, "actions": 1, "spends": 1})
    assert later.exit_code == 0
    assert project.state("agent")["metrics"]["tokens"] == 2001
