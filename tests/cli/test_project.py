"""`agentops list`, `cron`, `check` and `init`: the project as cron and a person see it."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime

import pytest

from agentops.ops.check import PROBLEM_KEYS
from suite import AGENTOPS, cron_env, said_one_line


@pytest.mark.parametrize("template", ["basic", "http"])
def test_init_scaffolds_an_agent_whose_test_passes_and_that_checks(invoke, template):
    """init NAME: agents/NAME/ with its files, and check finds nothing.

    That the new agent's own test passes is tests/project/test_scaffold.py's.
    """
    made = invoke("init", "fresh-one", "--template", template)
    assert (made.exit_code, made.stderr) == (0, "")
    assert made.stdout.splitlines() == [
        "wrote agents/fresh-one/agent.toml",
        "wrote agents/fresh-one/agent.py",
        "wrote agents/fresh-one/test_fresh_one.py",
        "next: pytest agents/fresh-one && agentops run fresh-one",
    ]
    checked = invoke("check")
    assert (checked.exit_code, checked.stdout.splitlines()[0]) == (
        0,
        "1 agent(s), no problem found",
    )


def test_init_over_an_existing_agent_refuses_and_overwrites_nothing(project, invoke):
    """init twice, or over an agent written by hand: exit 2, one line, every file as it was."""
    assert invoke("init", "greeter").exit_code == 0
    code = project.home / "agents" / "greeter" / "agent.py"
    code.write_text(code.read_text() + "# edited by hand\n")
    project.add_agent("mine", toml='description = "mine"\n')
    files = project.snapshot("agents")
    for name, template in (("greeter", "basic"), ("greeter", "http"), ("mine", "basic")):
        result = invoke("init", name, "--template", template)
        assert result.exit_code == 2
        said_one_line(result, f"{project.home / 'agents' / name} exists already")
        assert project.snapshot("agents") == files
    assert not (project.home / "state").exists()


IMPORT_FAILS = """
from pydantic import BaseModel

class Params(BaseModel):
    pass

class Result(BaseModel):
    ok: bool

raise RuntimeError("the settings file is missing")
"""


def test_check_prints_a_line_per_problem_naming_its_file_and_exits_78(project, invoke):
    """Text: `file[:line]: problem`, one per problem; --json: the same, PROBLEM_KEYS each."""
    project.add_agent("fine")
    project.add_agent("typo", toml='[params]\nname = "x"\nnmae = "y"\n')
    project.add_agent("imports", IMPORT_FAILS)
    project.add_agent("when", toml='schedule = "every day"\n')
    text = invoke("check")
    assert (text.exit_code, text.stderr) == (78, "")
    lines = text.stdout.splitlines()
    assert len(lines) == 3, lines
    assert "agents/typo/agent.toml:3: [params] nmae: unknown param" in lines
    assert (
        "agents/imports/agent.py:10: cannot import: RuntimeError: the settings file is missing"
        in lines
    )
    assert any(line.startswith("agents/when/agent.toml:1: schedule:") for line in lines), lines
    as_json = invoke("check", "--json")
    assert (as_json.exit_code, as_json.stderr) == (78, "")
    problems = json.loads(as_json.stdout)
    assert all(tuple(problem) == PROBLEM_KEYS for problem in problems)
    assert sorted(p["agent"] for p in problems) == ["imports", "typo", "when"]
    rendered = [
        f"{p['file']}{'' if p['line'] is None else ':' + str(p['line'])}: {p['problem']}"
        for p in problems
    ]
    assert rendered == lines
    assert not (project.home / "state").exists(), "check runs no agent"


def test_a_problem_of_agentops_toml_is_said_once_however_many_agents(project, run_agentops):
    """Every agent depends on agentops.toml: its problem is one line, not one more per agent."""
    for name in ("a", "b", "c"):
        project.add_agent(name, toml='schedule = "* * * * *"\n')
    (project.home / "agentops.toml").write_text("[tick]\nparallel = 0\n")
    for args in (("check",), ("check", "--json")):
        done = run_agentops(*args)
        assert (done.returncode, done.stderr) == (78, ""), args
    [line] = run_agentops("check").stdout.splitlines()
    assert line.startswith("agentops.toml:2: tick.parallel"), line


def test_check_of_a_sound_project_is_0(project, invoke):
    """No problem: exit 0, one line; --json: an empty array."""
    project.add_agent("fine")
    result = invoke("check")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "1 agent(s), no problem found\n",
        "",
    )
    empty = invoke("check", "--json")
    assert (empty.exit_code, json.loads(empty.stdout)) == (0, [])


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


def test_a_schedule_debian_cron_accepts_that_never_fires_is_accepted(project, invoke):
    """February 30th ("0 0 30 2 *") is valid to cron, which never runs it: so it is valid here."""
    project.add_agent("never", toml='schedule = "0 0 30 2 *"\n')
    cron = invoke("cron")
    assert cron.exit_code == 0, cron.output
    [line] = [line for line in cron.output.splitlines() if " run never" in line]
    assert line.startswith("0 0 30 2 * ")
    assert f"--home {project.home} run never" in line
    listed = json.loads(invoke("list", "--json").output)
    assert listed == [
        {"name": "never", "schedule": "0 0 30 2 *", "next_run": None, "description": ""}
    ]
    assert invoke("run", "never").exit_code == 0


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
