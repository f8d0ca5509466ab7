"""The click app: help everywhere, output under cron, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime

import click
import pytest
from click.testing import CliRunner

from agentops import __version__
from agentops.cli import main
from agentops.cli._common import command_tree
from suite import AGENTOPS, cron_env

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


# -- loud where it matters, once -------------------------------------------------------

SPENDER = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    usd: float = 0.0
    tokens: int = 0

class Result(BaseModel):
    ok: bool

def run(params: Params, ctx: Context) -> Result:
    ctx.spend(usd=params.usd, tokens=params.tokens)
    return Result(ok=True)
"""


def test_a_token_spend_larger_than_tokens_per_run_fails_in_one_line(project, invoke):
    """Like its dollar twin: one spend no run can fit is exit 1 and one line saying so."""
    project.add_agent("agent", SPENDER, "[limits]\ntokens_per_run = 1000\n")
    result = invoke("run", "agent", "-p", "tokens=5000")
    assert result.exit_code == 1
    log = project.log_path("agent")
    assert result.stderr == (
        "agentops: agent: a single spend of 5000 tokens is more than tokens_per_run 1000: "
        f"raise the cap or spend less per call (log: {log})\n"
    )
    assert invoke("run", "agent", "-p", "tokens=500").exit_code == 0, "nothing left waiting"


def test_a_run_a_budget_stops_says_so_once_and_the_skips_that_follow_are_quiet(project, invoke):
    """The run refused a spend prints one line (75); the runs skipped after it print nothing."""
    project.add_agent("agent", SPENDER, "[limits]\ncost_usd_per_hour = 1.0\n")
    assert invoke("run", "agent", "-p", "usd=0.75").exit_code == 0
    stopped = invoke("run", "agent", "-p", "usd=0.5")
    assert stopped.exit_code == 75
    assert len(stopped.stderr.splitlines()) == 1
    assert "agent: cost_usd_per_hour 1 reached (0.7500 spent, 0.5 more asked)" in stopped.stderr
    for _ in range(2):
        skipped = invoke("run", "agent", "-p", "usd=0.5")
        assert (skipped.exit_code, skipped.output) == (75, "")
    assert project.state("agent")["metrics"]["skipped"] == 2


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("timeout = 0\n", "timeout: must be longer than zero"),
        ("timeout = true\n", "timeout: expected a duration"),
        ('[ledger]\nkeep = "0s"\n', "ledger.keep: must be longer than zero"),
        (
            'schedule = "0 0 1 */2 *"\n\n[ledger]\nkeep = "30d"\n',
            "[ledger] keep is shorter than the schedule's longest interval",
        ),
        (
            "[limits]\nsteps_per_run = true\n",
            "limits.steps_per_run: Input should be a valid integer",
        ),
        ("[limits]\ntokens_per_run = false\n", "limits.tokens_per_run"),
        ("[circuit]\nfailures = true\n", "circuit.failures"),
    ],
    ids=[
        "timeout-0",
        "timeout-bool",
        "keep-0s",
        "keep-shorter-than-schedule",
        "steps-bool",
        "tokens-bool",
        "failures-bool",
    ],
)
def test_configuration_mistakes_are_exit_78_in_one_line(project, invoke, toml, expected):
    """A zero wait, a keep that forgets before the next run, a boolean for a number: 78."""
    project.add_agent("agent", toml=toml)
    result = invoke("run", "agent")
    assert result.exit_code == 78, result.output
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (project.home / "state" / "agent.json").exists()


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


# -- operator commands -------------------------------------------------------------------


def test_resolving_an_entry_done_keeps_when_and_by_which_run_it_happened(project, invoke):
    """ledger --resolve KEY --done: committed, still stamped with the dead run and its time."""
    project.add_agent("agent")
    journal = project.home / "state" / "agent.journal"
    journal.parent.mkdir()
    dead = "20261122T100000Z-dead00"
    records = [
        {"op": "begin", "at": "2026-11-22T10:00:00Z", "agent": "agent", "kind": "run"},
        {"op": "intent", "at": "2026-11-22T10:00:07.5Z", "action": "publish", "key": "post-1"},
    ]
    journal.write_text("".join(json.dumps({"run_id": dead, **r}) + "\n" for r in records))
    result = invoke("ledger", "agent", "--resolve", "post-1", "--done")
    assert result.exit_code == 0, result.output
    assert "marked done" in result.stdout
    entry = project.ledger("agent")["publish"]["post-1"]
    assert entry == f"2026-11-22T10:00:07Z committed {dead} null"
    resolved = next(e for e in project.events("agent") if e["event"] == "ledger.resolved")
    assert (resolved["entry_at"], resolved["entry_run"]) == ("2026-11-22T10:00:07Z", dead)
    assert (resolved["was"], resolved["now"]) == ("unresolved", "committed")


DRAFTER = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    confidence: float

def run(params: Params, ctx: Context) -> Result:
    return Result(confidence=0.6)

def apply(result: Result, ctx: Context) -> None:
    pass
"""


def test_review_list_with_an_unreadable_agent_still_lists_the_others(project, invoke):
    """One agent's state file is garbage: it is named (74), the others' held results listed."""
    for name in ("alpha", "omega"):
        project.add_agent(name, DRAFTER)
        assert invoke("run", name).exit_code == 0
    project.add_agent("broken")
    project.state_path("broken").write_text("{not json")
    result = invoke("review", "list", "--json")
    assert result.exit_code == 74
    assert len(result.stderr.splitlines()) == 1
    assert str(project.state_path("broken")) in result.stderr
    assert [row["agent"] for row in json.loads(result.stdout)] == ["alpha", "omega"]
    table = invoke("review", "list")
    assert table.exit_code == 74
    assert [line.split()[0] for line in table.stdout.splitlines()] == ["AGENT", "alpha", "omega"]


# -- under cron ----------------------------------------------------------------------------


def test_the_cli_does_not_wait_for_threads_left_running(project):
    """The CLI exits when the run ends; the thread's late side effect never happens."""
    project.add_agent(
        "agent",
        """
        import threading, time
        from pydantic import BaseModel
        from agentops import Context

        class Params(BaseModel):
            pass

        class Result(BaseModel):
            ok: bool

        def late(home):
            time.sleep(5)
            (home / "late-effect").write_text("")

        def run(params: Params, ctx: Context) -> Result:
            threading.Thread(target=late, args=(ctx.home,)).start()
            return Result(ok=True)
        """,
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
