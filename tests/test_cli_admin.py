"""Operator commands in real ``agentops`` processes: pause, resume, reset, state, init, check.

Each command is run as cron or a person at a shell runs it (a subprocess, no
TTY, cron's environment). What they must do: change what they say and
nothing else, log it, work or refuse cleanly while a run holds the agent's
lock, and answer bad input with one line, a documented exit code, and no
change.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time

import click
import pytest

from agentops.cli import main
from agentops.cli._common import command_tree
from agentops.ops.check import PROBLEM_KEYS
from conftest import AGENTOPS, REPO, cron_env, remember

GUARDED = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    fail: bool = False

class Result(BaseModel):
    ok: bool

def run(params: Params, ctx: Context) -> Result:
    ctx.state["runs"] = ctx.state.get("runs", 0) + 1
    ctx.spend(usd=0.01, tokens=10)
    ctx.action("publish", key=ctx.run_id, do=lambda: "sent")
    if params.fail:
        raise RuntimeError("the feed is down")
    return Result(ok=True)
"""

GUARDED_TOML = """
[limits]
runs = "100/hour"
cost_usd_per_day = 5.0

[limits.actions]
publish = "100/hour"

[circuit]
failures = 1
cooldown = "1h"
"""

BLOCKING = """
import time
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    runs: int

def run(params: Params, ctx: Context) -> Result:
    (ctx.home / "started").write_text("")
    deadline = time.monotonic() + 100
    while not (ctx.home / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    ctx.state["runs"] = ctx.state.get("runs", 0) + 1
    return Result(runs=ctx.state["runs"])
"""

GUARDS = ("circuit", "budget", "rate_limits")
"""The parts of the state ``agentops reset`` may clear."""


def documented_exit_codes() -> set[int]:
    """The codes in the documentation's table of exit codes."""
    readme = (REPO / "docs" / "reference" / "exit-codes.md").read_text()
    table = readme[readme.index("# Exit codes") :]
    table = table[: table.index("\n\n", table.index("| code |"))]
    return {int(code) for code in re.findall(r"^\| (\d+) \|", table, flags=re.MULTILINE)}


def said_one_line(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    """Nothing on stdout, one ``agentops: ...`` line on stderr holding each of ``expected``."""
    assert result.stdout == "", result.stdout
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("agentops: ")
    for text in expected:
        assert text in result.stderr


def new_events(project, name: str, before: int) -> list[dict]:
    return project.events(name)[before:]


@contextlib.contextmanager
def run_holding_the_lock(project, name: str):
    """A real ``agentops run`` of a BLOCKING agent, holding its lock until the block ends."""
    process = subprocess.Popen(
        [str(AGENTOPS), "--home", str(project.home), "run", name],
        env=cron_env(project.home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = project.home / "started"
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert started.exists(), "the run did not reach run()"
        yield process
    finally:
        (project.home / "go").write_text("")
        out, err = process.communicate(timeout=60)
        remember(f"blocking run of {name}", out, err)
    assert (process.returncode, out, err) == (0, "", "")


# -- pause and resume ------------------------------------------------------------------------


def test_a_pause_takes_effect_at_once_even_while_a_run_holds_the_lock(project, run_agentops):
    """pause returns while a run holds the lock; that run ends well, the next is skipped (75)."""
    project.add_agent("slow", BLOCKING, 'timeout = "2m"\n')
    with run_holding_the_lock(project, "slow") as running:
        paused = run_agentops("pause", "slow", "--reason", "maintenance window", timeout=60)
        assert running.poll() is None, "pause returned without waiting for the lock"
        assert (paused.returncode, paused.stderr) == (0, "")
        assert paused.stdout == "slow: paused (maintenance window)\n"
        assert (project.home / "state" / "slow.paused.json").exists()
        [row] = json.loads(run_agentops("status", "slow", "--json").stdout)
        assert (row["health"], row["why"]) == ("paused", "paused: maintenance window")
        assert row["paused"]["reason"] == "maintenance window"
        assert row["running"]["pid"] == running.pid
    assert project.state("slow")["data"] == {"runs": 1}, "the run under way was left to finish"

    skipped = run_agentops("run", "slow")
    assert (skipped.returncode, skipped.stdout, skipped.stderr) == (75, "", "")
    last = project.events("slow")[-1]
    assert (last["event"], last["reason"]) == ("run.skipped", "paused")
    assert project.state("slow")["data"] == {"runs": 1}
    table = run_agentops("status").stdout.splitlines()
    assert table[0].split()[:2] == ["AGENT", "HEALTH"]
    assert table[1].split()[:2] == ["slow", "paused"]
    assert table[1].endswith("paused: maintenance window")

    assert run_agentops("run", "slow").returncode == 75, "paused until resumed, however often"
    resumed = run_agentops("resume", "slow")
    assert (resumed.returncode, resumed.stdout, resumed.stderr) == (0, "slow: resumed\n", "")
    assert not (project.home / "state" / "slow.paused.json").exists()
    assert run_agentops("run", "slow").returncode == 0
    assert project.state("slow")["data"] == {"runs": 2}
    [row] = json.loads(run_agentops("status", "slow", "--json").stdout)
    assert (row["health"], row["paused"]) == ("ok", None)
    again = run_agentops("resume", "slow")
    assert (again.returncode, again.stdout) == (0, "slow: was not paused\n")

    names = project.event_names("slow")
    paused_line = next(e for e in project.events("slow") if e["event"] == "agent.paused")
    assert paused_line["reason"] == "maintenance window"
    assert names.count("agent.resumed") == 2


def test_a_pause_without_a_reason_and_of_an_agent_whose_state_is_unreadable(project, run_agentops):
    """A pause reads no state: it works on an agent whose state is damaged; runs are skipped."""
    project.add_agent("hello")
    project.state_path("hello").parent.mkdir()
    project.state_path("hello").write_text("{damaged")
    paused = run_agentops("pause", "hello")
    assert (paused.returncode, paused.stdout) == (0, "hello: paused\n")
    skipped = run_agentops("run", "hello")
    assert (skipped.returncode, skipped.stdout, skipped.stderr) == (75, "", "")
    assert project.state_path("hello").read_text() == "{damaged"
    [row] = json.loads(run_agentops("status", "--json").stdout)
    assert row["health"] == "broken", "an unreadable state outranks the pause"


# -- reset -------------------------------------------------------------------------------------


@pytest.fixture
def guarded(project, run_agentops):
    """An agent with an open circuit, two spends, and entries in two rate-limit windows."""
    project.add_agent("guarded", GUARDED, GUARDED_TOML)
    assert run_agentops("run", "guarded").returncode == 0
    failed = run_agentops("run", "guarded", "-p", "fail=true")
    assert failed.returncode == 1
    assert "CIRCUIT OPEN" in failed.stderr
    state = project.state("guarded")
    assert state["circuit"]["state"] == "open"
    assert len(state["budget"]["spends"]) == 2
    assert sorted(state["rate_limits"]) == ["action:publish", "runs"]
    assert all(len(window) == 2 for window in state["rate_limits"].values())
    skipped = run_agentops("run", "guarded")
    assert (skipped.returncode, skipped.stderr) == (75, "")
    assert project.events("guarded")[-1]["reason"] == "circuit_open"
    return project


CLOSED = {
    "state": "closed",
    "fingerprint": None,
    "failures": 0,
    "reason": None,
    "opened_at": None,
    "until": None,
}


@pytest.mark.parametrize(
    ("flag", "cleared", "said", "logged"),
    [
        ("--circuit", {"circuit"}, "guarded: circuit closed (it was open)", ["circuit.reset"]),
        ("--budget", {"budget"}, "guarded: budget reset (2 spend(s) forgotten)", ["budget.reset"]),
        (
            "--limits",
            {"rate_limits"},
            "guarded: rate limits reset (2 window(s) emptied)",
            ["limits.reset"],
        ),
        (
            "--all",
            set(GUARDS),
            (
                "guarded: circuit closed (it was open); budget reset (2 spend(s) forgotten); "
                "rate limits reset (2 window(s) emptied)"
            ),
            ["circuit.reset", "budget.reset", "limits.reset"],
        ),
    ],
)
def test_reset_clears_only_what_it_says(guarded, run_agentops, flag, cleared, said, logged):
    """Each flag empties its guard, leaves the others and everything else as they were; logged."""
    project = guarded
    before, ledger = project.state("guarded"), project.ledger("guarded")
    lines = len(project.events("guarded"))
    result = run_agentops("reset", "guarded", flag)
    assert (result.returncode, result.stdout, result.stderr) == (0, said + "\n", "")
    after = project.state("guarded")
    empty = {"circuit": CLOSED, "budget": {"spends": [], "waiting_usd": 0.0}, "rate_limits": {}}
    for guard in GUARDS:
        assert after[guard] == (empty[guard] if guard in cleared else before[guard]), guard
    untouched = set(before) - set(GUARDS)
    assert {k: after[k] for k in untouched} == {k: before[k] for k in untouched}
    assert project.ledger("guarded") == ledger
    events = new_events(project, "guarded", lines)
    assert [e["event"] for e in events] == logged
    assert len({e["run_id"] for e in events}) == 1
    by_name = {e["event"]: e for e in events}
    if "circuit.reset" in by_name:
        assert by_name["circuit.reset"]["was"] == "open"
    if "budget.reset" in by_name:
        assert by_name["budget.reset"]["spends"] == 2
    if "limits.reset" in by_name:
        assert by_name["limits.reset"]["windows"] == ["action:publish", "runs"]
    # The circuit is what kept runs from starting: only its reset lets them go again.
    expected = 0 if "circuit" in cleared else 75
    assert run_agentops("run", "guarded").returncode == expected


def test_reset_of_an_unreadable_state_is_74_and_leaves_it(project, run_agentops):
    """The state does not parse: every reset exits 74 naming the file; no file changes."""
    project.add_agent("hello")
    assert run_agentops("run", "hello").returncode == 0
    assert run_agentops("run", "hello").returncode == 0
    project.state_path("hello").write_text('{"schema_version": 2, "agent": "hel')
    files = project.snapshot()
    for flag in ("--circuit", "--budget", "--limits", "--all"):
        result = run_agentops("reset", "hello", flag)
        assert result.returncode == 74
        said_one_line(result, str(project.state_path("hello")), "unreadable state")
        assert project.snapshot() == files
    refused = [e for e in project.events("hello") if e["event"] == "command.refused"]
    assert [e["exit_code"] for e in refused] == [74] * 4
    assert "run.aborted" not in project.event_names("hello"), "a reset is not a run"


# -- state show, diff, restore -------------------------------------------------------------


@pytest.fixture
def saved_twice(project, run_agentops):
    """hello, run twice: its state says runs=2, its backup runs=1."""
    project.add_agent("hello")
    for _ in range(2):
        assert run_agentops("run", "hello").returncode == 0
    assert json.loads(project.state_path("hello").with_suffix(".json.bak").read_text())["data"] == {
        "runs": 1
    }
    return project


def test_state_show_prints_the_state_file_as_it_is(saved_twice, run_agentops):
    """show: the state pretty-printed, exactly as the file holds it; nothing written."""
    project = saved_twice
    files = project.snapshot()
    shown = run_agentops("state", "show", "hello")
    assert (shown.returncode, shown.stderr) == (0, "")
    assert shown.stdout == project.state_path("hello").read_text()
    assert shown.stdout.startswith('{\n  "schema_version": 2,\n  "agent": "hello",\n')
    assert project.snapshot() == files


def test_state_show_folds_a_crashed_runs_journal_in_memory_only(project, run_agentops):
    """A dead run's journal shows in the state printed (an unresolved action); no file changes."""
    project.add_agent("hello")
    assert run_agentops("run", "hello").returncode == 0
    dead = "20261122T100000Z-dead00"
    records = [
        {"op": "begin", "at": "2026-11-22T10:00:00Z", "agent": "hello", "kind": "run"},
        {"op": "intent", "at": "2026-11-22T10:00:07Z", "action": "publish", "key": "post-1"},
    ]
    journal = project.home / "state" / "hello.journal"
    journal.write_text("".join(json.dumps({"run_id": dead, **r}) + "\n" for r in records))
    files = project.snapshot()
    shown = run_agentops("state", "show", "hello")
    assert shown.returncode == 0, shown.stderr
    state = json.loads(shown.stdout)
    assert state["ledger_summary"]["unresolved"] == [["publish", "post-1"]]
    assert project.state("hello")["ledger_summary"]["unresolved"] == []
    assert project.snapshot() == files


@pytest.mark.usefixtures("saved_twice")
def test_state_diff_shows_what_the_last_save_changed(run_agentops):
    """diff: unified, the backup against the state, ending with a newline."""
    diff = run_agentops("state", "diff", "hello")
    assert (diff.returncode, diff.stderr) == (0, "")
    lines = diff.stdout.splitlines()
    assert lines[:2] == ["--- hello (before the last save)", "+++ hello (now)"]
    assert '-    "runs": 1' in lines
    assert '+    "runs": 2' in lines
    assert diff.stdout.endswith("\n")


def test_restore_swaps_the_state_and_its_backup_so_a_second_restore_undoes_it(
    saved_twice, run_agentops
):
    """restore: the backup becomes the state, the state the backup; a second restore undoes it."""
    project = saved_twice
    state_path = project.state_path("hello")
    backup_path = state_path.with_suffix(".json.bak")
    kept_path = state_path.with_suffix(".json.pre-restore")
    newer, older = state_path.read_bytes(), backup_path.read_bytes()

    first = run_agentops("state", "restore", "hello")
    assert (first.returncode, first.stderr) == (0, "")
    assert first.stdout == (
        "hello: the previous state is restored; the one it replaced is the backup now "
        "(restore again to undo)\n"
    )
    assert (state_path.read_bytes(), backup_path.read_bytes()) == (older, newer)
    assert kept_path.read_bytes() == newer
    diff = run_agentops("state", "diff", "hello").stdout.splitlines()
    assert '-    "runs": 2' in diff
    assert '+    "runs": 1' in diff

    second = run_agentops("state", "restore", "hello")
    assert second.returncode == 0
    assert (state_path.read_bytes(), backup_path.read_bytes()) == (newer, older)
    assert kept_path.read_bytes() == older
    assert project.event_names("hello")[-2:] == ["state.restored", "state.restored"]

    assert run_agentops("state", "restore", "hello").returncode == 0
    assert run_agentops("run", "hello").returncode == 0
    assert project.state("hello")["data"] == {"runs": 2}, "the run went on from the restored state"
    assert kept_path.read_bytes() == newer, "a save after the restore leaves .pre-restore"


def test_restore_mends_an_unreadable_state_and_keeps_it_aside(saved_twice, run_agentops):
    """The state does not parse: restore puts the backup back, keeps the bad file; runs go on."""
    project = saved_twice
    state_path = project.state_path("hello")
    backup = state_path.with_suffix(".json.bak").read_bytes()
    state_path.write_text("{damaged")
    assert run_agentops("run", "hello").returncode == 74
    restored = run_agentops("state", "restore", "hello")
    assert (restored.returncode, restored.stderr) == (0, "")
    assert state_path.read_bytes() == backup
    assert state_path.with_suffix(".json.pre-restore").read_text() == "{damaged"
    assert run_agentops("run", "hello").returncode == 0
    assert project.state("hello")["data"] == {"runs": 2}


@pytest.mark.parametrize("backup", [None, "{damaged"], ids=["no-backup", "unreadable-backup"])
def test_restore_without_a_readable_backup_is_74_and_changes_nothing(project, run_agentops, backup):
    """No backup, or one that does not parse: 74, one line naming it; the state stays."""
    project.add_agent("hello")
    assert run_agentops("run", "hello").returncode == 0
    backup_path = project.state_path("hello").with_suffix(".json.bak")
    assert not backup_path.exists(), "the first save has nothing to back up"
    if backup is not None:
        backup_path.write_text(backup)
    files = project.snapshot()
    result = run_agentops("state", "restore", "hello")
    assert result.returncode == 74
    why = "there is no backup to restore" if backup is None else "unreadable state"
    said_one_line(result, str(backup_path), why)
    assert project.snapshot() == files


def test_edits_are_refused_while_a_run_holds_the_lock_and_are_no_runs(project, run_agentops):
    """reset, restore, ledger --resolve: 75 and one line while a run holds the lock; no change.

    Refusals of operator commands are logged as command.refused, never as a run
    skipped or aborted: the report counts only the runs.
    """
    project.add_agent("slow", BLOCKING, 'timeout = "2m"\n')
    (project.home / "go").write_text("")
    for _ in range(2):
        assert run_agentops("run", "slow").returncode == 0
    (project.home / "go").unlink()
    (project.home / "started").unlink()
    with run_holding_the_lock(project, "slow"):
        files = project.snapshot()
        for edit in (
            ["reset", "slow", "--all"],
            ["state", "restore", "slow"],
            ["ledger", "slow", "--resolve", "k", "--done"],
            ["review", "reject", "slow", "x"],
        ):
            refused = run_agentops(*edit)
            assert refused.returncode == 75, (edit, refused.stderr)
            said_one_line(refused, "slow is already running (pid")
            assert project.snapshot() == files
    refusals = [e for e in project.events("slow") if e["event"] == "command.refused"]
    assert [(e["exit_code"], e["reason"]) for e in refusals] == [(75, "overlap")] * 4
    typo = run_agentops("ledger", "slow", "--resolve", "k", "--done")
    said_one_line(typo, "slow has no ledger entry 'k'")
    assert typo.returncode == 2
    report = json.loads(run_agentops("report", "slow", "--json").stdout)["agents"]["slow"]
    assert (report["invocations"], report["runs"]) == (3, 3)
    assert report["statuses"]["succeeded"] == 3
    assert report["skip_reasons"] == {}
    assert report["errors"]["total"] == 0
    last = [
        json.loads(line)
        for line in run_agentops("logs", "slow", "--last", "--json").stdout.splitlines()
    ]
    assert [e["event"] for e in last] == ["run.started", "run.finished"], "--last skips edits"


# -- init ------------------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["basic", "http"])
def test_init_scaffolds_an_agent_whose_test_passes_and_that_checks(project, run_agentops, template):
    """init NAME: agents/NAME/ with its files; its own pytest test passes; check finds nothing."""
    made = run_agentops("init", "fresh-one", "--template", template)
    assert (made.returncode, made.stderr) == (0, "")
    assert made.stdout.splitlines() == [
        "wrote agents/fresh-one/agent.toml",
        "wrote agents/fresh-one/agent.py",
        "wrote agents/fresh-one/test_fresh_one.py",
        "next: pytest agents/fresh-one && agentops run fresh-one",
    ]
    directory = project.home / "agents" / "fresh-one"
    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=project.home,
        env=cron_env(project.home),
    )
    remember("pytest of a new agent", tested.stdout, tested.stderr)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert re.search(r"\b[12] passed\b", tested.stdout), tested.stdout
    checked = run_agentops("check")
    assert (checked.returncode, checked.stdout.splitlines()[0]) == (
        0,
        "1 agent(s), no problem found",
    )


def test_init_over_an_existing_agent_refuses_and_overwrites_nothing(project, run_agentops):
    """init twice, or over an agent written by hand: exit 2, one line, every file as it was."""
    assert run_agentops("init", "greeter").returncode == 0
    code = project.home / "agents" / "greeter" / "agent.py"
    code.write_text(code.read_text() + "# edited by hand\n")
    project.add_agent("mine", toml='description = "mine"\n')
    files = project.snapshot("agents")
    for name, template in (("greeter", "basic"), ("greeter", "http"), ("mine", "basic")):
        result = run_agentops("init", name, "--template", template)
        assert result.returncode == 2
        said_one_line(result, f"{project.home / 'agents' / name} exists already")
        assert project.snapshot("agents") == files
    assert not (project.home / "state").exists()


# -- check -----------------------------------------------------------------------------------

IMPORT_FAILS = """
from pydantic import BaseModel

class Params(BaseModel):
    pass

class Result(BaseModel):
    ok: bool

raise RuntimeError("the settings file is missing")
"""


def test_check_prints_a_line_per_problem_naming_its_file_and_exits_78(project, run_agentops):
    """Text: `file[:line]: problem`, one per problem; --json: the same, PROBLEM_KEYS each."""
    project.add_agent("fine")
    project.add_agent("typo", toml='[params]\nname = "x"\nnmae = "y"\n')
    project.add_agent("imports", IMPORT_FAILS)
    project.add_agent("when", toml='schedule = "every day"\n')
    text = run_agentops("check")
    assert (text.returncode, text.stderr) == (78, "")
    lines = text.stdout.splitlines()
    assert len(lines) == 3, lines
    assert "agents/typo/agent.toml:3: [params] nmae: unknown param" in lines
    assert (
        "agents/imports/agent.py:10: cannot import: RuntimeError: the settings file is missing"
        in lines
    )
    assert any(line.startswith("agents/when/agent.toml:1: schedule:") for line in lines), lines
    as_json = run_agentops("check", "--json")
    assert (as_json.returncode, as_json.stderr) == (78, "")
    problems = json.loads(as_json.stdout)
    assert all(tuple(problem) == PROBLEM_KEYS for problem in problems)
    assert sorted(p["agent"] for p in problems) == ["imports", "typo", "when"]
    rendered = [
        f"{p['file']}{'' if p['line'] is None else ':' + str(p['line'])}: {p['problem']}"
        for p in problems
    ]
    assert rendered == lines
    assert not (project.home / "state").exists(), "check runs no agent"


def test_check_of_a_sound_project_is_0(project, run_agentops):
    """No problem: exit 0, one line; --json: an empty array."""
    project.add_agent("fine")
    result = run_agentops("check")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "1 agent(s), no problem found\n",
        "",
    )
    empty = run_agentops("check", "--json")
    assert (empty.returncode, json.loads(empty.stdout)) == (0, [])


# -- help -----------------------------------------------------------------------------------


def command_paths(group: click.Group):
    """Every command and group under ``group``, as the words that call it."""
    return command_tree(group)


def test_every_command_answers_help_in_a_real_process(project, run_agentops):
    """agentops [GROUP] COMMAND --help: exit 0, its usage line, its help; every option explained.

    A walk of the click tree, so a new command is covered the day it is added
    (tests/test_cli.py walks it in-process too).
    """
    paths = [((), main), *command_paths(main)]
    assert len(paths) > 20
    for path, command in paths:
        shown = run_agentops(*path, "--help")
        where = " ".join(("agentops", *path))
        assert (shown.returncode, shown.stderr) == (0, ""), where
        assert shown.stdout.startswith(f"Usage: {where} "), shown.stdout
        assert command.help, f"{where} has no help text"
        assert command.get_short_help_str().strip(), f"{where} has no short help"
        assert command.help.split("\n")[0].rstrip(".") in shown.stdout.replace("\n  ", " ")
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "help":
                assert param.help, f"{where} {param.opts[0]} has no help text"
        if isinstance(command, click.Group):
            assert "Commands:" in shown.stdout, where
    assert not (project.home / "state").exists()
    assert not (project.home / "logs").exists()


# -- bad input ---------------------------------------------------------------------------------


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
    project, run_agentops, args, code, expected
):
    """Each mistake: its exit code (in the README's table), one line, and no file changed.

    A refused edit may leave a command.refused line in the agent's log, and
    nothing else: no run is logged, no state, agent or log file is written.
    """
    project.add_agent("hello")
    for _ in range(2):
        assert run_agentops("run", "hello").returncode == 0
    state, agents, logged = project.snapshot(), project.snapshot("agents"), project.events("hello")
    result = run_agentops(*args)
    assert result.returncode == code, result.stderr
    assert code in documented_exit_codes()
    said_one_line(result, expected)
    assert project.snapshot() == state
    assert project.snapshot("agents") == agents
    assert [p.name for p in (project.home / "logs").iterdir()] == ["hello.jsonl"]
    added = project.events("hello")[len(logged) :]
    assert project.events("hello")[: len(logged)] == logged
    assert [e["event"] for e in added] in ([], ["command.refused"])
    assert not list((project.home / "state").glob("nobody*"))
