"""The duration alert: a successful run much longer than it should be is ``slow``.

The rule on its own, over states built here; then end to end: a run longer
than its ``expected_duration`` (the agent sleeps past it: a lower bound no
busy machine can shorten) is a ``slow`` message and a line in ``status``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from agentops.model.state import MAX_DURATIONS, AgentState, LastRun
from agentops.model.status import RunStatus
from agentops.notify.slow import FLOOR_S, MIN_RUNS, Slow, p95, slow_run
from webhookserver import Webhook

if TYPE_CHECKING:
    from collections.abc import Iterator

SLEEPER = """
import time
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    sleep_s: float = 0.0

class Result(BaseModel):
    pass

def run(params: Params, ctx: Context) -> Result:
    time.sleep(params.sleep_s)
    return Result()
"""

AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def state(
    last_s: float, earlier: list[float], status: RunStatus = RunStatus.SUCCEEDED
) -> AgentState:
    """An agent whose last run took ``last_s``, after successful runs of ``earlier``."""
    last = LastRun(
        run_id="run-9",
        started_at=AT,
        finished_at=AT + timedelta(seconds=last_s),
        status=status,
        duration_s=last_s,
    )
    own = [last_s] if status.ok else []
    return AgentState(agent="agent", last_run=last, durations=[*earlier, *own])


# -- the rule ----------------------------------------------------------------------------


def test_expected_duration_sets_the_limit():
    """expected 300s: 300s is not slow, 301s is, whatever the history."""
    assert slow_run(state(300.0, []), 300.0) is None
    assert slow_run(state(301.0, []), 300.0) == Slow("run-9", 301.0, 300.0, "expected_duration")


def test_without_it_three_times_the_recent_p95_sets_it():
    """Runs of 100s: 300s is not slow, 301s is (by p95)."""
    earlier = [100.0] * MIN_RUNS
    assert slow_run(state(300.0, earlier), None) is None
    assert slow_run(state(301.0, earlier), None) == Slow("run-9", 301.0, 300.0, "p95")


def test_the_p95_rule_waits_for_enough_runs_and_never_judges_under_a_minute():
    """Four earlier runs judge nothing; runs of 1s never make a 59s run slow."""
    assert slow_run(state(1000.0, [1.0] * (MIN_RUNS - 1)), None) is None
    assert slow_run(state(FLOOR_S, [1.0] * MIN_RUNS), None) is None
    assert slow_run(state(FLOOR_S + 1, [1.0] * MIN_RUNS), None) is not None


def test_a_failed_run_is_never_slow_and_only_the_run_asked_about_is_judged():
    """A failure is told as one; a run id that is not the last run's judges nothing."""
    assert slow_run(state(1000.0, [], RunStatus.FAILED), 10.0) is None
    assert slow_run(state(1000.0, []), 10.0, run_id="run-1") is None
    assert slow_run(state(1000.0, []), 10.0, run_id="run-9") is not None


def test_p95_is_one_of_the_durations():
    """Nearest rank: of 1..20, the 19th; of one, itself."""
    assert p95([float(n) for n in range(20, 0, -1)]) == 19.0
    assert p95([4.0]) == 4.0


def test_the_state_keeps_the_latest_durations_only():
    """Past MAX_DURATIONS successes, the oldest go."""
    kept = AgentState(agent="agent")
    for n in range(MAX_DURATIONS + 5):
        kept.record_duration(float(n))
    assert kept.durations == [float(n) for n in range(5, MAX_DURATIONS + 5)]


# -- end to end --------------------------------------------------------------------------


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A webhook on loopback, stopped at the end of the test."""
    server = Webhook()
    try:
        yield server
    finally:
        server.close()


def test_a_run_past_its_expected_duration_is_a_slow_message_and_a_status_line(
    project, run_agentops, webhook
):
    """expected 10ms, a run of 50ms or more: exit 0, a `slow` message, status says so."""
    project.add_agent("agent", SLEEPER, 'expected_duration = "10ms"\n')
    (project.home / "agentops.toml").write_text(f'[notify]\nwebhooks = ["{webhook.url()}"]\n')
    assert run_agentops("run", "agent", "-p", "sleep_s=0.05").returncode == 0
    [message] = webhook.messages()
    assert message["kind"] == "slow"
    assert message["status"] == "succeeded"
    assert message["text"].startswith("agentops [slow] agent: slow: took ")
    assert message["text"].endswith(", longer than 0.01s (expected_duration)")

    [row] = json.loads(run_agentops("status", "--json").stdout)
    run_id = project.state("agent")["last_run"]["run_id"]
    assert row["health"] == "ok"
    assert row["slow"]["run_id"] == run_id
    assert (row["slow"]["limit_s"], row["slow"]["by"]) == (0.01, "expected_duration")
    assert row["slow"]["duration_s"] >= 0.05
    table = run_agentops("status").stdout
    assert "slow: took " in table

    health = run_agentops("health")
    assert (health.returncode, health.stdout) == (0, ""), "a slow run troubles no watchdog"


def test_status_judges_by_the_recent_p95_when_there_is_no_expected_duration(project, run_agentops):
    """Runs of 10s kept in the state, a last run of 200s: slow by p95 (limit 60s)."""
    project.add_agent("agent", SLEEPER)
    assert run_agentops("run", "agent").returncode == 0
    path = project.state_path("agent")
    kept: dict[str, Any] = json.loads(path.read_text())
    kept["last_run"]["duration_s"] = 200.0
    kept["durations"] = [10.0] * MIN_RUNS + [200.0]
    path.write_text(json.dumps(kept))
    [row] = json.loads(run_agentops("status", "--json").stdout)
    assert row["slow"] == {
        "run_id": kept["last_run"]["run_id"],
        "duration_s": 200.0,
        "limit_s": FLOOR_S,
        "by": "p95",
    }


def test_a_quick_run_is_not_slow(project, run_agentops, webhook):
    """expected 1m and a run of no time: no message, `slow` is null."""
    project.add_agent("agent", SLEEPER, 'expected_duration = "1m"\n')
    (project.home / "agentops.toml").write_text(f'[notify]\nwebhooks = ["{webhook.url()}"]\n')
    assert run_agentops("run", "agent").returncode == 0
    assert webhook.received == []
    [row] = json.loads(run_agentops("status", "--json").stdout)
    assert row["slow"] is None
    assert project.state("agent")["durations"] == [project.state("agent")["last_run"]["duration_s"]]


def test_an_expected_duration_past_the_timeout_is_refused(project, run_agentops):
    """expected_duration 10m with timeout 5m could never fire: exit 78, one line naming both."""
    project.add_agent("agent", SLEEPER, 'timeout = "5m"\nexpected_duration = "10m"\n')
    result = run_agentops("run", "agent")
    assert result.returncode == 78
    [line] = result.stderr.splitlines()
    assert "expected_duration (600s) must be shorter than timeout (300s)" in line
