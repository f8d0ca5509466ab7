"""What a new operator tripped on (issue 19), each in the real command that tripped them.

`init` in an empty directory, `check` judging the environment cron gives a
run, line numbers for every agent.toml problem and one exit code for them
all, "did you mean", `agentops help`, a pause that keeps its reason and one
that ends by itself, and an expected failure shown on a terminal without a
traceback.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
from typing import TYPE_CHECKING

import pytest

from agentops.ops import admin
from agentops.project.home import Project as Home
from agentops.run.options import RunOptions
from agentops.run.runner import run_agent
from suite import AGENTOPS, cron_env, remember

if TYPE_CHECKING:
    from pathlib import Path

# -- init ------------------------------------------------------------------------------------


def test_init_in_an_empty_directory_makes_the_project(tmp_path):
    """The documented start: `agentops init NAME` in a fresh directory; then check and run work."""
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    made = subprocess.run(
        [str(AGENTOPS), "init", "greeter"],
        cwd=fresh,
        env=cron_env(fresh),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    remember("agentops init in an empty directory", made.stdout, made.stderr)
    assert (made.returncode, made.stderr) == (0, "")
    assert made.stdout.splitlines()[0] == f"made a new project in {fresh}"
    assert (fresh / "agents" / "greeter" / "agent.toml").is_file()
    for command in (["check"], ["run", "greeter"]):
        done = subprocess.run(
            [str(AGENTOPS), *command],
            cwd=fresh,
            env=cron_env(fresh),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_init_with_a_home_that_does_not_exist_yet_makes_it(tmp_path):
    """--home to a new directory: made, with agents/NAME in it."""
    home = tmp_path / "not" / "yet"
    made = subprocess.run(
        [str(AGENTOPS), "--home", str(home), "init", "first", "--template", "http"],
        env=cron_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in (home / "agents" / "first").iterdir()) == [
        "agent.py",
        "agent.toml",
        "test_first.py",
    ]


def test_other_commands_still_need_a_project(tmp_path):
    """Only init makes one: a typo'd --home is not silently turned into a project by `run`."""
    result = subprocess.run(
        [str(AGENTOPS), "--home", str(tmp_path / "nope"), "run", "x"],
        env=cron_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 78
    assert "agentops init NAME makes a new project here" in result.stderr
    assert not (tmp_path / "nope").exists()


# -- did you mean, help ----------------------------------------------------------------------


def test_a_mistyped_command_or_agent_says_what_was_meant(project, run_agentops):
    """A command (2) and an agent (78), each one line naming the nearest real one."""
    project.add_agent("publisher")
    command = run_agentops("stauts")
    assert command.returncode == 2
    assert command.stderr == (
        "agentops: No such command 'stauts' (did you mean 'status'?); see agentops --help\n"
    )
    inner = run_agentops("state", "shwo", "publisher")
    assert inner.returncode == 2
    assert "(did you mean 'show'?)" in inner.stderr
    agent = run_agentops("run", "publsher")
    assert agent.returncode == 78
    assert agent.stderr.endswith("agent.toml; did you mean 'publisher'?\n")
    far = run_agentops("run", "zzz")
    assert "did you mean" not in far.stderr


@pytest.mark.usefixtures("project")
def test_help_is_a_command_too(run_agentops):
    """`agentops help [COMMAND]...` prints what `--help` prints; an unknown one is a usage error."""
    assert run_agentops("help").stdout == run_agentops("--help").stdout
    assert "  help " in run_agentops("--help").stdout
    assert (
        run_agentops("help", "state", "show").stdout == run_agentops("state", "show", "-h").stdout
    )
    assert run_agentops("help", "pause").stdout == run_agentops("pause", "--help").stdout
    unknown = run_agentops("help", "stat")
    assert unknown.returncode == 2
    assert "agentops has no command 'stat' (did you mean 'state'?)" in unknown.stderr


# -- one exit code for agent.toml, with its line ---------------------------------------------

NEEDS_A_FEED = """
from pydantic import BaseModel, HttpUrl
from agentops import Context

class Params(BaseModel):
    feed_url: HttpUrl
    limit: int = 5

class Result(BaseModel):
    ok: bool

def run(params: Params, ctx: Context) -> Result:
    return Result(ok=True)
"""


def test_a_missing_required_param_is_a_configuration_error_naming_the_line(project, run_agentops):
    """No feed_url in [params]: 78 as every agent.toml problem, at [params]'s line; -p still 65."""
    project.add_agent("feed", NEEDS_A_FEED, 'description = "x"\n\n[params]\nlimit = 3\n')
    result = run_agentops("run", "feed")
    assert (result.returncode, result.stdout) == (78, "")
    toml = project.home / "agents" / "feed" / "agent.toml"
    assert result.stderr.startswith(f"agentops: {toml}:3: [params] feed_url: Field required")
    assert not project.state_path("feed").exists(), "nothing ran"
    given = run_agentops("run", "feed", "-p", "feed_url=not a url")
    assert given.returncode == 65, "a bad value on the command line is this run's input"
    fixed = run_agentops("run", "feed", "-p", "feed_url=https://example.org/feed")
    assert fixed.returncode == 0, fixed.stderr


def test_check_names_the_line_of_every_problem(project, invoke):
    """Each bad key of agent.toml on its own line; a missing param at [params]; an env file's."""
    project.add_agent(
        "many",
        NEEDS_A_FEED,
        'description = "x"\ntimeout = "soon"\n\n[limits]\nruns = "lots"\n\n[params]\nlimit = 2\n',
    )
    project.add_agent("params", NEEDS_A_FEED, 'description = "x"\n\n[params]\nlimit = 3\n')
    directory = project.add_agent("env", NEEDS_A_FEED, '[params]\nfeed_url = "https://x.org"\n')
    (directory / ".env").write_text("# fine\nGOOD=1\nnot an assignment\n")
    (project.home / ".env").write_text("SHARED='open\n")
    result = invoke("check", "--json")
    assert result.exit_code == 78
    problems = json.loads(result.stdout)
    found = {(p["file"], p["line"], p["problem"].split(":")[0]) for p in problems}
    assert found == {
        (".env", 1, "SHARED"),
        ("agents/env/.env", 3, "not NAME=value (a comment starts with #)"),
        ("agents/many/agent.toml", 2, "timeout"),
        ("agents/many/agent.toml", 5, "limits.runs"),
        ("agents/params/agent.toml", 3, "[params] feed_url"),
    }
    assert len(problems) == len(found), "the project's .env is said once, not once an agent"


# -- check judges the environment cron gives a run -------------------------------------------

MODELS = """
[providers.local]
base_url = "http://127.0.0.1:9/v1"
api_key_env = "LOCAL_LLM_API_KEY"

[models.small]
provider = "local"
name = "small-1"
"""

QUIET = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    ok: bool

def run(params: Params, ctx: Context) -> Result:
    return Result(ok=True)
"""


def test_check_judges_a_scheduled_agent_in_crons_environment_not_the_shells(project, run_agentops):
    """A key in the shell only: a problem for the scheduled agent (with the fix), none by hand."""
    (project.home / "agentops.toml").write_text(MODELS)
    project.add_agent("nightly", QUIET, 'schedule = "@daily"\n[llm]\nmodel = "small"\n')
    project.add_agent("byhand", QUIET, '[llm]\nmodel = "small"\n')
    shell = cron_env(project.home, LOCAL_LLM_API_KEY="sk-in-the-shell-only-0123456789")
    result = run_agentops("check", env=shell)
    assert result.returncode == 78
    problem, note = result.stdout.splitlines()
    assert problem == (
        "agents/nightly/agent.toml:3: [llm] small: $LOCAL_LLM_API_KEY is not set for local in "
        "the environment cron runs it with (only this shell has it): put it in "
        "agents/nightly/.env or .env"
    )
    assert note.startswith(f"note: cron runs none of the 1 scheduled agent(s) of {project.home}: ")
    assert note.endswith(" for it (agentops cron --install puts it there)")
    (project.home / "agents" / "nightly" / ".env").write_text(
        "LOCAL_LLM_API_KEY=sk-in-the-env-file-0123456789\n"
    )
    fixed = run_agentops("check", env=shell)
    assert fixed.returncode == 0, fixed.stdout
    assert fixed.stdout.splitlines()[0] == "2 agent(s), no problem found"


# -- pause -----------------------------------------------------------------------------------


def test_a_second_pause_keeps_the_reason_and_end_it_is_not_given(project, run_agentops):
    """pause --reason, then pause --until: both kept; status says them."""
    project.add_agent("hello")
    assert run_agentops("pause", "hello", "--reason", "db migration").returncode == 0
    again = run_agentops("pause", "hello", "--until", "2h")
    assert again.returncode == 0
    assert again.stdout.startswith("hello: paused until ")
    assert again.stdout.endswith(" (db migration)\n")
    [row] = json.loads(run_agentops("status", "hello", "--json").stdout)
    assert row["paused"]["reason"] == "db migration"
    assert row["paused"]["until"] is not None
    assert row["why"].startswith("paused until ")
    for bad in ("2020-01-01", "soon", "2201-01-01", "9999-12-31T23:59", "99999d"):
        refused = run_agentops("pause", "hello", "--until", bad)
        assert (refused.returncode, refused.stdout) == (2, ""), bad
        [line] = refused.stderr.splitlines()  # not pydantic's dump, nor exit 70
        assert line.startswith("agentops: "), line
    [row] = json.loads(run_agentops("status", "hello", "--json").stdout)
    assert row["paused"]["reason"] == "db migration", "a refused pause changes nothing"


def test_a_pause_until_ends_by_itself(project, clock):
    """Runs are skipped (75) until the moment passes; then they run, with nobody resuming."""
    project.add_agent("hello")
    home = Home(project.home)
    options = RunOptions(clock=clock, environ={})
    paused = admin.pause(home, "hello", until=clock.now.replace(hour=14), options=options)
    assert paused.message == "hello: paused until 2026-11-22T14:00:00Z"
    assert run_agent(home, "hello", options=options).exit_code == 75
    clock.advance(hours=1, minutes=59)
    assert run_agent(home, "hello", options=options).exit_code == 75
    clock.advance(minutes=1)
    assert run_agent(home, "hello", options=options).exit_code == 0
    fresh = admin.pause(home, "hello", reason="new", options=options)
    assert fresh.message == "hello: paused (new)", "an ended pause leaves no end to a new one"


# -- an expected failure on a terminal --------------------------------------------------------

FAILS = """
import httpx
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    bug: bool = False

class Result(BaseModel):
    ok: bool

def run(params: Params, ctx: Context) -> Result:
    if params.bug:
        return {}["missing"]
    raise httpx.ConnectError("[Errno 111] Connection refused")
"""


def on_a_terminal(home: Path, *args: str) -> str:
    """What `agentops ARGS` shows on a terminal (stdout and stderr both on a pty)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [str(AGENTOPS), "--home", str(home), *args],
        stdout=follower,
        stderr=follower,
        stdin=subprocess.DEVNULL,
        env={**cron_env(home), "TERM": "dumb"},
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    process.wait(timeout=120)
    shown = b"".join(chunks).decode(errors="replace")
    remember(f"agentops {' '.join(args)} on a terminal", shown)
    return shown


@pytest.mark.parametrize(("bug", "traceback"), [(False, False), (True, True)])
def test_a_terminal_shows_a_traceback_for_a_bug_only(project, bug, traceback):
    """ConnectError: one line, no traceback (the log keeps it); a KeyError: the traceback."""
    project.add_agent("net", FAILS, "[retry]\nattempts = 1\n")
    shown = on_a_terminal(project.home, "run", "net", "-p", f"bug={bug}")
    assert "run.failed" in shown
    assert ("Traceback (most recent call last)" in shown) is traceback
    failed = next(e for e in project.events("net") if e["event"] == "run.failed")
    assert failed["category"] == ("error" if bug else "connection")
    assert "Traceback (most recent call last)" in failed["exception"], "the log keeps it"
