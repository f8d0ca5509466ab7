"""``agentops tick``: the agents due at a tick, each run in a forked child, on one host's files.

The tick runs in the test's process with a fake clock, and forks real
children (they inherit the clock); what a child did is read from files
outside the home, as the world would see it. Several hosts on one
PostgreSQL store are in ``tests/processes/test_tick_hosts.py``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from agentops.project.home import Project as AgentopsProject
from agentops.run.options import RunOptions
from agentops.run.runner import run_agent
from agentops.run.tick import NEEDS_A_HUMAN, due_agents, tick
from agentops.store import StoreUnavailable, open_store
from agentops.store.base import TickClaims
from agentops.store.file import FileStore
from suite import FakeClock, cron_env, remember

if TYPE_CHECKING:
    from pathlib import Path

    from agentops.run.tick import TickReport
    from suite import Project

NOON = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)
"""Half a minute into the tick of 12:00."""

WORKER = """
import os
import signal
import sys
import time
from pathlib import Path
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    world: str
    name: str
    fail: bool = False
    die: bool = False
    ends: int = 0  # ends the process with this code, as a run that says its own line does
    hold: float = 0.0
    until: str = ""  # a file: held until it holds "group_full" (at most a minute)

class Result(BaseModel):
    pid: int

def run(params: Params, ctx: Context) -> Result:
    world = Path(params.world)
    running = world / "running"
    running.mkdir(exist_ok=True)
    (running / params.name).touch()
    at_once = len(os.listdir(running))
    with open(world / "runs", "a") as f:
        f.write(f"{params.name} {os.getpid()} {at_once}\\n")
    if params.die:
        os.kill(os.getpid(), signal.SIGKILL)
    if params.ends:
        print(f"agentops: {params.name}: said by the run itself", file=sys.stderr, flush=True)
        os._exit(params.ends)
    time.sleep(params.hold)  # still running while the others start
    for _ in range(1200 if params.until else 0):
        if Path(params.until).exists() and "group_full" in Path(params.until).read_text():
            break
        time.sleep(0.05)
    (running / params.name).unlink()
    if params.fail:
        raise ValueError("the feed is down")
    return Result(pid=os.getpid())
"""


class Tick:
    """One host's ticks, on the test's project, with a fake clock."""

    def __init__(self, project: Project, world: Path) -> None:
        self.project = project
        self.world = world
        self.said = world / "said"
        self.clock = FakeClock(NOON)

    def add(
        self, name: str, schedule: str = "* * * * *", extra: str = "", **params: object
    ) -> None:
        """An agent on ``schedule`` running :data:`WORKER` with ``params``."""
        values = "".join(f"{key} = {str(value).lower()}\n" for key, value in params.items())
        self.project.add_agent(
            name,
            WORKER,
            f'schedule = "{schedule}"\n{extra}\n'
            f'[params]\nworld = "{self.world}"\nname = "{name}"\n{values}',
        )

    def say(self, line: str) -> None:
        """What a tick says for a human, kept in the world's ``said``."""
        with self.said.open("a") as handle:
            handle.write(line + "\n")

    def __call__(self) -> TickReport:
        """Tick at the clock's time."""
        options = RunOptions(
            clock=self.clock, exit_on_abandon=True, environ={**os.environ, "TZ": "UTC"}
        )
        return tick(
            AgentopsProject(self.project.home), started=self.clock(), say=self.say, options=options
        )

    def lines(self) -> list[str]:
        """What the ticks said for a human."""
        text = self.said.read_text() if self.said.exists() else ""
        remember("agentops tick (in-process)", text)
        return text.splitlines()

    def runs(self) -> list[tuple[str, int, int]]:
        """Each run started: the agent, its pid, how many agents were running then."""
        path = self.world / "runs"
        lines = path.read_text().splitlines() if path.exists() else []
        return [(name, int(pid), int(count)) for name, pid, count in map(str.split, lines)]


@pytest.fixture
def ticks(project, tmp_path) -> Tick:
    world = tmp_path / "world"
    world.mkdir()
    return Tick(project, world)


def test_due_agents_are_those_whose_schedule_fired_in_the_ticks_minute(ticks):
    """At 12:00:30: every minute and the hour are due for 12:00; 12:30 and no schedule are not."""
    ticks.add("minutely")
    ticks.add("hourly", "0 * * * *")
    ticks.add("later", "30 12 * * *")
    ticks.project.add_agent("by-hand")
    project = AgentopsProject(ticks.project.home)
    specs, problems = project.agents()
    assert problems == []
    due = due_agents(specs, NOON, store=open_store(project), zone=UTC)
    assert [(d.name, d.tick) for d in due] == [
        ("hourly", NOON.replace(second=0)),
        ("minutely", NOON.replace(second=0)),
    ]


def test_each_due_agent_runs_once_in_a_child_and_the_same_tick_again_runs_none(ticks):
    """Three agents, each in a process of its own; the same tick again: all skipped, silently."""
    for name in ("a", "b", "c"):
        ticks.add(name)
    report = ticks()
    assert report.ran == {"a": 0, "b": 0, "c": 0}
    assert report.exit_code == 0
    assert ticks.lines() == []
    pids = {pid for _, pid, _ in ticks.runs()}
    assert len(pids) == 3
    assert os.getpid() not in pids, "each ran in a child"

    again = ticks()
    assert again.ran == {"a": 75, "b": 75, "c": 75}, "the tick was taken: skipped"
    assert again.exit_code == 0
    assert ticks.lines() == []
    assert len(ticks.runs()) == 3
    assert ticks.project.events("a")[-1]["reason"] == "tick_taken"

    ticks.clock.advance(minutes=1)
    assert ticks().ran == {"a": 0, "b": 0, "c": 0}, "the next tick runs them again"


def test_one_line_per_agent_that_needs_a_human_and_a_crash_touches_no_other(ticks):
    """A failure and a SIGKILL: one line each, exit 1; the agents beside them succeed."""
    ticks.add("fine")
    ticks.add("failing", fail=True)
    ticks.add("killed", die=True)
    ticks.add("fine2")
    report = ticks()
    assert report.ran == {"fine": 0, "failing": 1, "killed": -9, "fine2": 0}
    assert report.exit_code == NEEDS_A_HUMAN
    assert sorted(report.told) == ["failing", "killed"]
    lines = ticks.lines()
    assert len(lines) == 2, lines
    assert any(line.startswith("failing: ") and "the feed is down" in line for line in lines)
    assert any(line.startswith("killed: run killed by SIGKILL (log: ") for line in lines)
    assert ticks.project.state("fine")["last_run"]["status"] == "succeeded"
    assert ticks.project.state("fine2")["last_run"]["status"] == "succeeded"


def test_a_run_that_ends_itself_saying_its_own_line_still_needs_a_human(ticks):
    """Ended 74 by itself (as a run the store gives no lease by its deadline is): exit 1."""
    ticks.add("fine")
    ticks.add("stalled", ends=74)
    report = ticks()
    assert report.ran == {"fine": 0, "stalled": 74}
    assert report.told == ("stalled",)
    assert report.exit_code == NEEDS_A_HUMAN


class ClaimsThenDown(FileStore):
    """The file store, claiming as PostgreSQL does, then stalled: settling waits out its bound."""

    def claim_ticks(self, ticks, *, scheduled=()):  # noqa: ARG002 - every due agent won
        return TickClaims(claimer=1, ticks=dict(ticks))

    def settle_ticks(self, claimer, names):  # noqa: ARG002 - it never answers
        raise StoreUnavailable("the store x did not answer within 35 s")


def test_a_store_that_stalls_mid_tick_starts_no_more_children_and_says_so_once(ticks):
    """One child ran; the store then waited out its bound: the rest are one line, not one each."""
    (ticks.project.home / "agentops.toml").write_text("[tick]\nparallel = 1\n")
    for name in ("a", "b", "c"):
        ticks.add(name)
    store = ClaimsThenDown(ticks.project.home / "state")
    options = RunOptions(
        clock=ticks.clock, exit_on_abandon=True, environ={**os.environ, "TZ": "UTC"}, store=store
    )
    report = tick(
        AgentopsProject(ticks.project.home), started=ticks.clock(), say=ticks.say, options=options
    )
    assert report.ran == {"a": 0}
    assert sorted(report.told) == ["b", "c"]
    assert report.exit_code == NEEDS_A_HUMAN
    assert ticks.lines() == [
        "the store x did not answer within 35 s: 2 agent(s) due not started this tick: b, c"
    ]
    assert [name for name, _, _ in ticks.runs()] == ["a"]


def test_an_agent_toml_that_does_not_read_is_one_line_and_the_others_run(ticks):
    """A broken agent.toml: its line, exit 1; every other agent runs."""
    ticks.add("fine")
    ticks.project.add_agent("broken", toml='schedule = "every day"\n')
    report = ticks()
    assert report.ran == {"fine": 0}
    assert report.exit_code == NEEDS_A_HUMAN
    assert len(ticks.lines()) == 1
    assert "agents/broken/agent.toml" in ticks.lines()[0]


def test_parallel_bounds_how_many_agents_run_at_once(ticks):
    """[tick] parallel = 2: never more than two agents running, and all five ran."""
    (ticks.project.home / "agentops.toml").write_text("[tick]\nparallel = 2\n")
    for n in range(5):
        ticks.add(f"a{n}", hold=0.2)
    assert set(ticks().ran.values()) == {0}
    runs = ticks.runs()
    assert sorted(name for name, _, _ in runs) == [f"a{n}" for n in range(5)]
    assert max(count for _, _, count in runs) <= 2


def test_a_group_runs_no_more_of_its_agents_at_once_than_its_limit(ticks):
    """[groups] llm = 1: the group's three agents one at a time; the one outside runs beside."""
    (ticks.project.home / "agentops.toml").write_text("[tick]\nparallel = 4\n[groups]\nllm = 1\n")
    for n in range(3):
        ticks.add(f"llm{n}", extra='group = "llm"', hold=0.2)
    assert set(ticks().ran.values()) == {0}
    # Only the group's agents run here: at most one at a time means every count is 1.
    assert [count for _, _, count in ticks.runs()] == [1, 1, 1]


def test_an_agent_in_a_group_not_configured_is_refused_alone(ticks):
    """group = "nope" without [groups] nope: 78 and one line for it; the others run."""
    ticks.add("fine")
    ticks.add("typo", extra='group = "nope"')
    report = ticks()
    assert report.ran == {"fine": 0, "typo": 78}
    assert len(ticks.lines()) == 1
    assert "group 'nope' is not in agentops.toml's [groups]" in ticks.lines()[0]


def test_catch_up_runs_a_missed_tick_once_at_the_next_tick(ticks):
    """An hourly agent missed 13:00-15:00 (the host was down): run once at 15:20, not again.

    Without catch_up it waits for 16:00; a catch-up agent never run before has nothing to catch.
    """
    ticks.add("catching", "0 * * * *", extra="catch_up = true")
    ticks.add("waiting", "0 * * * *")
    ticks.clock.now = NOON.replace(second=10)
    assert ticks().ran == {"catching": 0, "waiting": 0}
    ticks.add("newcomer", "0 * * * *", extra="catch_up = true")

    ticks.clock.now = NOON.replace(hour=15, minute=20)
    report = ticks()
    assert report.ran == {"catching": 0}
    assert [d.catch_up for d in report.due] == [True]
    assert report.due[0].tick == NOON.replace(hour=15, minute=0, second=0)
    started = [e for e in ticks.project.events("catching") if e["event"] == "run.started"]
    assert [e["tick"] for e in started] == ["2026-03-02T12:00:00Z", "2026-03-02T15:00:00Z"]
    assert started[-1]["ts"].startswith("2026-03-02T15:20"), "the log tells a catch-up by its tick"
    ticks.clock.advance(minutes=1)
    assert ticks().ran == {}, "caught up: nothing more until 16:00"
    ticks.clock.now = NOON.replace(hour=16, minute=0, second=5)
    assert ticks().ran == {"catching": 0, "waiting": 0, "newcomer": 0}


def test_a_tz_in_an_env_file_moves_no_schedule(ticks):
    """Schedules are read in cron's zone ($TZ as the tick started), as status reads them.

    A TZ in the home's .env (every agent's) or in an agent's own is the
    agent's environment: the tick still finds the 12:00 UTC agent due, and
    its run (and a run started by cron alone) claims 12:00 UTC, not 12:00
    in Kiritimati or Tokyo.
    """
    ticks.add("noon", "0 12 * * *")
    (ticks.project.home / ".env").write_text("TZ=Pacific/Kiritimati\n")
    (ticks.project.home / "agents" / "noon" / ".env").write_text("TZ=Asia/Tokyo\n")
    assert ticks().ran == {"noon": 0}
    project = AgentopsProject(ticks.project.home)
    ticks.clock.advance(days=1)
    by_cron = run_agent(project, "noon", clock=ticks.clock, scheduled=True, environ={"TZ": "UTC"})
    assert by_cron.exit_code == 0, by_cron.message
    started = [e for e in ticks.project.events("noon") if e["event"] == "run.started"]
    assert [e["tick"] for e in started] == ["2026-03-02T12:00:00Z", "2026-03-03T12:00:00Z"]


def test_a_scheduled_run_that_claims_late_claims_the_tick_it_was_started_for(ticks):
    """Started at 12:00:30 but claiming at 12:02 (a busy host): the 12:00 tick, not 12:02's."""
    ticks.add("late")
    project = AgentopsProject(ticks.project.home)
    ticks.clock.now = NOON + timedelta(minutes=1, seconds=30)
    outcome = run_agent(
        project, "late", clock=ticks.clock, scheduled=True, tick=NOON, environ={"TZ": "UTC"}
    )
    assert outcome.exit_code == 0
    assert open_store(project).last_tick("late") == NOON.replace(second=0)
    on_time = run_agent(project, "late", clock=ticks.clock, scheduled=True, environ={"TZ": "UTC"})
    assert on_time.exit_code == 0, "the 12:01 tick was still free"
    by_hand = run_agent(project, "late", clock=ticks.clock, environ={"TZ": "UTC"})
    assert by_hand.exit_code == 0
    started = [e for e in ticks.project.events("late") if e["event"] == "run.started"]
    assert [e.get("tick") for e in started] == [
        "2026-03-02T12:00:00Z",  # the tick it was started for
        "2026-03-02T12:02:00Z",  # the clock's own
        None,  # by hand: no tick claimed
    ]


def test_a_run_waiting_for_a_full_group_is_skipped_after_its_timeout(ticks):
    """Every slot held elsewhere: the run waits its timeout (fake time), then 75 group_full."""
    (ticks.project.home / "agentops.toml").write_text("[groups]\nllm = 1\n")
    ticks.add("llm0", extra='group = "llm"\ntimeout = "30s"')
    project = AgentopsProject(ticks.project.home)
    clock = ticks.clock
    with open_store(project).group_slot("llm", 1) as held:
        assert held
        outcome = run_agent(project, "llm0", clock=clock, sleep=lambda s: clock.advance(seconds=s))
    assert (outcome.exit_code, outcome.reason) == (75, "group_full")
    assert clock.now - NOON >= timedelta(seconds=30)
    events = ticks.project.event_names("llm0")
    assert "group.waiting" in events
    assert ticks.runs() == []
    with open_store(project).group_slot("llm", 1) as held:
        assert held, "the slot was given back"


def test_an_agent_queued_for_its_group_past_its_timeout_is_skipped_not_run_late(ticks):
    """Its group full on the host for longer than its timeout: group_full (75), not run late.

    The holder keeps the slot until the other's log says it was skipped:
    queued until the group frees, as before, it would have run a minute late.
    """
    (ticks.project.home / "agentops.toml").write_text("[tick]\nparallel = 4\n[groups]\ng = 1\n")
    late_log = ticks.project.log_path("late")
    ticks.add("holder", extra='group = "g"\ntimeout = "2m"', until=f'"{late_log}"')
    ticks.add("late", extra='group = "g"\ntimeout = "1s"')
    report = ticks()
    assert report.ran == {"holder": 0, "late": 75}
    assert [name for name, _pid, _count in ticks.runs()] == ["holder"]
    events = ticks.project.events("late")
    assert [e["event"] for e in events if e["event"].startswith("group.")] == ["group.waiting"]
    [skipped] = [e for e in events if e["event"] == "run.skipped"]
    assert skipped["reason"] == "group_full"
    assert ticks.lines() == [], "a skip by policy is silent"


def test_an_agent_of_a_full_group_with_a_timeout_of_days_waits_for_it(ticks):
    """A 30-day timeout: the tick waits for the group to free (no wait too long to ask for)."""
    (ticks.project.home / "agentops.toml").write_text("[tick]\nparallel = 4\n[groups]\ng = 1\n")
    ticks.add("holder", extra='group = "g"', hold=0.5)
    ticks.add("patient", extra='group = "g"\ntimeout = "30d"')
    assert ticks().ran == {"holder": 0, "patient": 0}
    assert [name for name, _pid, _count in ticks.runs()] == ["holder", "patient"]


def test_agentops_tick_under_cron_is_silent_when_all_is_well(project, run_agentops, tmp_path):
    """The real command, in cron's environment: silent and 0; a failing agent: one line, 1."""
    world = tmp_path / "world"
    world.mkdir()
    for name in ("a", "b"):
        project.add_agent(
            name, WORKER, f'schedule = "* * * * *"\n[params]\nworld = "{world}"\nname = "{name}"\n'
        )
    done = run_agentops("tick")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert len((world / "runs").read_text().splitlines()) == 2

    project.add_agent(
        "c",
        WORKER,
        f'schedule = "* * * * *"\n[params]\nworld = "{world}"\nname = "c"\nfail = true\n',
    )
    failed = run_agentops("tick")
    assert failed.returncode == 1
    assert failed.stdout == ""
    lines = failed.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("agentops: c: ")


def test_a_store_password_in_the_homes_env_file_reaches_the_ticks_store_too(
    project, run_agentops, postgres, tmp_path
):
    """PGPASSWORD in the home's .env: cron's tick signs in with it, as each run does."""
    password = "s3cr@t/pw-Wombat5-Pistachio88"
    url = postgres.password_user(postgres.database(), password)
    (project.home / "agentops.toml").write_text(f'[store]\nurl = "{url}"\n')
    world = tmp_path / "world"
    world.mkdir()
    project.add_agent(
        "a", WORKER, f'schedule = "* * * * *"\n[params]\nworld = "{world}"\nname = "a"\n'
    )
    assert run_agentops("run", "a").returncode == 74, "no password: refused"
    env_file = project.home / ".env"
    env_file.write_text(f"PGPASSWORD='{password}'\n")
    env_file.chmod(0o600)
    done = run_agentops("tick")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert [line.split()[0] for line in (world / "runs").read_text().splitlines()] == ["a"]


def test_a_bad_agentops_toml_or_an_unreachable_store_stops_the_tick_in_one_line(
    project, run_agentops
):
    """78 for agentops.toml, 74 for a store it cannot reach: one line each, no agent run."""
    project.add_agent("a", toml='schedule = "* * * * *"\n')
    (project.home / "agentops.toml").write_text("[tick]\nparallel = 0\n")
    bad = run_agentops("tick")
    assert bad.returncode == 78
    assert len(bad.stderr.splitlines()) == 1
    assert "agentops.toml" in bad.stderr
    (project.home / "agentops.toml").write_text("")
    env = cron_env(project.home, AGENTOPS_STORE_URL="postgresql://agentops@127.0.0.1:9/none")
    unreachable = run_agentops("tick", env=env)
    assert unreachable.returncode == 74
    assert len(unreachable.stderr.splitlines()) == 1
    assert not (project.home / "logs").exists(), "no agent ran"


def test_a_tick_with_no_scheduled_agent_asks_no_store(project, run_agentops):
    """Agents run by hand only: the tick has nothing to claim nor take over, and is silent (0).

    It does not open the store: one it cannot reach is no line a minute in cron's mail.
    """
    project.add_agent("by-hand")
    env = cron_env(project.home, AGENTOPS_STORE_URL="postgresql://agentops@127.0.0.1:9/none")
    done = run_agentops("tick", env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_check_names_a_group_that_agentops_toml_does_not_list(project, invoke):
    """agentops check: a group without its [groups] limit is a problem on its line."""
    project.add_agent("a", toml='schedule = "* * * * *"\ngroup = "llm"\n')
    result = invoke("check")
    assert result.exit_code == 78
    assert "agents/a/agent.toml:2: group 'llm' is not in agentops.toml's [groups]" in result.output
    (project.home / "agentops.toml").write_text("[groups]\nllm = 2\n")
    assert invoke("check").exit_code == 0


def test_the_tick_is_one_line_of_the_crontab(project, invoke):
    """agentops cron --tick prints the one line that runs agentops tick every minute."""
    project.add_agent("hello", toml='schedule = "*/15 * * * *"\n')
    printed = invoke("cron", "--tick")
    assert printed.exit_code == 0
    jobs = [line for line in printed.output.splitlines() if line and not line.startswith("#")]
    assert len(jobs) == 1
    assert jobs[0].startswith("* * * * * PATH=")
    assert jobs[0].endswith(f"--home {project.home} tick")
