"""Agents that misbehave, and inputs that are almost right: each fails cleanly.

These pin the defects an adversarial review found: runs that could hang past
their timeout or outlive their lock, output checks that could be bypassed,
secrets that reached stderr, and output that made cron mail a success.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from agentops.project import Project as AgentopsProject
from agentops.runner import run_agent
from conftest import AGENTOPS, cron_env

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


def run(project, name="agent", **kwargs):
    return run_agent(AgentopsProject(project.home), name, environ={}, **kwargs)


# -- params and output ---------------------------------------------------------------


def test_a_typo_in_params_is_refused(project, run_agentops):
    """An unknown key in [params] is a configuration error (78), in -p a rejection (65)."""
    project.add_agent("agent", GREETS, '[params]\nnmae = "x"\n')
    toml_typo = run_agentops("run", "agent")
    assert toml_typo.returncode == 78
    assert "agent.toml: [params] nmae: unknown param" in toml_typo.stderr
    assert "nmae: unknown param" in toml_typo.stderr
    project.add_agent("agent", GREETS)
    flag_typo = run_agentops("run", "agent", "-p", "nmae=x")
    assert flag_typo.returncode == 65
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
    outcome = run(project, clock=clock, overrides={"colour": "blue"})
    assert outcome.exit_code == 0
    assert project.events("agent")[-1]["result"] == {"extra": {"colour": "blue"}}


def test_a_validator_that_raises_anything_is_a_rejection(project, run_agentops):
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
    result = run_agentops("run", "agent", "-p", "inbox=/nope/nowhere")
    assert result.returncode == 65
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
    outcome = run(project, clock=clock)
    if expected is None:
        assert outcome.exit_code == 0
    else:
        assert outcome.exit_code == 65
        assert expected in outcome.message


def test_a_result_that_is_not_json_is_rejected(project, clock):
    """A Result holding bytes that are not text cannot be logged or held: rejected."""
    project.add_agent(
        "agent",
        """
        from pydantic import BaseModel

        class Params(BaseModel):
            pass

        class Result(BaseModel):
            payload: bytes

        def run(params: Params, ctx) -> Result:
            return Result(payload=b"\\xff\\xfe")
        """,
    )
    outcome = run(project, clock=clock)
    assert outcome.exit_code == 65
    assert "not JSON" in outcome.message
    assert project.state("agent")["last_run"]["status"] == "rejected"


@pytest.mark.parametrize(
    "raise_it",
    [
        "raise SystemExit(3)",
        "raise KeyboardInterrupt",
        "import asyncio; raise asyncio.CancelledError",
    ],
)
def test_any_way_out_of_run_is_a_recorded_failure(project, run_agentops, raise_it):
    """sys.exit, KeyboardInterrupt or CancelledError from run(): exit 1, one line, recorded."""
    project.add_agent(
        "agent", agent(f"def run(params: Params, ctx: Context) -> Result:\n    {raise_it}\n")
    )
    result = run_agentops("run", "agent")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert project.state("agent")["last_run"]["status"] == "failed"
    assert project.event_names("agent")[-1] == "run.finished"


def test_ctx_state_must_stay_a_dict(project, run_agentops):
    """Replacing ctx.state with a list fails the run; the state file stays readable."""
    project.add_agent("agent", run_body("ctx.state = ['x']", "return Result(greeting='hi')"))
    assert run_agentops("run", "agent").returncode == 1
    assert "ctx.state must stay a dict" in project.state("agent")["last_run"]["error"]
    second = run_agentops("run", "agent")
    assert second.returncode == 1, "fails the same way, not with exit 74"


# -- agent code ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "definition",
    [
        "async def run(params: Params, ctx: Context) -> Result: ...",
        "def run(params: Params, ctx: Context) -> Result:\n    yield 1",
    ],
    ids=["async", "generator"],
)
def test_async_or_generator_run_is_a_configuration_error(project, run_agentops, definition):
    """run() must be a plain function: exit 78 before anything runs."""
    project.add_agent("agent", agent(definition + "\n"))
    result = run_agentops("run", "agent")
    assert result.returncode == 78
    assert "must be a plain function" in result.stderr
    assert result.stderr.count("\n") == 1


def test_an_imported_function_named_like_a_hook_is_not_a_hook(project, clock):
    """`from somewhere import validate` does not become the agent's validate() hook."""
    (project.home / "helpers").mkdir()
    (project.home / "helpers" / "checks.py").write_text(
        "def validate(a, b):\n    raise ValueError('not me')\n"
    )
    helpers = str(project.home / "helpers")
    imports = f"import sys\nsys.path.insert(0, {helpers!r})\nfrom checks import validate\n"
    project.add_agent("agent", imports + GREETS)
    assert run(project, clock=clock).exit_code == 0


def test_a_byte_order_mark_in_agent_toml_is_fine(project, clock):
    """An editor's BOM at the start of agent.toml is not a TOML error."""
    directory = project.add_agent("agent", GREETS)
    (directory / "agent.toml").write_bytes(b'\xef\xbb\xbf[params]\nname = "bom"\n')
    assert run(project, clock=clock).exit_code == 0


def test_timeout_zero_is_refused(project, run_agentops):
    """timeout = 0 is a configuration error, not a run stopped after a millisecond."""
    project.add_agent("agent", toml="timeout = 0\n")
    result = run_agentops("run", "agent")
    assert result.returncode == 78
    assert "timeout: must be longer than zero" in result.stderr


# -- quiet under cron ----------------------------------------------------------------

NOISY = agent(
    """
import logging, sys, warnings

print("at import")

def run(params: Params, ctx: Context) -> Result:
    print("hello from print")
    print("to stderr", file=sys.stderr)
    warnings.warn("careful")
    logging.getLogger("somelib").warning("a library speaks")
    return Result(greeting="hi")
"""
)


def test_what_an_agent_prints_goes_to_the_log_not_to_cron(project, run_agentops):
    """print, stderr, warnings and stray logging from a successful run: nothing printed."""
    project.add_agent("agent", NOISY)
    result = run_agentops("run", "agent")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    lines = [
        (e["stream"], e["line"]) for e in project.events("agent") if e["event"] == "agent.output"
    ]
    assert ("stdout", "at import") in lines
    assert ("stdout", "hello from print") in lines
    assert ("stderr", "to stderr") in lines
    assert any("careful" in line for stream, line in lines if stream == "stderr")
    assert ("stderr", "a library speaks") in lines


# -- runs that will not end -----------------------------------------------------------


def test_a_slow_import_is_stopped_by_the_timeout(project, run_agentops):
    """agent.py that hangs while importing is stopped by the timeout: exit 1, lock released."""
    project.add_agent("agent", "import time\ntime.sleep(30)\n" + HEADER, 'timeout = "1s"\n')
    started = time.monotonic()
    result = run_agentops("run", "agent")
    assert time.monotonic() - started < 15
    assert result.returncode == 1
    assert "importing agent.py passed the timeout of 1s" in result.stderr


STUBBORN = agent(
    """
import time

def run(params: Params, ctx: Context) -> Result:
    (ctx.home / "started").write_text("")
    while True:
        try:
            time.sleep(0.2)
        except:  # noqa: E722 - swallows even the stop
            pass
"""
)


def test_agent_code_that_swallows_every_stop_is_abandoned(project, run_agentops):
    """A bare except around a sleep loop: the process exits, the next run recovers it."""
    project.add_agent("agent", STUBBORN, 'timeout = "1s"\n')
    started = time.monotonic()
    result = run_agentops("run", "agent", timeout=60)
    assert time.monotonic() - started < 20
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "run abandoned: timeout" in result.stderr
    project.add_agent("agent", GREETS)
    assert run_agentops("run", "agent").returncode == 0
    names = project.event_names("agent")
    assert "run.abandoned" in names
    assert "run.recovered" in names


def test_threads_left_running_keep_the_lock(project, clock):
    """A thread run() leaves behind holds the agent's lock: no second run overlaps it."""
    project.add_agent(
        "agent",
        agent(
            """
import threading, time

def run(params: Params, ctx: Context) -> Result:
    threading.Thread(target=time.sleep, args=(1.5,), name="straggler").start()
    return Result(greeting="hi")
"""
        ),
    )
    first = run(project, clock=clock)
    assert (first.exit_code, first.threads_left) == (0, 1)
    assert "run.threads_left" in project.event_names("agent")
    assert run(project, clock=clock).exit_code == 75, "the straggler still holds the lock"


def test_the_cli_does_not_wait_for_threads_left_running(project):
    """The CLI exits when the run ends; the thread's late side effect never happens."""
    project.add_agent(
        "agent",
        agent(
            """
import threading, time

def late(home):
    time.sleep(5)
    (home / "late-effect").write_text("")

def run(params: Params, ctx: Context) -> Result:
    threading.Thread(target=late, args=(ctx.home,)).start()
    return Result(greeting="hi")
"""
        ),
    )
    started = time.monotonic()
    result = subprocess.run(
        [str(AGENTOPS), "--home", str(project.home), "run", "agent"],
        env=cron_env(project.home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert time.monotonic() - started < 4
    time.sleep(5.5)
    assert not (project.home / "late-effect").exists()


def test_a_run_killed_midway_still_counts_for_the_rate_limit(project):
    """runs = "1/hour": a run killed with SIGKILL counted; the next one is skipped (75)."""
    project.add_agent(
        "agent",
        agent(
            "import time\n\ndef run(params: Params, ctx: Context) -> Result:\n    time.sleep(30)\n"
        ),
        '[limits]\nruns = "1/hour"\n',
    )
    command = [str(AGENTOPS), "--home", str(project.home), "run", "agent"]
    proc = subprocess.Popen(command, env=cron_env(project.home))
    journal = project.home / "state" / "agent.journal"
    deadline = time.monotonic() + 30
    while not journal.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    second = subprocess.run(
        command, env=cron_env(project.home), capture_output=True, text=True, check=False
    )
    assert second.returncode == 75
    state = project.state("agent")
    assert state["last_run"]["status"] == "crashed"
    assert len(state["rate_limits"]["runs"]) == 1


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


def test_internal_errors_are_redacted_too(project, run_agentops):
    """Even the one line of an unexpected error hides secrets from the environment."""
    project.add_agent(
        "agent",
        """
import os
from pydantic import BaseModel

class Params(BaseModel):
    pass

class Result(BaseModel):
    ok: bool

def run(params: Params, ctx) -> Result:
    raise RuntimeError("token " + os.environ["GITHUB_TOKEN"])
""",
    )
    token = "ghp_" + "a1" * 18
    result = run_agentops("run", "agent", env=cron_env(project.home, GITHUB_TOKEN=token))
    assert result.returncode == 1
    assert token not in result.stderr
    assert "[REDACTED]" in result.stderr


# -- operator views ----------------------------------------------------------------------


def test_list_shows_the_next_run_in_local_time(project):
    """Cron reads schedules in local time, so list does too (with the offset)."""
    project.add_agent("nightly", toml='schedule = "0 3 * * *"\n')
    result = subprocess.run(
        [str(AGENTOPS), "--home", str(project.home), "list", "--json"],
        env=cron_env(project.home, TZ="America/New_York"),
        capture_output=True,
        text=True,
        check=True,
    )
    [row] = json.loads(result.stdout)
    assert row["next_run"].endswith(("T03:00:00-05:00", "T03:00:00-04:00"))
