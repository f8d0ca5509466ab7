"""The run step by step, in-process: gates, statuses, state and log records."""

from __future__ import annotations

import time

import pytest

from agentops.errors import UnknownAgent
from agentops.project import Project as AgentopsProject
from agentops.runner import run_agent

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


def run(project, name="agent", **kwargs):
    return run_agent(AgentopsProject(project.home), name, environ={}, **kwargs)


def test_success_records_the_run_in_state_and_log(project, clock):
    """A good run exits 0 and leaves last_run, metrics, data and two log lines."""
    project.add_agent("agent", COUNTER)
    outcome = run(project, clock=clock)
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
    run(project, clock=clock)
    run(project, clock=clock, overrides={"n": "5"})
    assert project.state("agent")["data"] == {"total": 6}


def test_bad_params_execute_nothing_and_save_nothing(project, clock):
    """Params rejected: exit 65, run() never called, no state written, gate.rejected logged."""
    project.add_agent("agent", COUNTER)
    outcome = run(project, clock=clock, overrides={"n": "99"})
    assert (outcome.status, outcome.exit_code) == ("rejected", 65)
    assert "n: Input should be less than or equal to 10" in outcome.message
    assert not (project.home / "executed").exists()
    assert not project.state_path("agent").exists()
    rejected = project.events("agent")[0]
    assert rejected["event"] == "gate.rejected"
    assert rejected["stage"] == "params"
    assert project.event_names("agent")[-1] == "run.aborted"


def test_params_from_toml_are_validated_too(project, clock):
    """A bad [params] value in agent.toml is rejected like a bad -p."""
    project.add_agent("agent", COUNTER, "[params]\nn = 0\n")
    assert run(project, clock=clock).exit_code == 65


ROLLBACK = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    verdict: str = "ok"

class Result(BaseModel):
    count: int

def run(params: Params, ctx: Context) -> Result:
    ctx.state["touched"] = True
    if params.verdict == "not-a-model":
        return {"count": "many"}
    return Result(count=3)

def validate(result: Result, ctx: Context) -> None:
    if ctx.state.get("touched") and (ctx.home / "reject").exists():
        raise ValueError("count looks wrong")

def rollback(result, ctx: Context) -> None:
    (ctx.home / "rolled-back").write_text(repr(result))
"""


def test_validate_rejection_calls_rollback_and_keeps_old_data(project, clock):
    """validate() raising rejects the output (65), calls rollback() and discards ctx.state."""
    project.add_agent("agent", ROLLBACK)
    (project.home / "reject").write_text("")
    outcome = run(project, clock=clock)
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
    outcome = run(project, clock=clock, overrides={"verdict": "not-a-model"})
    assert outcome.exit_code == 65
    assert "count: Input should be a valid integer" in outcome.message
    assert (project.home / "rolled-back").read_text() == "{'count': 'many'}"


FAILING = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    ok: bool

def run(params: Params, ctx: Context) -> Result:
    ctx.state["half-done"] = True
    raise RuntimeError("the feed is down")
"""


def test_failure_exits_1_records_error_and_traceback(project, clock):
    """run() raising: exit 1, status failed, the error in state, the traceback in the log."""
    project.add_agent("agent", FAILING)
    outcome = run(project, clock=clock)
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


SLOW = """
import time
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    mode: str = "sleep"

class Result(BaseModel):
    ok: bool

def run(params: Params, ctx: Context) -> Result:
    if params.mode == "sleep":
        time.sleep(30)
    elif params.mode == "swallow":
        while True:
            try:
                time.sleep(30)
            except Exception:
                pass
    elif params.mode == "stubborn":
        for _ in range(3):
            try:
                time.sleep(30)
            except BaseException:
                pass
        time.sleep(30)
    elif params.mode == "sigterm":
        import os, signal
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
    return Result(ok=True)
"""


@pytest.mark.parametrize("mode", ["sleep", "swallow", "stubborn"])
def test_timeout_stops_the_run(project, clock, mode):
    """A run past its timeout ends with status timeout, even if it catches exceptions."""
    project.add_agent("agent", SLOW, 'timeout = "0.3s"\n')
    started = time.monotonic()
    outcome = run(project, clock=clock, overrides={"mode": mode})
    assert time.monotonic() - started < 10
    assert (outcome.status, outcome.exit_code) == ("timeout", 1)
    assert "passed the timeout of 0.3s" in outcome.message
    assert project.state("agent")["last_run"]["status"] == "timeout"


def test_sigterm_interrupts_the_run(project, clock):
    """SIGTERM during run() ends it as interrupted, with state saved."""
    project.add_agent("agent", SLOW)
    outcome = run(project, clock=clock, overrides={"mode": "sigterm"})
    assert (outcome.status, outcome.exit_code) == ("interrupted", 1)
    assert "SIGTERM" in outcome.message
    assert project.state("agent")["last_run"]["status"] == "interrupted"


def test_run_rate_limit_is_a_sliding_window(project, clock):
    """runs = "2/hour": the third run in an hour is skipped (75) until the window slides."""
    project.add_agent("agent", COUNTER, '[limits]\nruns = "2/hour"\n')
    assert run(project, clock=clock).exit_code == 0
    clock.advance(minutes=30)
    assert run(project, clock=clock).exit_code == 0
    clock.advance(minutes=29)
    skipped = run(project, clock=clock)
    assert (skipped.status, skipped.exit_code) == ("skipped", 75)
    assert "room again in 60s" in skipped.message
    state = project.state("agent")
    assert state["metrics"]["skipped"] == 1
    assert state["metrics"]["runs"] == 2
    assert project.events("agent")[-1]["reason"] == "rate_limit"
    clock.advance(minutes=1, seconds=1)
    assert run(project, clock=clock).exit_code == 0


def test_zero_rate_never_runs(project, clock):
    """runs = "0/hour" is a way to stop an agent: every run is skipped."""
    project.add_agent("agent", COUNTER, '[limits]\nruns = "0/day"\n')
    outcome = run(project, clock=clock)
    assert outcome.exit_code == 75
    assert "allows no runs" in outcome.message


def test_dry_run_runs_but_saves_nothing(project, clock):
    """--dry-run: run() sees ctx.dry_run and the state file is not written."""
    project.add_agent(
        "agent",
        COUNTER.replace('write_text("yes")', "write_text(str(ctx.dry_run))"),
        '[limits]\nruns = "1/hour"\n',
    )
    outcome = run(project, clock=clock, dry_run=True)
    assert outcome.exit_code == 0
    assert (project.home / "executed").read_text() == "True"
    assert not project.state_path("agent").exists()
    assert project.events("agent")[0]["dry_run"] is True
    assert run(project, clock=clock, dry_run=True).exit_code == 0, "dry runs use no rate"


def test_state_value_that_is_not_json_fails_the_run_cleanly(project, clock):
    """Putting a non-JSON value in ctx.state fails the run and keeps the old state."""
    project.add_agent("agent", COUNTER)
    run(project, clock=clock)
    project.add_agent(
        "agent",
        COUNTER.replace(
            'ctx.state["total"] = ', 'ctx.state["bad"] = object(); ctx.state["total"] = '
        ),
    )
    outcome = run(project, clock=clock)
    assert outcome.exit_code == 1
    assert "ctx.state holds a value that is not JSON" in outcome.message
    assert project.state("agent")["data"] == {"total": 1}


def test_unknown_agent_raises_and_writes_nothing(project, clock):
    """An unknown agent is an error before any file is created."""
    with pytest.raises(UnknownAgent) as caught:
        run(project, "ghost", clock=clock)
    assert caught.value.exit_code == 78
    assert not (project.home / "logs").exists()
    assert not (project.home / "state").exists()


def test_config_error_is_logged_as_aborted(project, clock):
    """A broken agent.toml is exit 78, logged as run.aborted; no state is written."""
    project.add_agent("agent", COUNTER, "timeout = 'soon'\n")
    outcome = run(project, clock=clock)
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
    outcome = run(project, clock=clock)
    assert outcome.exit_code == 74
    assert str(project.state_path("agent")) in outcome.message
    assert "metrics.runs" in outcome.message
    assert project.snapshot() == before
    assert not (project.home / "executed").exists()


def test_secrets_never_reach_state_or_log(project, clock):
    """An API key from the environment is redacted in ctx.state and in the log."""
    project.add_agent(
        "agent",
        """
        import os
        from pydantic import BaseModel
        from agentops import Context

        class Params(BaseModel):
            pass

        class Result(BaseModel):
            echoed: str

        def run(params: Params, ctx: Context) -> Result:
            key = os.environ["SERVICE_API_KEY"]
            ctx.state["leak"] = f"key={key}"
            ctx.log.info("agent.leaking", value=key, password="hunter22")
            return Result(echoed=key)
        """,
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
    outcome = run(project, clock=clock)
    assert (outcome.status, outcome.exit_code) == ("interrupted", 1)
    assert "rollback() interrupted by SIGTERM" in outcome.message
    assert "rollback.failed" not in project.event_names("agent")
