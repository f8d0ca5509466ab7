"""The status read model and `agentops status`/`health`: health judged from state alone."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from agentops.ops.status import CONTENT, ROW_KEYS, agent_status
from agentops.project.home import Project as AgentopsProject
from agentops.store.file import FileStore
from suite import T0, FakeClock, agent_source

FAILS_ON_DEMAND = agent_source(
    """
    if params.fail:
        raise RuntimeError("the feed is down")
    return Result(ok=True)
    """,
    params="fail: bool = False",
    result="ok: bool",
)

BERLIN = ZoneInfo("Europe/Berlin")


def status_of(project, name, now, zone=UTC):
    home = AgentopsProject(project.home)
    return agent_status(home, FileStore(project.home / "state"), name, now=now, zone=zone)


def set_up_long_ago(project, name):
    """Date agent.toml back, so a tick after it was set up is due (not never_run)."""
    toml = project.home / "agents" / name / "agent.toml"
    os.utime(toml, (0, 0))


# -- health -----------------------------------------------------------------------------


def test_a_new_agent_has_never_run_and_is_fine(project):
    """No run, no attempt, set up after the last tick: never_run, content."""
    project.add_agent("fresh", FAILS_ON_DEMAND, 'schedule = "0 * * * *"\n')
    status = status_of(project, "fresh", datetime.now(UTC))
    assert (status.health, status.why) == ("never_run", None)
    assert status.health in CONTENT


def test_a_successful_run_is_ok_until_a_tick_passes_without_one(project):
    """Hourly, timeout 1m, grace 6m: ok after a run; stale once the next tick is 6m late."""
    project.add_agent("hourly", FAILS_ON_DEMAND, 'schedule = "0 * * * *"\ntimeout = "1m"\n')
    clock = FakeClock(datetime(2026, 11, 22, 12, 0, 5, tzinfo=UTC))
    assert project.run("hourly", clock=clock).exit_code == 0
    assert status_of(project, "hourly", clock.now + timedelta(minutes=60)).health == "ok"
    late = datetime(2026, 11, 22, 13, 6, 1, tzinfo=UTC)
    status = status_of(project, "hourly", late)
    assert status.health == "stale"
    assert "since the tick at 2026-11-22T13:00:00Z" in status.why


def test_a_failed_run_is_failing_until_one_succeeds(project):
    """failing names the count of failures in a row and the error."""
    project.add_agent("flaky", FAILS_ON_DEMAND, "[circuit]\nfailures = 5\n")
    clock = FakeClock(T0)
    project.run("flaky", clock=clock, overrides={"fail": True})
    project.run("flaky", clock=clock, overrides={"fail": True})
    status = status_of(project, "flaky", clock.now)
    assert status.health == "failing"
    assert status.why.startswith("2 failed run(s): flaky: run() raised RuntimeError")
    assert status.row["consecutive_failures"] == 2
    project.run("flaky", clock=clock)
    assert status_of(project, "flaky", clock.now).health == "ok"


def test_an_open_circuit_a_pause_and_running_come_first(project, invoke):
    """paused > circuit_open > failing; running shows while a run holds the lease."""
    project.add_agent("flaky", FAILS_ON_DEMAND, "[circuit]\nfailures = 1\n")
    clock = FakeClock(T0)
    project.run("flaky", clock=clock, overrides={"fail": True})
    assert status_of(project, "flaky", clock.now).health == "circuit_open"
    assert invoke("pause", "flaky", "--reason", "maintenance").exit_code == 0
    status = status_of(project, "flaky", clock.now)
    assert (status.health, status.why) == ("paused", "paused: maintenance")
    assert status.row["paused"]["reason"] == "maintenance"
    assert invoke("resume", "flaky").exit_code == 0
    store = FileStore(project.home / "state")
    with store.lease("flaky", run_id="r"):
        assert status_of(project, "flaky", clock.now).health == "circuit_open"
    project.add_agent("calm", FAILS_ON_DEMAND)
    with store.lease("calm", run_id="r"):
        running = status_of(project, "calm", clock.now)
        assert running.health == "running"
        assert running.row["running"]["pid"] == os.getpid()


def test_a_run_that_cannot_start_is_failing_by_its_attempt(project):
    """A state file that cannot be read leaves no run, only an attempt: failing, and why."""
    project.add_agent("broken", FAILS_ON_DEMAND)
    clock = FakeClock(T0)
    project.run("broken", clock=clock)
    project.state_path("broken").write_text("{not json")
    clock.advance(minutes=5)
    assert project.run("broken", clock=clock).exit_code == 74
    status = status_of(project, "broken", clock.now)
    assert status.health == "broken"  # and now the state itself cannot be read
    project.state_path("broken").unlink()
    project.add_agent("broken", FAILS_ON_DEMAND, 'schedule = "*/5 * * * *"\n[params]\nnope = 1\n')
    assert project.run("broken", clock=clock).exit_code == 78
    status = status_of(project, "broken", clock.now)
    assert status.health == "failing"
    assert "could not start (exit 78)" in status.why


def test_an_agent_whose_files_cannot_be_read_is_broken(project):
    """A bad agent.toml: the row says broken and why; the other keys are there, empty."""
    project.add_agent("bad", FAILS_ON_DEMAND, 'schedule = "whenever"\n')
    status = status_of(project, "bad", datetime.now(UTC))
    assert status.health == "broken"
    assert "schedule" in status.why
    assert list(status.row) == list(ROW_KEYS)


def test_status_reads_neither_agent_code_nor_the_ledger(project):
    """agent.py failing on import and a garbled ledger file change nothing: status is still ok."""
    project.add_agent("agent", FAILS_ON_DEMAND)
    clock = FakeClock(T0)
    assert project.run("agent", clock=clock).exit_code == 0
    (project.home / "agents" / "agent" / "agent.py").write_text("raise RuntimeError('imported')\n")
    (project.home / "state" / "agent.ledger.json").write_text("not a ledger")
    assert status_of(project, "agent", clock.now).health == "ok"


# -- staleness across schedules -----------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "last_success", "now", "expected"),
    [
        # Weekdays at 09:00: Saturday and Sunday owe nothing.
        ("0 9 * * 1-5", "2026-11-20T09:00:30", "2026-11-22T20:00:00", "ok"),  # Fri run, Sun
        ("0 9 * * 1-5", "2026-11-20T09:00:30", "2026-11-23T09:20:00", "stale"),  # Mon missed
        # The 1st and the 15th, or any Monday (cron ORs the two day fields).
        ("0 6 1,15 * 1", "2026-11-16T06:00:10", "2026-11-22T23:00:00", "ok"),  # Mon 16th ran
        ("0 6 1,15 * 1", "2026-11-16T06:00:10", "2026-11-23T06:30:00", "stale"),  # Mon 23rd
        # The 31st: months without one owe nothing.
        ("0 0 31 * *", "2026-10-31T00:01:00", "2026-11-30T23:00:00", "ok"),
        ("0 0 31 * *", "2026-10-31T00:01:00", "2026-12-31T00:30:00", "stale"),
        # A day no month has: never due.
        ("0 0 30 2 *", None, "2026-11-22T12:00:00", "never_run"),
    ],
)
def test_staleness_follows_the_schedule(project, schedule, last_success, now, expected):
    """Stale means no success since the last tick that should have run by now (grace 15m)."""
    project.add_agent("agent", FAILS_ON_DEMAND, f'schedule = "{schedule}"\ngrace = "15m"\n')
    set_up_long_ago(project, "agent")
    if last_success:
        at = datetime.fromisoformat(last_success).replace(tzinfo=UTC)
        project.run("agent", clock=FakeClock(at))
    moment = datetime.fromisoformat(now).replace(tzinfo=UTC)
    assert status_of(project, "agent", moment).health == expected


def test_staleness_is_judged_in_crons_time_zone_across_dst(project):
    """02:30 Berlin daily: the night the clocks jump from 02:00 to 03:00, cron runs it at 03:00."""
    project.add_agent("nightly", FAILS_ON_DEMAND, 'schedule = "30 2 * * *"\ngrace = "20m"\n')
    set_up_long_ago(project, "nightly")
    # Saturday 28 March 2026, 02:30 CET = 01:30 UTC: the run of that night.
    project.run("nightly", clock=FakeClock(datetime(2026, 3, 28, 1, 31, tzinfo=UTC)))
    # Sunday 29 March: 02:30 does not exist; cron runs it at 03:00 CEST = 01:00 UTC.
    before_the_late_tick = datetime(2026, 3, 29, 1, 15, tzinfo=UTC)
    assert status_of(project, "nightly", before_the_late_tick, BERLIN).health == "ok"
    after_it = datetime(2026, 3, 29, 1, 21, tzinfo=UTC)
    stale = status_of(project, "nightly", after_it, BERLIN)
    assert stale.health == "stale"
    assert "2026-03-29T01:00:00Z" in stale.why
    # Read in UTC, the same schedule was due at 02:30 UTC the day before: the zone matters.
    assert "2026-03-28T02:30:00Z" in status_of(project, "nightly", after_it, UTC).why


# -- the commands ---------------------------------------------------------------------------
