"""The click app: help everywhere, output under cron, one-line errors, exit codes."""

from __future__ import annotations

import json
import re

import click
import pytest
from click.testing import CliRunner

from agentops import __version__
from agentops.cli import main
from agentops.cli._common import command_tree
from suite import REPO, agent_source, cron_env, said_one_line

COMMANDS = dict(command_tree(main))


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda p: " ".join(p) or "agentops")
def test_every_command_has_help(project, invoke, path):
    """agentops [GROUP] COMMAND --help: exit 0, its usage line, its help; every option explained.

    A walk of the click tree, so a new command is covered the day it is added.
    """
    result = invoke(*path, "--help")
    where = " ".join(("agentops", *path))
    assert (result.exit_code, result.stderr) == (0, ""), where
    assert result.stdout.startswith(f"Usage: {where} "), result.stdout
    command = COMMANDS.get(path, main)
    assert command.help, f"{where} has no help text"
    assert command.get_short_help_str().strip(), f"{where} has no short help"
    assert command.help.split("\n")[0].rstrip(".") in result.stdout.replace("\n  ", " ")
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.help, f"{where} {param.opts[0]} has no help text"
    if isinstance(command, click.Group):
        assert "Commands:" in result.stdout, where
    assert not (project.home / "state").exists()
    assert not (project.home / "logs").exists()


def test_version(invoke):
    """--version prints the package version."""
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output == f"agentops {__version__}\n"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "hello", "-p", "novalue"], "'novalue' is not KEY=VALUE"),
        (["run", "hello", "-p", "=x"], "is not KEY=VALUE"),
        (["run", "hello", "--params-json", "[1]"], "must be a JSON object"),
        (["run", "hello", "--params-json", "{"], "not JSON"),
        (["run"], "Missing argument 'AGENT'"),
        (["run", "../etc"], "invalid agent name '../etc'"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_usage_errors_are_one_line_exit_2(project, invoke, args, expected):
    """Command-line mistakes exit 2 with one line on stderr and write nothing."""
    project.add_agent("hello")
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert result.output.count("\n") == 1
    assert result.output.startswith("agentops: ")
    assert not (project.home / "state").exists()
    assert not (project.home / "logs").exists()


def test_missing_home_is_a_configuration_error(tmp_path):
    """A home without agents/ exits 78 saying how to point at the right one."""
    result = CliRunner().invoke(main, ["--home", str(tmp_path), "list"])
    assert result.exit_code == 78
    assert "no agents/ directory in" in result.output
    assert "AGENTOPS_HOME" in result.output


def test_home_comes_from_the_environment(project):
    """$AGENTOPS_HOME is used when --home is not given."""
    project.add_agent("hello")
    result = CliRunner().invoke(main, ["list", "--json"], env={"AGENTOPS_HOME": str(project.home)})
    assert result.exit_code == 0
    assert [row["name"] for row in json.loads(result.output)] == ["hello"]


# -- loud where it matters, once -------------------------------------------------------


# -- operator commands -------------------------------------------------------------------


# -- under cron ----------------------------------------------------------------------------


def test_internal_errors_are_redacted_too(project, run_agentops):
    """Even the one line of an unexpected error hides secrets from the environment."""
    project.add_agent(
        "agent",
        agent_source(
            'raise RuntimeError("token " + os.environ["GITHUB_TOKEN"])',
            result="ok: bool",
            imports="import os",
        ),
    )
    token = "ghp_" + "a1" * 18
    result = run_agentops("run", "agent", env=cron_env(project.home, GITHUB_TOKEN=token))
    assert result.returncode == 1
    assert token not in result.stderr
    assert "[REDACTED]" in result.stderr


def documented_exit_codes() -> set[int]:
    """The codes in the documentation's table of exit codes."""
    readme = (REPO / "docs" / "reference" / "exit-codes.md").read_text()
    table = readme[readme.index("# Exit codes") :]
    table = table[: table.index("\n\n", table.index("| code |"))]
    return {int(code) for code in re.findall(r"^\| (\d+) \|", table, flags=re.MULTILINE)}


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["reset", "hello"], 2, "say what to reset: --circuit, --budget, --limits or --all"),
        (["reset", "nobody", "--all"], 78, "unknown agent 'nobody'"),
        (["reset", "../x", "--circuit"], 2, "invalid agent name '../x'"),
        (["reset", "hello", "--everything"], 2, "No such option '--everything'"),
        (["pause"], 2, "Missing argument 'AGENT'"),
        (["pause", "nobody"], 78, "unknown agent 'nobody'"),
        (["resume", "nobody"], 78, "unknown agent 'nobody'"),
        (["pause", "hello", "--reason"], 2, "Option '--reason' requires an argument"),
        (["state"], 2, "Missing command; see agentops state --help"),
        (["state", "undo", "hello"], 2, "No such command 'undo'"),
        (["state", "show", "nobody"], 78, "unknown agent 'nobody'"),
        (["state", "diff", "nobody"], 78, "unknown agent 'nobody'"),
        (["state", "restore", "nobody"], 78, "unknown agent 'nobody'"),
        (["state", "show", "Hello"], 2, "invalid agent name 'Hello'"),
        (["ledger", "hello", "--resolve", "k"], 2, "--resolve KEY needs one of --done or --redo"),
        (["ledger", "hello", "--resolve", "k", "--done", "--redo"], 2, "needs one of --done or"),
        (["ledger", "hello", "--done"], 2, "--done, --redo and --action go with --resolve KEY"),
        (["ledger", "hello", "--action", "publish"], 2, "go with --resolve KEY"),
        (["ledger", "hello", "--resolve", "k", "--done"], 2, "hello has no ledger entry 'k'"),
        (["ledger", "nobody"], 78, "unknown agent 'nobody'"),
        (["review"], 2, "Missing command; see agentops review --help"),
        (["review", "list", "nobody"], 78, "unknown agent 'nobody'"),
        (["review", "reject", "hello", "nope"], 2, "hello holds no result 'nope' for review"),
        (["review", "approve", "hello", "nope"], 2, "hello holds no result 'nope' for review"),
        (["review", "approve", "nobody", "x"], 78, "unknown agent 'nobody'"),
        (["status", "nobody"], 78, "unknown agent 'nobody'"),
        (["status", "--jsn"], 2, "No such option '--jsn'"),
        (["health", "--ping"], 2, "Option '--ping' requires an argument"),
        (["check", "hello"], 2, "Got unexpected extra argument (hello)"),
        (["list", "hello"], 2, "Got unexpected extra argument (hello)"),
        (["init", "hello"], 2, "exists already: agentops init never overwrites"),
        (["init", "new", "--template", "quantum"], 2, "'quantum' is not one of 'basic', 'http'"),
        (["init", "../new"], 2, "invalid agent name '../new'"),
        (["logs", "hello", "--run", "x", "--last"], 2, "--run and --last cannot be used together"),
        (["logs", "nobody"], 78, "unknown agent 'nobody'"),
        (["report", "nobody"], 78, "unknown agent 'nobody'"),
        (["report", "--since", "soon"], 2, "Invalid value for '--since'"),
        ([], 2, "Missing command; see agentops --help"),
    ],
    ids=lambda value: (" ".join(value) or "(none)") if isinstance(value, list) else None,
)
def test_bad_input_is_one_line_a_documented_code_and_changes_nothing(
    project, invoke, args, code, expected
):
    """Each mistake: its exit code (in the README's table), one line, and no file changed.

    A refused edit may leave a command.refused line in the agent's log, and
    nothing else: no run is logged, no state, agent or log file is written.
    """
    project.add_agent("hello")
    for _ in range(2):
        assert invoke("run", "hello").exit_code == 0
    state, agents, logged = project.snapshot(), project.snapshot("agents"), project.events("hello")
    result = invoke(*args)
    assert result.exit_code == code, result.stderr
    assert code in documented_exit_codes()
    said_one_line(result, expected)
    assert project.snapshot() == state
    assert project.snapshot("agents") == agents
    assert [p.name for p in (project.home / "logs").iterdir()] == ["hello.jsonl"]
    added = project.events("hello")[len(logged) :]
    assert project.events("hello")[: len(logged)] == logged
    assert [e["event"] for e in added] in ([], ["command.refused"])
    assert not list((project.home / "state").glob("nobody*"))
