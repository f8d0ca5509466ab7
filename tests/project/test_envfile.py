"""Env files: `.env` at the home and in an agent's folder, read strictly, loaded by every run.

The values written here are secrets of this module's own (the session's fake
secrets may not be written to a file: the end-of-session scan would find
them), so each test looks for its own values in what the run wrote.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentops.errors import ConfigError
from agentops.project.envfile import parse_env
from agentops.project.home import Project as Home
from agentops.run.runner import run_agent

# Named like nothing secret, shaped like nothing secret: only the env file says it is one.
PLAIN_SECRET = "plain-Quokka7-Marmalade42"
KEY_SECRET = "sk-envfileTestKeyQuokka7Marmalade42xyz"

SHOWS_ENV = """
import os
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    said: str

def run(params: Params, ctx: Context) -> Result:
    seen = {name: os.environ.get(name) for name in ("FEED_SECRET", "WHO", "ONLY_PROJECT")}
    ctx.state["lengths"] = {name: len(value or "") for name, value in seen.items()}
    ctx.state["who"] = seen["WHO"]
    ctx.log.info("agent.saw", secret=seen["FEED_SECRET"])
    print("the secret is", seen["FEED_SECRET"])
    return Result(said=f"{seen['WHO']} {seen['FEED_SECRET']}")
"""


def test_the_format_read_strictly():
    """Comments, blanks, export, both quotes and their escapes; no expansion, one line a value."""
    text = """
# a comment
export A=plain value
B = "two\\twords \\"quoted\\" \\$HOME"  # a comment after the quote
C='$HOME \\n stays'
D=
E=a#b
\ufeffF=x
"""
    assert parse_env(text.replace("\ufeff", ""), where=".env") == {
        "A": "plain value",
        "B": 'two\twords "quoted" $HOME',
        "C": "$HOME \\n stays",
        "D": "",
        "E": "a#b",
        "F": "x",
    }


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("NOT AN ASSIGNMENT", "not NAME=value"),
        ("1X=y", "not NAME=value"),
        ('A="open', "the double quote is not closed"),
        ("A='open", "the single quote is not closed"),
        ('A="x" y', "text after the closing quote"),
        ("A=x # comment", "' #' in an unquoted value"),
        ("A=it's", "a quote inside an unquoted value"),
        ('A="\\q"', "unknown escape"),
        ("A=1\nA=2", "A is set already, on line 2"),
    ],
)
def test_a_line_it_cannot_read_is_a_config_error_naming_file_and_line(line, why):
    """One line: the file, the line number and why; never the value (it may be a secret)."""
    text = f"# first\n{line}\n"
    with pytest.raises(ConfigError) as caught:
        parse_env(text, where="agents/x/.env")
    message = caught.value.message
    assert caught.value.exit_code == 78
    number = 3 if why.startswith("A is set") else 2
    assert message.startswith(f"agents/x/.env:{number}: ")
    assert why in message
    assert "\n" not in message


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
values = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=30)


@given(st.dictionaries(names, values, max_size=6))
def test_what_a_double_quoted_file_says_is_read_back(variables):
    """Any one-line value, written double-quoted with its escapes, reads back exactly."""

    def quoted(value: str) -> str:
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
        return '"' + escaped.replace("\t", "\\t") + '"'

    text = "".join(f"{name}={quoted(value)}\n" for name, value in variables.items())
    assert parse_env(text, where=".env") == variables


def write_env(path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


def test_a_run_from_cron_sees_the_env_files_the_agents_overriding_the_projects(
    project, run_agentops
):
    """Cron's bare environment plus .env and agents/x/.env: the agent reads them, secrets hidden."""
    directory = project.add_agent("reader", SHOWS_ENV)
    write_env(project.home / ".env", f"WHO=project\nONLY_PROJECT=yes\nFEED_SECRET={KEY_SECRET}\n")
    write_env(directory / ".env", f'export WHO=agent\nFEED_SECRET="{PLAIN_SECRET}"\n')
    result = run_agentops("run", "reader")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    data = project.state("reader")["data"]
    assert data["who"] == "agent", "the agent's file overrides the project's"
    assert data["lengths"] == {"FEED_SECRET": len(PLAIN_SECRET), "WHO": 5, "ONLY_PROJECT": 3}
    written = project.log_path("reader").read_text() + project.state_path("reader").read_text()
    assert PLAIN_SECRET not in written, "an env file's value is a secret, whatever its name"
    events = project.events("reader")
    assert next(e for e in events if e["event"] == "agent.saw")["secret"] == "[REDACTED]"
    assert next(e for e in events if e["event"] == "run.finished")["result"] == {
        "said": "agent [REDACTED]"
    }


def test_an_env_file_wins_over_the_environment_the_run_was_started_with(project, run_agentops):
    """A run by hand sees what cron's run sees: the file's value, not the shell's."""
    directory = project.add_agent("reader", SHOWS_ENV)
    write_env(directory / ".env", "WHO=file\n")  # short: a value under 8 characters is shown
    from suite import cron_env  # noqa: PLC0415

    result = run_agentops("run", "reader", env=cron_env(project.home, WHO="shell"))
    assert result.returncode == 0, result.stderr
    assert project.state("reader")["data"]["who"] == "file"


def test_a_bad_env_file_stops_the_run_with_one_line_and_writes_nothing(project, run_agentops):
    """78, `file:line: why`, the value never said, no state and no log written."""
    directory = project.add_agent("reader", SHOWS_ENV)
    write_env(directory / ".env", f"# the token\nFEED_SECRET={PLAIN_SECRET} # old\n")
    result = run_agentops("run", "reader")
    assert result.returncode == 78
    assert result.stderr == (
        f"agentops: {directory / '.env'}:2: FEED_SECRET: ' #' in an unquoted value: "
        "quote the value, or put the comment alone\n"
    )
    assert PLAIN_SECRET not in result.stderr
    assert not (project.home / "state").exists()
    assert not (project.home / "logs").exists()


@pytest.mark.parametrize("where", ["project", "agent"])
def test_a_fifo_where_an_env_file_goes_is_refused_never_waited_on(project, run_agentops, where):
    """A FIFO (reading it waits for a writer, forever) at either .env: 78 in one line, no run."""
    directory = project.add_agent("reader", SHOWS_ENV)
    fifo = (project.home if where == "project" else directory) / ".env"
    os.mkfifo(fifo)
    result = run_agentops("run", "reader")  # a wait would be caught by its timeout
    assert result.returncode == 78
    assert result.stderr == (f"agentops: {fifo}: cannot read: it is a FIFO, not a regular file\n")
    assert not (project.home / "state").exists()


def test_the_test_kit_leaves_the_agents_env_file_behind(project):
    """AgentHarness: env= is the environment; the agent's .env (its real secrets) is not copied."""
    from agentops.testing import AgentHarness  # noqa: PLC0415

    directory = project.add_agent("reader", SHOWS_ENV)
    write_env(directory / ".env", f"FEED_SECRET={PLAIN_SECRET}\nWHO=file\n")
    with AgentHarness(directory, env={}) as agent:
        assert not (agent.home / "agents" / "reader" / ".env").exists()
        run = agent.run()
        assert run.exit_code == 0, run.outcome.message
        assert run.state["lengths"]["FEED_SECRET"] == 0


NEEDS_A_KEY = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    ok: bool

def run(params: Params, ctx: Context) -> Result:
    return Result(ok=True)
"""

MODELS = """
[providers.local]
base_url = "http://127.0.0.1:9/v1"
api_key_env = "LOCAL_LLM_API_KEY"

[models.small]
provider = "local"
name = "small-1"
"""


def test_in_process_runs_get_the_files_in_the_environ_they_are_given(project, clock):
    """RunOptions.environ plus the env files: a provider's key from agents/x/.env is found."""
    import os  # noqa: PLC0415

    (project.home / "agentops.toml").write_text(MODELS)
    directory = project.add_agent("asks", NEEDS_A_KEY, '[llm]\nmodel = "small"\n')
    home = Home(project.home)
    missing = run_agent(home, "asks", environ={}, clock=clock)
    assert missing.exit_code == 78
    assert "$LOCAL_LLM_API_KEY is not set" in missing.message
    write_env(directory / ".env", f"LOCAL_LLM_API_KEY={KEY_SECRET}\n")
    found = run_agent(home, "asks", environ={}, clock=clock)
    assert found.exit_code == 0, found.message
    assert "LOCAL_LLM_API_KEY" not in os.environ, "an in-process run leaves os.environ alone"
