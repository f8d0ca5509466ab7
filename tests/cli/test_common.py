"""What every command shares: one line on stderr and its exit code, never a traceback.

A click app made here, of commands that raise what the core raises, shows
the machinery on its own; tests/cli/test_cli.py holds the real app to it.
"""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from agentops.cli._common import (
    OneLineErrors,
    clip,
    command_tree,
    local_time,
    reports_errors,
    short_time,
)
from agentops.errors import ConfigError, StateError
from leakscan import FAKE_SECRETS


@click.group(cls=OneLineErrors)
def app() -> None:
    """A toy app."""


@app.command()
@click.argument("what")
@reports_errors
def fail(what: str) -> None:
    """Raise what the core would."""
    if what == "config":
        raise ConfigError("agents/x/agent.toml: bad\n  key")
    if what == "state":
        raise StateError("state/x.json: not JSON")
    if what == "secret":
        raise ConfigError("refused " + FAKE_SECRETS["FAKE_OPENAI_KEY"])
    raise ZeroDivisionError("a bug")


@app.group()
def nested() -> None:
    """A group of its own."""


@nested.command()
def leaf() -> None:
    """A leaf."""
    click.echo("leaf ran")


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), prog_name="toy")


@pytest.mark.parametrize(
    ("what", "code", "line"),
    [
        ("config", 78, "agentops: agents/x/agent.toml: bad key\n"),
        ("state", 74, "agentops: state/x.json: not JSON\n"),
        (
            "bug",
            70,
            "agentops: internal error: ZeroDivisionError: a bug (a bug: please report it)\n",
        ),
    ],
)
def test_an_error_is_one_line_and_its_exit_code(what, code, line):
    """AgentOpsError: its message, its code; anything else: 70, still one line."""
    result = invoke("fail", what)
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", line)


def test_the_line_said_is_redacted():
    """A secret of the environment in an error never reaches cron's mail."""
    result = invoke("fail", "secret")
    assert FAKE_SECRETS["FAKE_OPENAI_KEY"] not in result.stderr
    assert "[REDACTED]" in result.stderr


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["nope"], "agentops: No such command 'nope'; see toy --help\n"),
        (["fail"], "agentops: Missing argument 'WHAT'; see toy fail --help\n"),
        (["nested"], "agentops: Missing command; see toy nested --help\n"),
    ],
)
def test_a_command_line_mistake_is_one_line_naming_the_help_exit_2(args, line):
    """Click's three lines of usage become one, pointing at the help that explains."""
    result = invoke(*args)
    assert (result.exit_code, result.stderr) == (2, line)


def test_the_tree_walks_every_command_and_group_in_order():
    """command_tree names each command by the words that call it."""
    assert [words for words, _ in command_tree(app)] == [
        ("fail",),
        ("nested",),
        ("nested", "leaf"),
    ]


def test_commands_of_the_real_app_are_imported_only_when_they_run():
    """Cron pays start-up each tick: `agentops run` does not import the report's module."""
    code = (
        "import sys; from agentops.cli import main; "
        "print('agentops.cli.report' in sys.modules, 'agentops.cli.run' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.split() == ["False", "False"]


def test_times_and_cells_for_people():
    """ISO stamps become short times ('-' for none); long cells end in an ellipsis."""
    assert short_time("2026-11-22T03:10:00+00:00") == "2026-11-22 03:10 +0000"
    assert short_time(None) == "-"
    assert local_time(None) == "-"
    assert len(local_time("2026-11-22T03:10:00+00:00")) == len("2026-11-22 03:10")
    assert clip("abcdef", 4) == "abc…"
    assert clip("abc", 4) == "abc"
