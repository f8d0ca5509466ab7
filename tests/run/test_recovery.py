"""Recovering a run that died: its journal folded in, and the run recorded as crashed or timeout.

Most tests hand :func:`recover_dead_run` what a dead run leaves (journal
records, a deadline marker) and read the state it records; a few run
``agentops`` to leave those files for real.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from agentops._infra.fs import FileSystem
from agentops._infra.log import RunLogSink, make_logger
from agentops._infra.redact import Redactor
from agentops.model.journal import parse_lines
from agentops.model.ledger import Ledger
from agentops.model.state import AgentState
from agentops.project.config import AgentConfig
from agentops.project.home import AgentSpec
from agentops.run.deadline import Marker
from agentops.run.recovery import CRASHED_MESSAGE, marker_of, recover_dead_run
from memstore import registered
from storeprocess import open_at
from suite import (
    AGENTOPS,
    DEAD_BEGIN,
    RECONCILED,
    REPO,
    agent_source,
    cron_env,
    dead_commit,
    dead_intent,
    write_journal,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

DEAD = "20261122T100000Z-dead00"
BEGUN = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
STACK = (
    "Fatal Python error: Timeout\n\n"
    "Thread 0x00007f (most recent call first):\n"
    '  File "/srv/agentops/agents/agent/agent.py", line 12 in fetch\n'
    '  File "/srv/agentops/agents/agent/agent.py", line 20 in run\n'
    '  File "/srv/agentops/src/agentops/gatekeeper.py", line 340 in call_agent\n'
)
STUCK = (
    "agent: the run passed its hard deadline (6s) and was ended, stuck at agent.py:12 in fetch()"
)


def journal(*records: dict, run_id: str = DEAD, kind: str = "run") -> list:
    """The records of a journal a run ``run_id`` left, as the store reads them back."""
    begin = {"op": "begin", "at": BEGUN.isoformat(), "agent": "agent", "kind": kind}
    lines = [json.dumps({"run_id": run_id, **r}) for r in (begin, *records)]
    return parse_lines(("\n".join(lines) + "\n").encode(), agent="agent")


def intent(key: str, second: int = 1) -> dict:
    return {"op": "intent", "at": f"2026-11-22T10:00:{second:02}Z", "action": "post", "key": key}


def commit(key: str, second: int = 2) -> dict:
    return {**intent(key, second), "op": "commit", "result": key}


def ended(run_id: str = DEAD, words: str = STACK) -> Marker:
    """The marker of a run its hard deadline ended (or that was abandoned)."""
    return Marker(run_id, BEGUN, ended=True, last_words=words)


@pytest.fixture
def memory() -> Iterator[object]:
    """``memory://`` registered as a store backend for the test."""
    with registered() as backend:
        yield backend


@pytest.fixture
def recover(tmp_path):
    """Call recover_dead_run on a state of its own; return the state, ledger and log events."""
    sinks = []

    def call(
        *,
        records=None,
        marker=None,
        state=None,
        ledger=None,
        config: dict | None = None,
    ):
        state = state or AgentState(agent="agent")
        ledger = ledger if ledger is not None else Ledger()
        spec = AgentSpec(
            "agent", tmp_path, AgentConfig.model_validate({"timeout": "1s", **(config or {})})
        )
        path = tmp_path / f"agent-{len(sinks)}.jsonl"
        sink = RunLogSink(path)
        sinks.append(sink)
        log = make_logger(
            sink, clock=lambda: BEGUN, redactor=Redactor(), agent="agent", run_id="now"
        )
        recover_dead_run(
            state,
            spec,
            records=records,
            marker=marker,
            ledger=lambda: ledger,
            log=log,
            log_path=path,
        )
        sink.close()
        lines = path.read_text().splitlines() if path.exists() else []
        return state, ledger, [json.loads(line) for line in lines]

    return call


# -- which marker tells: published, local, or both -------------------------------------


def test_the_journals_run_picks_its_marker_from_those_found():
    """A stale marker of another run is passed over for the journal's run's own."""
    other = ended("20261122T090000Z-other0")
    assert marker_of(AgentState(agent="agent"), journal(), [other, ended()]) == ended()
    assert marker_of(AgentState(agent="agent"), journal(), []) is None


def test_without_a_journal_the_first_run_not_recorded_is_picked(recover):
    """A marker in the store and in the local file of the same run: one run, recorded once."""
    state, _, _ = recover(marker=ended())
    newer = ended("20261122T110000Z-newer0")
    found = [ended(), newer, ended()]  # the store's, then the local file's
    assert marker_of(state, None, found) == newer
    assert marker_of(state, None, [ended(), ended()]) == ended(), "recorded: nothing new"
    again, _, _ = recover(marker=marker_of(state, None, [ended(), ended()]), state=state)
    assert [error.run_id for error in again.errors] == [DEAD]


@pytest.mark.usefixtures("memory")
def test_a_marker_in_the_store_is_a_timeout_for_the_next_run_anywhere_and_is_dropped(project):
    """Published by the host that saw the run end, read by a run on another: recorded once."""
    store = open_at(f"memory://{project.home.name}")
    project.add_agent("agent", toml='timeout = "1s"\n')
    assert store.publish_marker("agent", ended())
    for _ in range(2):
        assert project.run("agent", store=store).status == "succeeded"
    state = store.load("agent")
    assert [(error.run_id, error.category) for error in state.errors] == [(DEAD, "timeout")]
    assert state.metrics.failed == 1
    assert store.remains("agent").markers == ()


@pytest.mark.usefixtures("memory")
def test_two_runs_ended_by_their_deadline_are_both_recorded_one_run_each(project):
    """A second marker waiting is not dropped with the first: the next run records it."""
    store = open_at(f"memory://{project.home.name}")
    project.add_agent("agent", toml='timeout = "1s"\n')
    other = "20261122T110000Z-other0"
    assert store.publish_marker("agent", ended())
    assert store.publish_marker("agent", ended(other))
    assert project.run("agent", store=store).status == "succeeded"
    assert len(store.remains("agent").markers) == 1, "the run it did not record stays"
    assert project.run("agent", store=store).status == "succeeded"
    state = store.load("agent")
    timeouts = sorted(e.run_id for e in state.errors if e.category == "timeout")
    assert timeouts == sorted([DEAD, other])
    assert state.metrics.failed == 2
    assert store.remains("agent").markers == ()


# -- crashed or timeout ----------------------------------------------------------------


def test_a_killed_run_is_recorded_as_crashed(recover):
    """A journal without a deadline marker: crashed, from its begin to its last record."""
    state, ledger, events = recover(records=journal(commit("a"), intent("b", 3)))
    last = state.last_run
    assert (last.run_id, last.status, last.error) == (DEAD, "crashed", CRASHED_MESSAGE)
    assert (last.started_at, last.finished_at) == (BEGUN, BEGUN + timedelta(seconds=3))
    assert [e.category for e in state.errors] == ["crashed"]
    assert (state.metrics.runs, state.metrics.failed) == (1, 1)
    assert ledger.get("post", "a").status == "committed"
    assert ledger.get("post", "b").status == "unresolved"
    recovered = next(e for e in events if e["event"] == "run.recovered")
    assert (recovered["crashed_run"], recovered["unresolved"]) == (DEAD, ["post:b"])


def test_a_crash_does_not_count_for_the_breaker(recover):
    """kill -9 is more often an operator than the agent: a crash never opens the circuit."""
    state, _, _ = recover(records=journal(), config={"circuit": {"failures": 1}})
    assert state.circuit.state == "closed"
    assert state.circuit.failures == 0


def test_a_crashed_run_counts_for_the_run_rate_limit(recover):
    """It was admitted before it died: its start is counted in the runs window."""
    state, _, _ = recover(records=journal(), config={"limits": {"runs": "1/hour"}})
    assert state.rate_limits["runs"] == [BEGUN]


def test_a_run_its_deadline_ended_is_recorded_as_a_timeout(recover):
    """Journal and marker of one run: a timeout saying where it was stuck; the breaker counts it."""
    state, _, events = recover(records=journal(intent("a")), marker=ended())
    last = state.last_run
    assert (last.status, last.error) == ("timeout", STUCK)
    assert [e.category for e in state.errors] == ["timeout"]
    assert state.circuit.failures == 1
    assert state.circuit.reason == STUCK
    passed = next(e for e in events if e["event"] == "run.deadline_passed")
    assert (passed["dead_run"], passed["stack"]) == (DEAD, STACK)


def test_a_run_abandoned_for_swallowing_its_stop_is_a_timeout(recover):
    """The marker says it was abandoned, with no stack: still a timeout, stuck nowhere named."""
    state, _, _ = recover(records=journal(), marker=ended(words="abandoned: timeout"))
    assert state.last_run.status == "timeout"
    assert state.last_run.error == "agent: the run passed its hard deadline (6s) and was ended"
    assert state.circuit.failures == 1, "it counts for the breaker, unlike a crash"


def test_a_marker_that_was_never_written_to_is_a_crash(recover):
    """A marker holding only its first line: the process died some other way, so crashed."""
    marker = Marker(DEAD, BEGUN, ended=False, last_words="")
    state, _, _ = recover(records=journal(), marker=marker)
    assert state.last_run.status == "crashed"


def test_a_marker_of_another_run_does_not_make_a_crash_a_timeout(recover):
    """Only the run the marker names is a timeout."""
    state, _, _ = recover(records=journal(), marker=ended(run_id="20261122T090000Z-other0"))
    assert (state.last_run.run_id, state.last_run.status) == (DEAD, "crashed")


def test_a_run_ended_before_its_journal_existed_is_a_timeout(recover):
    """Stuck importing its code: no journal, only the marker; recorded until its deadline."""
    words = STACK.replace("line 12 in fetch", "line 3 in <module>")
    state, ledger, _ = recover(marker=ended(words=words))
    last = state.last_run
    assert (last.run_id, last.status) == (DEAD, "timeout")
    assert last.error.endswith("stuck at agent.py:3 in <module>()")
    assert (last.started_at, last.finished_at) == (BEGUN, BEGUN + timedelta(seconds=6))
    assert state.rate_limits == {}, "it was never admitted"
    assert ledger.entries == {}


def test_an_approval_that_died_is_folded_but_not_recorded_as_a_run(recover):
    """review approve died in apply(): its actions are recovered, the last run stays as it was."""
    state, ledger, events = recover(records=journal(intent("a"), kind="approve"))
    assert ledger.get("post", "a").status == "unresolved"
    assert state.last_run is None
    assert state.metrics.runs == 0
    assert "run.recovered" in [e["event"] for e in events]


# -- recorded once -----------------------------------------------------------------------


def test_a_journal_recovered_twice_is_recorded_once(recover):
    """Recording is idempotent like folding: the process may die before the journal goes."""
    records = journal(commit("a"))
    state, ledger, _ = recover(records=records, marker=ended())
    again, _, events = recover(records=records, marker=ended(), state=state, ledger=ledger)
    assert again.metrics.failed == 1
    assert len(again.errors) == 1
    assert again.circuit.failures == 1
    assert len(again.rate_limits["runs"]) == 1
    assert events == [], "nothing new to say"


def test_a_marker_left_after_the_commit_is_not_recorded_twice(recover):
    """The state holding the run was committed, the marker not yet removed: nothing more."""
    state, ledger, _ = recover(marker=ended())
    again, _, _ = recover(marker=ended(), state=state, ledger=ledger)
    assert again.metrics.failed == 1
    assert len(again.errors) == 1
    assert again.circuit.failures == 1


def test_timeouts_in_a_row_open_the_circuit(recover):
    """Two runs ended by their deadline, stuck in the same place: the circuit opens."""
    config = {"circuit": {"failures": 2}}
    first = "20261122T100000Z-dead01"
    state, ledger, _ = recover(records=journal(run_id=first), marker=ended(first), config=config)
    assert state.circuit.state == "closed"
    second = "20261122T110000Z-dead02"
    state, _, _ = recover(
        records=journal(run_id=second),
        marker=ended(second),
        state=state,
        ledger=ledger,
        config=config,
    )
    assert (state.circuit.state, state.circuit.failures) == ("open", 2)


# -- through a run -----------------------------------------------------------------------

QUICK = agent_source(
    "return Result(ok=True)",
    result="ok: bool",
)


def write_marker(project, *, run_id: str = DEAD, started: datetime, words: str = STACK) -> None:
    path = project.home / "state" / "agent.deadline"
    path.parent.mkdir(exist_ok=True)
    first = json.dumps({"run_id": run_id, "started_at": started.isoformat()})
    path.write_text(first + "\n" + words)


class DiesRemovingTheMarker(FileSystem):
    """The process dies right after the recovered run was committed, before the marker goes."""

    def unlink(self, path: Path) -> None:
        if path.suffix == ".deadline":
            raise SystemExit("killed")
        super().unlink(path)


def test_a_marker_left_after_its_run_was_committed_is_recorded_once(project, clock):
    """Died between committing the dead run and removing its marker: the next run adds nothing."""
    project.add_agent("agent", QUICK, 'timeout = "1s"\n')
    write_marker(project, started=clock() - timedelta(minutes=5))
    with pytest.raises(SystemExit):
        project.run(clock=clock, fs=DiesRemovingTheMarker())
    assert project.state("agent")["last_run"]["run_id"] == DEAD
    assert (project.home / "state" / "agent.deadline").exists()
    assert project.run(clock=clock).exit_code == 0
    assert not (project.home / "state" / "agent.deadline").exists()
    state = project.state("agent")
    assert [e["category"] for e in state["errors"]] == ["timeout"]
    assert state["metrics"]["failed"] == 1


def test_a_dry_run_leaves_a_real_runs_marker_alone(project, clock):
    """A dry run saves nothing, so it must not consume the marker the next real run records."""
    project.add_agent("agent", QUICK, 'timeout = "1s"\n')
    write_marker(project, started=clock() - timedelta(minutes=5))
    assert project.run(clock=clock, dry_run=True).exit_code == 0
    assert (project.home / "state" / "agent.deadline").exists()
    assert not project.state_path("agent").exists()
    assert project.run(clock=clock).exit_code == 0
    assert project.state("agent")["errors"][0]["category"] == "timeout"


def test_a_circuit_opened_by_a_recovered_timeout_is_announced_once(project, clock):
    """The run whose recovered timeout opens the circuit says so, loudly, once."""
    project.add_agent("agent", QUICK, 'timeout = "1s"\n\n[circuit]\nfailures = 1\n')
    write_marker(project, started=clock() - timedelta(minutes=1))
    outcome = project.run(clock=clock)
    assert (outcome.status, outcome.exit_code) == ("skipped", 75)
    assert project.state("agent")["circuit"]["state"] == "open"
    assert "circuit.opened" in project.event_names("agent")
    assert not outcome.quiet
    assert "CIRCUIT OPEN" in outcome.message
    clock.advance(minutes=1)
    assert project.run(clock=clock).quiet, "the skips that follow stay quiet"


SLEEPER = agent_source(
    """
    time.sleep(30)
    return Result(ok=True)
    """,
    result="ok: bool",
    imports="import time",
)


def test_a_run_killed_midway_still_counts_for_the_rate_limit(project):
    """runs = "1/hour": a run killed with SIGKILL counted; the next one is skipped (75)."""
    project.add_agent("agent", SLEEPER, '[limits]\nruns = "1/hour"\n')
    command = [str(AGENTOPS), "--home", str(project.home), "run", "agent"]
    proc = subprocess.Popen(command, env=cron_env(project.home))
    journal_path = project.home / "state" / "agent.journal"
    deadline = time.monotonic() + 30
    while not journal_path.exists():
        assert time.monotonic() < deadline, "the run never began"
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


# -- crashes found by a review: recovery must not lose or repeat a commit ------------------


def test_publisher_recovers_a_crash_inside_a_write(project, invoke):
    """Killed after writing post-01 but before its commit: reconciled, never rewritten."""
    shutil.copytree(REPO / "agents" / "publisher", project.home / "agents" / "publisher")
    shutil.rmtree(project.home / "agents" / "publisher" / "outbox", ignore_errors=True)
    outbox = project.home / "agents" / "publisher" / "outbox"
    outbox.mkdir()
    (outbox / "post-01.md").write_text("written by the run that died\n")
    write_journal(project, "publisher", DEAD_BEGIN, dead_intent("post-01", "publish"))
    for _ in range(2):
        result = invoke("run", "publisher")
        assert (result.exit_code, result.stderr) == (0, "")
    assert (outbox / "post-01.md").read_text() == "written by the run that died\n"
    assert len(list(outbox.glob("*.md"))) == 12
    assert project.events("publisher")[-1]["result"] == {"published": [], "already": 12}


def test_reconcile_can_return_the_result_it_found(project, clock):
    """reconcile() returning a receipt: ctx.action returns it; returning True: None."""
    project.add_agent("agent", RECONCILED)
    write_journal(project, "agent", DEAD_BEGIN, dead_intent("a"), dead_intent("b", second=2))
    assert project.run(clock=clock).exit_code == 0
    assert project.events("agent")[-1]["result"] == {"results": [{"found": "a"}, None]}


def test_a_damaged_journal_is_left_alone_and_nothing_is_redone(project, clock):
    """A garbled line before other records: exit 74, the journal kept, no commit lost."""
    project.add_agent("agent", RECONCILED)
    path = write_journal(project, "agent", DEAD_BEGIN, dead_commit("a"), dead_commit("b", second=3))
    damaged = path.read_bytes().replace(b'{"run_id"', b'#"run_id"', 2)
    path.write_bytes(damaged)
    outcome = project.run(clock=clock)
    assert outcome.exit_code == 74
    assert "unreadable journal (line 1 is not a journal record: not JSON)" in outcome.message
    assert path.read_bytes() == damaged


def test_a_journal_of_another_agent_is_refused(project, clock):
    """A journal copied from another agent is not folded in: exit 74."""
    project.add_agent("agent", RECONCILED)
    write_journal(project, "agent", {**DEAD_BEGIN, "agent": "other"}, dead_commit("a"))
    outcome = project.run(clock=clock)
    assert outcome.exit_code == 74
    assert "journal of agent 'other'" in outcome.message


def test_a_dry_run_after_a_crash_reconciles_in_memory_and_saves_nothing(project, clock):
    """A dry run sees what a real run would, and leaves the journal for the real one."""
    project.add_agent("agent", RECONCILED)
    path = write_journal(project, "agent", DEAD_BEGIN, dead_intent("a"))
    assert project.run(clock=clock, dry_run=True).exit_code == 0
    assert path.exists()
    assert not project.state_path("agent").exists()


def test_settle_command_is_quoted_for_the_shell(project, invoke):
    """A key with spaces or shell characters is quoted in the line that says how to settle it."""
    project.add_agent(
        "agent",
        agent_source(
            """
            ctx.action("post", key="post 1; rm -rf ~", do=lambda: None)
            return Result(ok=True)
            """,
            result="ok: bool",
        ),
    )
    write_journal(project, "agent", DEAD_BEGIN, dead_intent("post 1; rm -rf ~", "post"))
    result = invoke("run", "agent")
    assert result.exit_code == 1
    assert (
        "agentops ledger agent --action post --resolve 'post 1; rm -rf ~' --done" in result.stderr
    )
