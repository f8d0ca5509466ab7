"""Operator commands: pause, resume, reset, state, ledger, init, check.

Each command runs in-process (the click app), as a person at a shell runs
it, while a real ``agentops run`` process holds the agent's lock where that
is the point. What they must do: change what they say and nothing else, log
it, work or refuse cleanly while a run holds the agent's lock, and answer
bad input with one line, a documented exit code, and no change.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time

import pytest

from suite import (
    AGENTOPS,
    DEAD_BEGIN,
    RECONCILED,
    agent_source,
    cron_env,
    dead_commit,
    dead_intent,
    remember,
    said_one_line,
    write_journal,
)

GUARDED = agent_source(
    """
    ctx.state["runs"] = ctx.state.get("runs", 0) + 1
    ctx.spend(usd=0.01, tokens=10)
    ctx.action("publish", key=ctx.run_id, do=lambda: "sent")
    if params.fail:
        raise RuntimeError("the feed is down")
    return Result(ok=True)
    """,
    params="fail: bool = False",
    result="ok: bool",
)

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

BLOCKING = agent_source(
    """
    (ctx.home / "started").write_text("")
    deadline = time.monotonic() + 100
    while not (ctx.home / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    ctx.state["runs"] = ctx.state.get("runs", 0) + 1
    return Result(runs=ctx.state["runs"])
    """,
    result="runs: int",
    imports="import time",
)

GUARDS = ("circuit", "budget", "rate_limits")
"""The parts of the state ``agentops reset`` may clear."""


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


def test_a_pause_takes_effect_at_once_even_while_a_run_holds_the_lock(project, invoke):
    """pause returns while a run holds the lock; that run ends well, the next is skipped (75)."""
    project.add_agent("slow", BLOCKING, 'timeout = "2m"\n')
    with run_holding_the_lock(project, "slow") as running:
        paused = invoke("pause", "slow", "--reason", "maintenance window")
        assert running.poll() is None, "pause returned without waiting for the lock"
        assert (paused.exit_code, paused.stderr) == (0, "")
        assert paused.stdout == "slow: paused (maintenance window)\n"
        assert (project.home / "state" / "slow.paused.json").exists()
        [row] = json.loads(invoke("status", "slow", "--json").stdout)
        assert (row["health"], row["why"]) == ("paused", "paused: maintenance window")
        assert row["paused"]["reason"] == "maintenance window"
        assert row["running"]["pid"] == running.pid
    assert project.state("slow")["data"] == {"runs": 1}, "the run under way was left to finish"

    skipped = invoke("run", "slow")
    assert (skipped.exit_code, skipped.stdout, skipped.stderr) == (75, "", "")
    last = project.events("slow")[-1]
    assert (last["event"], last["reason"]) == ("run.skipped", "paused")
    assert project.state("slow")["data"] == {"runs": 1}
    table = invoke("status").stdout.splitlines()
    assert table[0].split()[:2] == ["AGENT", "HEALTH"]
    assert table[1].split()[:2] == ["slow", "paused"]
    assert table[1].endswith("paused: maintenance window")

    assert invoke("run", "slow").exit_code == 75, "paused until resumed, however often"
    resumed = invoke("resume", "slow")
    assert (resumed.exit_code, resumed.stdout, resumed.stderr) == (0, "slow: resumed\n", "")
    assert not (project.home / "state" / "slow.paused.json").exists()
    assert invoke("run", "slow").exit_code == 0
    assert project.state("slow")["data"] == {"runs": 2}
    [row] = json.loads(invoke("status", "slow", "--json").stdout)
    assert (row["health"], row["paused"]) == ("ok", None)
    again = invoke("resume", "slow")
    assert (again.exit_code, again.stdout) == (0, "slow: was not paused\n")

    names = project.event_names("slow")
    paused_line = next(e for e in project.events("slow") if e["event"] == "agent.paused")
    assert paused_line["reason"] == "maintenance window"
    assert names.count("agent.resumed") == 2


def test_a_pause_without_a_reason_and_of_an_agent_whose_state_is_unreadable(project, invoke):
    """A pause reads no state: it works on an agent whose state is damaged; runs are skipped."""
    project.add_agent("hello")
    project.state_path("hello").parent.mkdir()
    project.state_path("hello").write_text("{damaged")
    paused = invoke("pause", "hello")
    assert (paused.exit_code, paused.stdout) == (0, "hello: paused\n")
    skipped = invoke("run", "hello")
    assert (skipped.exit_code, skipped.stdout, skipped.stderr) == (75, "", "")
    assert project.state_path("hello").read_text() == "{damaged"
    [row] = json.loads(invoke("status", "--json").stdout)
    assert row["health"] == "broken", "an unreadable state outranks the pause"


# -- reset -------------------------------------------------------------------------------------


@pytest.fixture
def guarded(project, invoke):
    """An agent with an open circuit, two spends, and entries in two rate-limit windows."""
    project.add_agent("guarded", GUARDED, GUARDED_TOML)
    assert invoke("run", "guarded").exit_code == 0
    failed = invoke("run", "guarded", "-p", "fail=true")
    assert failed.exit_code == 1
    assert "CIRCUIT OPEN" in failed.stderr
    state = project.state("guarded")
    assert state["circuit"]["state"] == "open"
    assert len(state["budget"]["spends"]) == 2
    assert sorted(state["rate_limits"]) == ["action:publish", "runs"]
    assert all(len(window) == 2 for window in state["rate_limits"].values())
    skipped = invoke("run", "guarded")
    assert (skipped.exit_code, skipped.stderr) == (75, "")
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
def test_reset_clears_only_what_it_says(guarded, invoke, flag, cleared, said, logged):
    """Each flag empties its guard, leaves the others and everything else as they were; logged."""
    project = guarded
    before, ledger = project.state("guarded"), project.ledger("guarded")
    lines = len(project.events("guarded"))
    result = invoke("reset", "guarded", flag)
    assert (result.exit_code, result.stdout, result.stderr) == (0, said + "\n", "")
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
    assert invoke("run", "guarded").exit_code == expected


def test_reset_of_an_unreadable_state_is_74_and_leaves_it(project, invoke):
    """The state does not parse: every reset exits 74 naming the file; no file changes."""
    project.add_agent("hello")
    assert invoke("run", "hello").exit_code == 0
    assert invoke("run", "hello").exit_code == 0
    project.state_path("hello").write_text('{"schema_version": 2, "agent": "hel')
    files = project.snapshot()
    for flag in ("--circuit", "--budget", "--limits", "--all"):
        result = invoke("reset", "hello", flag)
        assert result.exit_code == 74
        said_one_line(result, str(project.state_path("hello")), "unreadable state")
        assert project.snapshot() == files
    refused = [e for e in project.events("hello") if e["event"] == "command.refused"]
    assert [e["exit_code"] for e in refused] == [74] * 4
    assert not any("reason" in e for e in refused), "an error has no skip's reason to say"
    assert "run.aborted" not in project.event_names("hello"), "a reset is not a run"


# -- state show, diff, restore -------------------------------------------------------------


@pytest.fixture
def saved_twice(project, invoke):
    """hello, run twice: its state says runs=2, its backup runs=1."""
    project.add_agent("hello")
    for _ in range(2):
        assert invoke("run", "hello").exit_code == 0
    assert json.loads(project.state_path("hello").with_suffix(".json.bak").read_text())["data"] == {
        "runs": 1
    }
    return project


def test_state_show_prints_the_state_file_as_it_is(saved_twice, invoke):
    """show: the state pretty-printed, exactly as the file holds it; nothing written."""
    project = saved_twice
    files = project.snapshot()
    shown = invoke("state", "show", "hello")
    assert (shown.exit_code, shown.stderr) == (0, "")
    assert shown.stdout == project.state_path("hello").read_text()
    assert shown.stdout.startswith('{\n  "schema_version": 2,\n  "agent": "hello",\n')
    assert project.snapshot() == files


def test_state_show_folds_a_crashed_runs_journal_in_memory_only(project, invoke):
    """A dead run's journal shows in the state printed (an unresolved action); no file changes."""
    project.add_agent("hello")
    assert invoke("run", "hello").exit_code == 0
    dead = "20261122T100000Z-dead00"
    records = [
        {"op": "begin", "at": "2026-11-22T10:00:00Z", "agent": "hello", "kind": "run"},
        {"op": "intent", "at": "2026-11-22T10:00:07Z", "action": "publish", "key": "post-1"},
    ]
    journal = project.home / "state" / "hello.journal"
    journal.write_text("".join(json.dumps({"run_id": dead, **r}) + "\n" for r in records))
    files = project.snapshot()
    shown = invoke("state", "show", "hello")
    assert shown.exit_code == 0, shown.stderr
    state = json.loads(shown.stdout)
    assert state["ledger_summary"]["unresolved"] == [["publish", "post-1"]]
    assert project.state("hello")["ledger_summary"]["unresolved"] == []
    assert project.snapshot() == files


@pytest.mark.usefixtures("saved_twice")
def test_state_diff_shows_what_the_last_save_changed(invoke):
    """diff: unified, the backup against the state, ending with a newline."""
    diff = invoke("state", "diff", "hello")
    assert (diff.exit_code, diff.stderr) == (0, "")
    lines = diff.stdout.splitlines()
    assert lines[:2] == ["--- hello (before the last save)", "+++ hello (now)"]
    assert '-    "runs": 1' in lines
    assert '+    "runs": 2' in lines
    assert diff.stdout.endswith("\n")


def test_restore_swaps_the_state_and_its_backup_so_a_second_restore_undoes_it(saved_twice, invoke):
    """restore: the backup becomes the state, the state the backup; a second restore undoes it."""
    project = saved_twice
    state_path = project.state_path("hello")
    backup_path = state_path.with_suffix(".json.bak")
    kept_path = state_path.with_suffix(".json.pre-restore")
    newer, older = state_path.read_bytes(), backup_path.read_bytes()

    first = invoke("state", "restore", "hello")
    assert (first.exit_code, first.stderr) == (0, "")
    assert first.stdout == (
        "hello: the previous state is restored; the one it replaced is the backup now "
        "(restore again to undo)\n"
    )
    assert (state_path.read_bytes(), backup_path.read_bytes()) == (older, newer)
    assert kept_path.read_bytes() == newer
    diff = invoke("state", "diff", "hello").stdout.splitlines()
    assert '-    "runs": 2' in diff
    assert '+    "runs": 1' in diff

    second = invoke("state", "restore", "hello")
    assert second.exit_code == 0
    assert (state_path.read_bytes(), backup_path.read_bytes()) == (newer, older)
    assert kept_path.read_bytes() == older
    assert project.event_names("hello")[-2:] == ["state.restored", "state.restored"]

    assert invoke("state", "restore", "hello").exit_code == 0
    assert invoke("run", "hello").exit_code == 0
    assert project.state("hello")["data"] == {"runs": 2}, "the run went on from the restored state"
    assert kept_path.read_bytes() == newer, "a save after the restore leaves .pre-restore"


def test_restore_mends_an_unreadable_state_and_keeps_it_aside(saved_twice, invoke):
    """The state does not parse: restore puts the backup back, keeps the bad file; runs go on."""
    project = saved_twice
    state_path = project.state_path("hello")
    backup = state_path.with_suffix(".json.bak").read_bytes()
    state_path.write_text("{damaged")
    assert invoke("run", "hello").exit_code == 74
    restored = invoke("state", "restore", "hello")
    assert (restored.exit_code, restored.stderr) == (0, "")
    assert state_path.read_bytes() == backup
    assert state_path.with_suffix(".json.pre-restore").read_text() == "{damaged"
    assert invoke("run", "hello").exit_code == 0
    assert project.state("hello")["data"] == {"runs": 2}


@pytest.mark.parametrize("backup", [None, "{damaged"], ids=["no-backup", "unreadable-backup"])
def test_restore_without_a_readable_backup_is_74_and_changes_nothing(project, invoke, backup):
    """No backup, or one that does not parse: 74, one line naming it; the state stays."""
    project.add_agent("hello")
    assert invoke("run", "hello").exit_code == 0
    backup_path = project.state_path("hello").with_suffix(".json.bak")
    assert not backup_path.exists(), "the first save has nothing to back up"
    if backup is not None:
        backup_path.write_text(backup)
    files = project.snapshot()
    result = invoke("state", "restore", "hello")
    assert result.exit_code == 74
    why = "there is no backup to restore" if backup is None else "unreadable state"
    said_one_line(result, str(backup_path), why)
    assert project.snapshot() == files


def test_edits_are_refused_while_a_run_holds_the_lock_and_are_no_runs(project, invoke):
    """reset, restore, ledger --resolve: 75 and one line while a run holds the lock; no change.

    Refusals of operator commands are logged as command.refused, never as a run
    skipped or aborted: the report counts only the runs.
    """
    project.add_agent("slow", BLOCKING, 'timeout = "2m"\n')
    (project.home / "go").write_text("")
    for _ in range(2):
        assert invoke("run", "slow").exit_code == 0
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
            refused = invoke(*edit)
            assert refused.exit_code == 75, (edit, refused.stderr)
            said_one_line(refused, "slow is already running (pid")
            assert project.snapshot() == files
    refusals = [e for e in project.events("slow") if e["event"] == "command.refused"]
    assert [(e["exit_code"], e["reason"]) for e in refusals] == [(75, "overlap")] * 4
    typo = invoke("ledger", "slow", "--resolve", "k", "--done")
    said_one_line(typo, "slow has no ledger entry 'k'")
    assert typo.exit_code == 2
    report = json.loads(invoke("report", "slow", "--json").stdout)["agents"]["slow"]
    assert (report["invocations"], report["runs"]) == (3, 3)
    assert report["statuses"]["succeeded"] == 3
    assert report["skip_reasons"] == {}
    assert report["errors"]["total"] == 0
    last = [
        json.loads(line) for line in invoke("logs", "slow", "--last", "--json").stdout.splitlines()
    ]
    assert [e["event"] for e in last] == ["run.started", "run.finished"], "--last skips edits"


# -- init ------------------------------------------------------------------------------------


# -- check -----------------------------------------------------------------------------------


# -- bad input ---------------------------------------------------------------------------------


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


# -- the ledger command after a crash ------------------------------------------------------


def test_the_ledger_command_shows_a_crashed_runs_actions(project, invoke):
    """After a kill, `agentops ledger` lists the unresolved action from the journal."""
    project.add_agent("agent", RECONCILED)
    write_journal(project, "agent", DEAD_BEGIN, dead_commit("a"), dead_intent("b", second=3))
    listing = invoke("ledger", "agent")
    assert listing.exit_code == 0
    assert listing.stdout.splitlines()[1].split()[:3] == ["effect", "b", "unresolved"]
    every = json.loads(invoke("ledger", "agent", "--all", "--json").stdout)
    assert {(r["key"], r["status"]) for r in every} == {("a", "committed"), ("b", "unresolved")}
    assert (project.home / "state" / "agent.journal").exists(), "looking changes nothing"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--resolve", "a", "--done", "--redo"], "needs one of --done or --redo"),
        (["--action", "effect"], "go with --resolve KEY"),
        (["--resolve", "a", "--redo"], "'a' is committed"),
    ],
)
def test_ledger_refuses_ambiguous_or_dangerous_settlements(project, invoke, args, expected):
    """Both --done and --redo, --action alone, --redo of a committed action: exit 2."""
    project.add_agent("agent", RECONCILED)
    assert invoke("run", "agent").exit_code == 0
    result = invoke("ledger", "agent", *args)
    assert result.exit_code == 2
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1


def test_operator_commands_say_why_when_the_agent_is_busy(project, invoke):
    """reset while a run holds the lock: exit 75 with one line, not silence."""
    project.add_agent("agent", BLOCKING, 'timeout = "2m"\n')
    with run_holding_the_lock(project, "agent"):
        result = invoke("reset", "agent", "--circuit")
    assert result.exit_code == 75
    assert "is already running" in result.stderr
    assert result.stderr.count("\n") == 1
