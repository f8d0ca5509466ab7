"""The run step by step, in-process: gates, statuses, state and log records."""

from __future__ import annotations

import errno
import json
import os
import sys
import threading
import time

import pytest

from agentops._infra.fs import FILE_MODE, FileSystem
from agentops._infra.stderr import real_stderr
from agentops.errors import UnknownAgent
from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import run_agent
from suite import agent_source

COUNTER = """
from pydantic import BaseModel, Field
from agentops import Context

class Params(BaseModel):
    n: int = Field(1, ge=1, le=10)

class Result(BaseModel):
    total: int

def run(params: Params, ctx: Context) -> Result:
    (ctx.home / "executed").write_text("yes")
    ctx.state["total"] = ctx.state.get("total", 0) + params.n
    return Result(total=ctx.state["total"])
"""


def test_success_records_the_run_in_state_and_log(project, clock):
    """A good run exits 0 and leaves last_run, metrics, data and two log lines."""
    project.add_agent("agent", COUNTER)
    outcome = project.run(clock=clock)
    assert (outcome.status, outcome.exit_code) == ("succeeded", 0)
    state = project.state("agent")
    assert state["last_run"]["status"] == "succeeded"
    assert state["last_run"]["run_id"] == outcome.run_id
    assert state["last_run"]["started_at"] == "2026-11-22T12:00:00Z"
    assert state["last_success_at"] == "2026-11-22T12:00:00Z"
    counters = ("runs", "succeeded", "failed", "rejected", "skipped")
    assert {k: state["metrics"][k] for k in counters} == {
        "runs": 1,
        "succeeded": 1,
        "failed": 0,
        "rejected": 0,
        "skipped": 0,
    }
    assert state["data"] == {"total": 1}
    events = project.events("agent")
    assert [e["event"] for e in events] == ["run.started", "run.finished"]
    assert events[1]["result"] == {"total": 1}
    assert {e["run_id"] for e in events} == {outcome.run_id}


def test_state_data_carries_over_between_runs(project, clock):
    """ctx.state is the agent's memory: the second run sees what the first saved."""
    project.add_agent("agent", COUNTER)
    project.run(clock=clock)
    project.run(clock=clock, overrides={"n": "5"})
    assert project.state("agent")["data"] == {"total": 6}


def test_bad_params_execute_nothing_and_save_nothing(project, clock):
    """Params rejected: exit 65, run() never called, no state written, gate.rejected logged."""
    project.add_agent("agent", COUNTER)
    outcome = project.run(clock=clock, overrides={"n": "99"})
    assert (outcome.status, outcome.exit_code) == ("rejected", 65)
    assert "n: Input should be less than or equal to 10" in outcome.message
    assert not (project.home / "executed").exists()
    assert not project.state_path("agent").exists()
    rejected = project.events("agent")[0]
    assert rejected["event"] == "gate.rejected"
    assert rejected["stage"] == "params"
    assert project.event_names("agent")[-1] == "run.aborted"


def test_params_from_toml_are_validated_too(project, clock):
    """A bad [params] value in agent.toml is a configuration error (78), naming its line."""
    project.add_agent("agent", COUNTER, "[params]\nn = 0\n")
    outcome = project.run(clock=clock)
    assert outcome.exit_code == 78
    assert "agent.toml:2: [params] n: Input should be greater than" in outcome.message


ROLLBACK = agent_source(
    """
    ctx.state["touched"] = True
    if params.verdict == "not-a-model":
        return {"count": "many"}
    return Result(count=3)
    """,
    params='verdict: str = "ok"',
    result="count: int",
    extra="""
    def validate(result: Result, ctx: Context) -> None:
        if ctx.state.get("touched") and (ctx.home / "reject").exists():
            raise ValueError("count looks wrong")

    def rollback(result, ctx: Context) -> None:
        (ctx.home / "rolled-back").write_text(repr(result))
    """,
)


def test_validate_rejection_calls_rollback_and_keeps_old_data(project, clock):
    """validate() raising rejects the output (65), calls rollback() and discards ctx.state."""
    project.add_agent("agent", ROLLBACK)
    (project.home / "reject").write_text("")
    outcome = project.run(clock=clock)
    assert (outcome.status, outcome.exit_code) == ("rejected", 65)
    assert "count looks wrong" in outcome.message
    assert (project.home / "rolled-back").read_text() == "Result(count=3)"
    state = project.state("agent")
    assert state["data"] == {}
    assert state["metrics"]["rejected"] == 1
    assert state["errors"][0]["category"] == "rejected"
    names = project.event_names("agent")
    assert names == [
        "run.started",
        "gate.rejected",
        "rollback.started",
        "rollback.finished",
        "run.finished",
    ]


def test_output_failing_the_result_model_is_rejected(project, clock):
    """A result the Result model refuses is rejected, and rollback() gets the raw output."""
    project.add_agent("agent", ROLLBACK)
    outcome = project.run(clock=clock, overrides={"verdict": "not-a-model"})
    assert outcome.exit_code == 65
    assert "count: Input should be a valid integer" in outcome.message
    assert (project.home / "rolled-back").read_text() == "{'count': 'many'}"


FAILING = agent_source(
    """
    ctx.state["half-done"] = True
    raise RuntimeError("the feed is down")
    """,
    result="ok: bool",
)


def test_failure_exits_1_records_error_and_traceback(project, clock):
    """run() raising: exit 1, status failed, the error in state, the traceback in the log."""
    project.add_agent("agent", FAILING)
    outcome = project.run(clock=clock)
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert outcome.message == "agent: run() raised RuntimeError: the feed is down"
    state = project.state("agent")
    assert state["data"] == {}, "a failed run's ctx.state changes are not saved"
    assert state["last_run"]["error"] == outcome.message
    assert state["errors"][0]["message"] == outcome.message
    assert state["metrics"]["failed"] == 1
    failed = next(e for e in project.events("agent") if e["event"] == "run.failed")
    assert "Traceback" in failed["exception"]
    assert 'raise RuntimeError("the feed is down")' in failed["exception"]


SLOW = agent_source(
    """
    if params.mode == "sleep":
        time.sleep(600)
    elif params.mode == "swallow":
        while True:
            try:
                time.sleep(600)
            except Exception:
                pass
    elif params.mode == "stubborn":
        for _ in range(3):
            try:
                time.sleep(600)
            except BaseException:
                pass
        time.sleep(600)
    elif params.mode == "sigterm":
        import os, signal
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(600)
    return Result(ok=True)
    """,
    params='mode: str = "sleep"',
    result="ok: bool",
    imports="import time",
)


@pytest.mark.parametrize("mode", ["sleep", "swallow", "stubborn"])
def test_timeout_stops_the_run(project, clock, mode):
    """A run past its timeout ends with status timeout, even if it catches exceptions."""
    project.add_agent("agent", SLOW, 'timeout = "0.3s"\n')
    started = time.monotonic()
    outcome = project.run(clock=clock, overrides={"mode": mode})
    assert time.monotonic() - started < 300, "the 600s sleeps were stopped"
    assert (outcome.status, outcome.exit_code) == ("timeout", 1)
    assert "passed the timeout of 0.3s" in outcome.message
    assert project.state("agent")["last_run"]["status"] == "timeout"


def test_sigterm_interrupts_the_run(project, clock):
    """SIGTERM during run() ends it as interrupted, with state saved."""
    project.add_agent("agent", SLOW)
    outcome = project.run(clock=clock, overrides={"mode": "sigterm"})
    assert (outcome.status, outcome.exit_code) == ("interrupted", 1)
    assert "SIGTERM" in outcome.message
    assert project.state("agent")["last_run"]["status"] == "interrupted"


def test_run_rate_limit_is_a_sliding_window(project, clock):
    """runs = "2/hour": the third run in an hour is skipped (75) until the window slides."""
    project.add_agent("agent", COUNTER, '[limits]\nruns = "2/hour"\n')
    assert project.run(clock=clock).exit_code == 0
    clock.advance(minutes=30)
    assert project.run(clock=clock).exit_code == 0
    clock.advance(minutes=29)
    skipped = project.run(clock=clock)
    assert (skipped.status, skipped.exit_code) == ("skipped", 75)
    assert "room again in 60s" in skipped.message
    state = project.state("agent")
    assert state["metrics"]["skipped"] == 1
    assert state["metrics"]["runs"] == 2
    assert project.events("agent")[-1]["reason"] == "rate_limit"
    clock.advance(minutes=1, seconds=1)
    assert project.run(clock=clock).exit_code == 0


def test_zero_rate_never_runs(project, clock):
    """runs = "0/hour" is a way to stop an agent: every run is skipped."""
    project.add_agent("agent", COUNTER, '[limits]\nruns = "0/day"\n')
    outcome = project.run(clock=clock)
    assert outcome.exit_code == 75
    assert "allows no runs" in outcome.message


def test_dry_run_runs_but_saves_nothing(project, clock):
    """--dry-run: run() sees ctx.dry_run and the state file is not written."""
    project.add_agent(
        "agent",
        COUNTER.replace('write_text("yes")', "write_text(str(ctx.dry_run))"),
        '[limits]\nruns = "1/hour"\n',
    )
    outcome = project.run(clock=clock, dry_run=True)
    assert outcome.exit_code == 0
    assert (project.home / "executed").read_text() == "True"
    assert not project.state_path("agent").exists()
    assert project.events("agent")[0]["dry_run"] is True
    assert project.run(clock=clock, dry_run=True).exit_code == 0, "dry runs use no rate"


def test_state_value_that_is_not_json_fails_the_run_cleanly(project, clock):
    """Putting a non-JSON value in ctx.state fails the run and keeps the old state."""
    project.add_agent("agent", COUNTER)
    project.run(clock=clock)
    project.add_agent(
        "agent",
        COUNTER.replace(
            'ctx.state["total"] = ', 'ctx.state["bad"] = object(); ctx.state["total"] = '
        ),
    )
    outcome = project.run(clock=clock)
    assert outcome.exit_code == 1
    assert "ctx.state holds a value that is not JSON" in outcome.message
    assert project.state("agent")["data"] == {"total": 1}


def test_unknown_agent_raises_and_writes_nothing(project, clock):
    """An unknown agent is an error before any file is created."""
    with pytest.raises(UnknownAgent) as caught:
        project.run("ghost", clock=clock)
    assert caught.value.exit_code == 78
    assert not (project.home / "logs").exists()
    assert not (project.home / "state").exists()


def test_config_error_is_logged_as_aborted(project, clock):
    """A broken agent.toml is exit 78, logged as run.aborted; no state is written."""
    project.add_agent("agent", COUNTER, "timeout = 'soon'\n")
    outcome = project.run(clock=clock)
    assert outcome.exit_code == 78
    assert "timeout: expected a duration" in outcome.message
    assert project.events("agent")[-1]["event"] == "run.aborted"
    assert not project.state_path("agent").exists()


def test_unreadable_state_is_left_alone(project, clock):
    """A corrupt state file: exit 74, the file untouched, the agent not run."""
    project.add_agent("agent", COUNTER)
    project.state_path("agent").parent.mkdir()
    project.state_path("agent").write_text('{"agent": "agent", "metrics": {"runs": "many"}}')
    before = project.snapshot()
    outcome = project.run(clock=clock)
    assert outcome.exit_code == 74
    assert str(project.state_path("agent")) in outcome.message
    assert "metrics.runs" in outcome.message
    assert project.snapshot() == before
    assert not (project.home / "executed").exists()


def test_secrets_never_reach_state_or_log(project, clock):
    """An API key from the environment is redacted in ctx.state and in the log."""
    project.add_agent(
        "agent",
        agent_source(
            """
            key = os.environ["SERVICE_API_KEY"]
            ctx.state["leak"] = f"key={key}"
            ctx.log.info("agent.leaking", value=key, password="hunter22")
            return Result(echoed=key)
            """,
            result="echoed: str",
            imports="import os",
        ),
    )
    secret = "s3cr3t-value-123"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SERVICE_API_KEY", secret)
        outcome = run_agent(
            AgentopsProject(project.home), "agent", clock=clock, environ={"SERVICE_API_KEY": secret}
        )
    assert outcome.exit_code == 0
    state_text = project.state_path("agent").read_text()
    log_text = project.log_path("agent").read_text()
    for text in (state_text, log_text):
        assert secret not in text
        assert "hunter22" not in text
        assert "[REDACTED]" in text


def test_sigterm_during_rollback_ends_the_run_as_interrupted(project, clock):
    """A stop inside rollback() is a stop, not a failed rollback of a rejected run."""
    project.add_agent(
        "agent",
        ROLLBACK.replace(
            """    (ctx.home / "rolled-back").write_text(repr(result))""",
            """    import os, signal, time
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)""",
        ),
    )
    (project.home / "reject").write_text("")
    outcome = project.run(clock=clock)
    assert (outcome.status, outcome.exit_code) == ("interrupted", 1)
    assert "rollback() interrupted by SIGTERM" in outcome.message
    assert "rollback.failed" not in project.event_names("agent")


# -- agents that misbehave, inputs that are almost right ---------------------------------

HEADER = """
from pydantic import BaseModel, Field, field_validator
from agentops import Context

class Params(BaseModel):
    name: str = "world"

class Result(BaseModel):
    greeting: str
"""


def agent(body: str) -> str:
    return HEADER + body


def run_body(*lines: str) -> str:
    """An agent whose run() is these lines."""
    return agent(
        "def run(params: Params, ctx: Context) -> Result:\n    " + "\n    ".join(lines) + "\n"
    )


GREETS = run_body("return Result(greeting=params.name)")


def test_a_typo_in_params_is_refused(project, invoke):
    """An unknown key in [params] is a configuration error (78), in -p a rejection (65)."""
    project.add_agent("agent", GREETS, '[params]\nnmae = "x"\n')
    toml_typo = invoke("run", "agent")
    assert toml_typo.exit_code == 78
    assert "agent.toml:2: [params] nmae: unknown param" in toml_typo.stderr
    assert toml_typo.stderr.count("\n") == 1
    project.add_agent("agent", GREETS)
    flag_typo = invoke("run", "agent", "-p", "nmae=x")
    assert flag_typo.exit_code == 65
    assert "nmae: unknown param" in flag_typo.stderr


def test_params_models_that_allow_extra_keys_get_them(project, clock):
    """A Params model with extra="allow" accepts keys it does not declare."""
    project.add_agent(
        "agent",
        """
        from pydantic import BaseModel, ConfigDict

        class Params(BaseModel):
            model_config = ConfigDict(extra="allow")

        class Result(BaseModel):
            extra: dict

        def run(params: Params, ctx) -> Result:
            return Result(extra=params.model_extra)
        """,
    )
    outcome = project.run(clock=clock, overrides={"colour": "blue"})
    assert outcome.exit_code == 0
    assert project.events("agent")[-1]["result"] == {"extra": {"colour": "blue"}}


def test_a_validator_that_raises_anything_is_a_rejection(project, invoke):
    """A Params validator raising FileNotFoundError: exit 65, one line, not an internal error."""
    project.add_agent(
        "agent",
        """
        from pathlib import Path
        from pydantic import BaseModel, field_validator

        class Params(BaseModel):
            inbox: str = "."

            @field_validator("inbox")
            @classmethod
            def exists(cls, value):
                return str(Path(value).resolve(strict=True))

        class Result(BaseModel):
            ok: bool

        def run(params: Params, ctx) -> Result:
            return Result(ok=True)
        """,
    )
    result = invoke("run", "agent", "-p", "inbox=/nope/nowhere")
    assert result.exit_code == 65
    assert len(result.stderr.splitlines()) == 1
    assert "FileNotFoundError" in result.stderr


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "r = Result(greeting='x')\n    r.greeting = None\n    return r",
            "greeting: Input should be a valid string",
        ),
        ("return Result.model_construct(greeting=12)", "greeting: Input should be a valid string"),
        ("return {'greeting': 'x', 'blob': 1}", None),
    ],
    ids=["mutated after creation", "model_construct", "extra key ignored"],
)
def test_result_instances_are_validated_again(project, clock, body, expected):
    """A Result changed after it was made, or made without validation, is rejected (65)."""
    project.add_agent(
        "agent", agent(f"def run(params: Params, ctx: Context) -> Result:\n    {body}\n")
    )
    outcome = project.run(clock=clock)
    if expected is None:
        assert outcome.exit_code == 0
    else:
        assert outcome.exit_code == 65
        assert expected in outcome.message


def test_a_result_that_is_not_json_is_rejected(project, clock):
    """A Result holding bytes that are not text cannot be logged or held: rejected."""
    project.add_agent(
        "agent",
        agent_source(
            'return Result(payload=b"\\xff\\xfe")',
            result="payload: bytes",
        ),
    )
    outcome = project.run(clock=clock)
    assert outcome.exit_code == 65
    assert "not JSON" in outcome.message
    assert project.state("agent")["last_run"]["status"] == "rejected"


NUMBERS = agent_source(
    """
    ctx.state["runs"] = ctx.state.get("runs", 0) + 1
    if params.where == "state":
        ctx.state["value"] = {"nested": [params.value]}
        return Result(value=1.0)
    return Result(value=params.value)
    """,
    params="""
    value: float = 1.0
    where: str = "result"
    """,
    result="value: float",
)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_result_holding_a_number_json_cannot_hold_is_rejected(project, clock, value):
    """Result(value=nan): it could be neither logged strictly nor held for review: 65."""
    project.add_agent("agent", NUMBERS)
    outcome = project.run(clock=clock, overrides={"value": value})
    assert (outcome.status, outcome.exit_code) == ("rejected", 65)
    assert "the result is not JSON: it holds NaN or an infinity" in outcome.message


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_number_json_cannot_hold_in_ctx_state_fails_the_run_cleanly(project, clock, value):
    """ctx.state holding NaN: exit 1, the state file keeps its last good data and stays loadable."""
    project.add_agent("agent", NUMBERS)
    assert project.run(clock=clock).exit_code == 0
    outcome = project.run(clock=clock, overrides={"value": value, "where": "state"})
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert "ctx.state holds a value that is not JSON" in outcome.message

    def refuse(constant):
        raise ValueError(constant)

    state = json.loads(project.state_path("agent").read_text(), parse_constant=refuse)
    assert state["data"] == {"runs": 1}
    assert project.run(clock=clock).exit_code == 0, "the next run loads it (not exit 74)"


@pytest.mark.parametrize(
    "raise_it",
    [
        "raise SystemExit(3)",
        "raise KeyboardInterrupt",
        "import asyncio; raise asyncio.CancelledError",
    ],
)
def test_any_way_out_of_run_is_a_recorded_failure(project, invoke, raise_it):
    """sys.exit, KeyboardInterrupt or CancelledError from run(): exit 1, one line, recorded."""
    project.add_agent(
        "agent", agent(f"def run(params: Params, ctx: Context) -> Result:\n    {raise_it}\n")
    )
    result = invoke("run", "agent")
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert project.state("agent")["last_run"]["status"] == "failed"
    assert project.event_names("agent")[-1] == "run.finished"


def test_ctx_state_must_stay_a_dict(project, invoke):
    """Replacing ctx.state with a list fails the run; the state file stays readable."""
    project.add_agent("agent", run_body("ctx.state = ['x']", "return Result(greeting='hi')"))
    assert invoke("run", "agent").exit_code == 1
    assert "ctx.state must stay a dict" in project.state("agent")["last_run"]["error"]
    second = invoke("run", "agent")
    assert second.exit_code == 1, "fails the same way, not with exit 74"


def test_a_hook_with_the_wrong_signature_stops_the_run_before_run_is_called(project, clock):
    """def validate(result): is a configuration error (78) at load: run() never executes."""
    project.add_agent(
        "agent",
        COUNTER + "\n\ndef validate(result):\n    raise ValueError('never reached')\n",
    )
    outcome = project.run(clock=clock)
    assert (outcome.status, outcome.exit_code) == ("aborted", 78)
    assert "validate() takes the wrong arguments: write def validate(result, ctx)" in (
        outcome.message
    )
    assert not (project.home / "executed").exists()
    assert not project.state_path("agent").exists(), "nothing recorded: not a failure to count"


class FullWhenTheJournalIsCreated(FileSystem):
    """The disk fills up just as the run's journal is created."""

    def open(self, path, flags, mode=FILE_MODE):
        if path.name.startswith("agent.journal"):  # the journal, or a file it is made from
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return super().open(path, flags, mode)


def test_a_full_disk_when_the_journal_is_created_is_exit_74_in_one_line(project, clock):
    """No journal, no run: exit 74 with one line naming the file; run() never executes."""
    project.add_agent("agent", COUNTER)
    outcome = project.run(clock=clock, fs=FullWhenTheJournalIsCreated())
    assert (outcome.status, outcome.exit_code) == ("aborted", 74)
    journal = project.home / "state" / "agent.journal"
    assert outcome.message == f"{journal}: cannot write the journal: No space left on device"
    assert not (project.home / "executed").exists()
    assert not project.state_path("agent").exists()
    assert project.events("agent")[-1]["event"] == "run.aborted"


FLAKY = agent_source(
    """
    marker = ctx.home / "attempts"
    tried = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(tried))
    for _ in range(params.steps):
        ctx.step("fetch")
    if tried == 1:
        raise TransientError("the feed is busy")
    return Result(attempts=tried)
    """,
    params="steps: int = 3",
    result="attempts: int",
    imports="from agentops.errors import TransientError",
)


def test_a_retry_waits_as_long_as_initial_says_in_milliseconds(project, clock):
    """[retry] initial = "500ms": the retry sleeps from half a second (plus jitter), not 500 s."""
    project.add_agent("agent", FLAKY, '[retry]\ninitial = "500ms"\nmax = "2s"\n')
    waits = []
    outcome = project.run(clock=clock, sleep=waits.append)
    assert outcome.exit_code == 0
    assert len(waits) == 1
    assert 0.5 <= waits[0] < 1.0
    assert next(e for e in project.events("agent") if e["event"] == "retry.attempt")["wait_s"] < 1


def test_a_retried_run_gets_a_fresh_step_budget(project, clock):
    """steps_per_run = 3 and three steps per attempt: the retry is not stopped by the first's."""
    project.add_agent("agent", FLAKY, "[limits]\nsteps_per_run = 3\n")
    outcome = project.run(clock=clock, sleep=lambda _s: None)
    assert outcome.exit_code == 0, outcome.message
    assert project.events("agent")[-1]["result"] == {"attempts": 2}
    too_many = project.run(clock=clock, sleep=lambda _s: None, overrides={"steps": 4})
    assert too_many.exit_code == 1
    assert "more than steps_per_run 3 steps (at fetch)" in too_many.message


HOLDER = agent_source(
    "return Result(confidence=params.confidence)",
    params="confidence: float = 0.6",
    result="confidence: float",
    extra="""
    def apply(result: Result, ctx: Context) -> None:
        raise AssertionError("held results are not applied")
    """,
)


def test_the_review_queue_is_bounded_oldest_held_first_escalated_kept(project, clock, monkeypatch):
    """Past MAX_REVIEW the oldest held result goes (logged review.dropped); escalated ones stay."""
    monkeypatch.setattr("agentops.model.state.MAX_REVIEW", 3)
    project.add_agent("agent", HOLDER)
    ids = []
    for confidence in ("0.1", "0.6", "0.6", "0.6"):
        ids.append(project.run(clock=clock, overrides={"confidence": confidence}).run_id)
        clock.advance(minutes=1)
    review = project.state("agent")["review"]
    assert [h["id"] for h in review] == [ids[0], ids[2], ids[3]]
    assert review[0]["escalated"] is True
    dropped = next(e for e in project.events("agent") if e["event"] == "review.dropped")
    assert (dropped["id"], dropped["escalated"]) == (ids[1], False)


# -- runs that will not end ------------------------------------------------------------


def test_a_slow_import_is_stopped_by_the_timeout(project, invoke):
    """agent.py that hangs while importing is stopped by the timeout: exit 1, lock released."""
    project.add_agent("agent", "import time\ntime.sleep(600)\n" + HEADER, 'timeout = "1s"\n')
    started = time.monotonic()
    result = invoke("run", "agent")
    assert time.monotonic() - started < 300, "the 600s import was stopped"
    assert result.exit_code == 1
    assert "importing agent.py passed the timeout of 1s" in result.stderr


def test_threads_left_running_keep_the_lock(project, clock):
    """A thread run() leaves behind holds the agent's lock: no second run overlaps it.

    The straggler waits for a file the test writes once it is done, so it is
    surely still running, however slow the machine.
    """
    project.add_agent(
        "agent",
        agent(
            """
import threading, time

def straggle(go):
    while not go.exists():
        time.sleep(0.01)

def run(params: Params, ctx: Context) -> Result:
    threading.Thread(target=straggle, args=(ctx.home / "go",), name="straggler").start()
    return Result(greeting="hi")
"""
        ),
    )
    try:
        first = project.run(clock=clock)
        assert (first.exit_code, first.threads_left) == (0, 1)
        assert "run.threads_left" in project.event_names("agent")
        assert project.run(clock=clock).exit_code == 75, "the straggler still holds the lock"
    finally:
        (project.home / "go").write_text("")
    # In the caller's process, the run's output capture goes once its threads have ended.
    for thread in threading.enumerate():
        if thread.name in {"straggler", "agentops-output-keeper"}:
            thread.join(timeout=120)  # bounds a hang only
    assert real_stderr() is sys.stderr
    sys.stderr.write("after the run\n")
    assert "after the run" not in project.log_path("agent").read_text()


# -- secrets ---------------------------------------------------------------------------


def test_secrets_set_at_import_and_secret_params_are_redacted_everywhere(project, run_agentops):
    """A key from load_dotenv-style code and a secret-named param never reach stderr or files."""
    env_secret, param_secret = "wx7f3a9c2e1b8d4", "8412345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    project.add_agent(
        "agent",
        f"""
import os
from pydantic import BaseModel
os.environ.setdefault("WEATHER_API_KEY", "{env_secret}")

class Params(BaseModel):
    bot_token: str

class Result(BaseModel):
    url: str

def run(params: Params, ctx) -> Result:
    ctx.log.info("calling", url=f"https://api.test/bot{{params.bot_token}}/send")
    ctx.log.info("nested", credentials={{"user": "u", "pass": "hunter3hunter3"}}, password=12345678)
    ctx.state[params.bot_token] = "as a key"
    raise RuntimeError("401 for " + os.environ["WEATHER_API_KEY"] + " and " + params.bot_token)
""",
        f'[params]\nbot_token = "{param_secret}"\n',
    )
    result = run_agentops("run", "agent")
    assert result.returncode == 1
    written = result.stderr + project.log_path("agent").read_text()
    written += project.state_path("agent").read_text()
    for secret in (env_secret, param_secret, "hunter3hunter3", "12345678"):
        assert secret not in written
    nested = next(e for e in project.events("agent") if e["event"] == "nested")
    assert nested["credentials"] == {"user": "[REDACTED]", "pass": "[REDACTED]"}
    assert nested["password"] == "[REDACTED]"
