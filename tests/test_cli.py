"""The click app: help everywhere, output under cron, one-line errors, exit codes."""

from __future__ import annotations

import json
from datetime import datetime

import click
import pytest
from click.testing import CliRunner

from agentops import __version__
from agentops.cli import main


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [(), *all_commands(main)], ids=lambda p: " ".join(p) or "agentops")
def test_every_command_has_help(invoke, path):
    """Every command answers --help with a description, and exits 0."""
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    command = main
    for name in path:
        command = command.commands[name]
    assert command.help, f"{' '.join(path)} has no help text"


def test_version(invoke):
    """--version prints the package version."""
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output == f"agentops {__version__}\n"


def test_successful_run_prints_nothing_without_a_tty(project, invoke):
    """Under cron a successful run is silent on stdout and stderr."""
    project.add_agent("hello")
    result = invoke("run", "hello")
    assert result.exit_code == 0
    assert result.output == ""


def test_param_override_reaches_the_agent(project, invoke):
    """-p key=value overrides [params]; --params-json too, with -p winning."""
    project.add_agent("hello", toml='[params]\nname = "toml"\n')
    assert invoke("run", "hello", "-p", "name=Ada").exit_code == 0
    assert project.events("hello")[-1]["result"] == {"greeting": "Hello, Ada!"}
    invoke("run", "hello", "--params-json", '{"name": "Json"}')
    assert project.events("hello")[-1]["result"] == {"greeting": "Hello, Json!"}
    invoke("run", "hello", "--params-json", '{"name": "Json"}', "-p", "name=Flag")
    assert project.events("hello")[-1]["result"] == {"greeting": "Hello, Flag!"}


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


def test_failed_run_prints_one_line_naming_the_log(project, invoke):
    """A failure prints one line: what happened and where the log is."""
    project.add_agent(
        "broken",
        """
        from pydantic import BaseModel
        class Params(BaseModel):
            pass
        class Result(BaseModel):
            pass
        def run(params: Params, ctx) -> Result:
            raise ValueError("no feed")
        """,
    )
    result = invoke("run", "broken")
    assert result.exit_code == 1
    log = project.log_path("broken")
    assert result.output == f"agentops: broken: run() raised ValueError: no feed (log: {log})\n"


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


def test_list_shows_agents_from_toml_only(project, invoke):
    """list reads TOML only: an agent whose code would crash on import is still listed."""
    project.add_agent(
        "alpha",
        "raise SystemExit('imported!')",
        'schedule = "*/5 * * * *"\ndescription = "first"\n',
    )
    project.add_agent("beta", toml='description = "by hand only"\n')
    result = invoke("list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "SCHEDULE", "NEXT", "RUN", "(LOCAL)", "DESCRIPTION"]
    assert lines[1].split(maxsplit=1)[0] == "alpha"
    assert "*/5 * * * *" in lines[1]
    assert lines[1].endswith("first")
    assert lines[2].split() == ["beta", "(by", "hand)", "-", "by", "hand", "only"]
    rows = json.loads(invoke("list", "--json").output)
    assert rows[0]["name"] == "alpha"
    upcoming = datetime.fromisoformat(rows[0]["next_run"])
    assert upcoming.tzinfo is not None, "next_run says which time zone it is in"
    assert upcoming.minute % 5 == 0
    assert upcoming.second == 0
    assert upcoming > datetime.now().astimezone()
    assert rows[1] == {
        "name": "beta",
        "schedule": None,
        "next_run": None,
        "description": "by hand only",
    }


def test_list_reports_broken_agents_and_exits_78(project, invoke):
    """A broken agent.toml is named on stderr; the good agents are still listed."""
    project.add_agent("good")
    project.add_agent("bad", toml="schedul = '* * * * *'\n")
    result = invoke("list")
    assert result.exit_code == 78
    assert "good" in result.stdout
    assert "unknown key 'schedul'" in result.stderr


def test_cron_refuses_a_bad_schedule(project, invoke):
    """A bad schedule is exit 78 naming the agent and the expression; no partial crontab."""
    project.add_agent("good", toml='schedule = "@hourly"\n')
    project.add_agent("late", toml='schedule = "0 25 * * *"\n')
    result = invoke("cron")
    assert result.exit_code == 78
    assert result.stdout == ""
    assert "agents/late/agent.toml" in result.stderr
    assert "'0 25 * * *'" in result.stderr


def test_cron_lists_only_scheduled_agents(project, invoke):
    """cron prints a line per scheduled agent with the home, and sets PATH."""
    project.add_agent("nightly", toml='schedule = "@daily"\ndescription = "once a day"\n')
    project.add_agent("manual")
    result = invoke("cron")
    assert result.exit_code == 0
    assert "PATH=/usr/local/bin:/usr/bin:/bin" in result.output
    assert "# nightly: once a day" in result.output
    assert "@daily " in result.output
    assert f"--home {project.home} run nightly" in result.output
    assert "manual" not in result.output
