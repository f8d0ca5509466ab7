"""The public test kit: an agent run in-process, on its own home, with fake time and HTTP."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import httpx
import pytest

from agentops.testing import AgentHarness, FakeClock
from suite import MEMO, T0, agent_source

FETCHER = agent_source(
    """
    count = ctx.http.get(params.url).raise_for_status().json()["count"]
    ctx.state["seen"] = ctx.state.get("seen", 0) + 1
    ctx.log.info("count.read", count=count)
    return Result(count=count, seen=ctx.state["seen"])
    """,
    params='url: str = "https://api.example.org/count"',
    result="""
    count: int
    seen: int
    """,
)


@pytest.fixture
def agent_dir(tmp_path):
    directory = tmp_path / "project" / "agents" / "fetcher"
    directory.mkdir(parents=True)
    (directory / "agent.py").write_text(textwrap.dedent(FETCHER))
    (directory / "agent.toml").write_text('[limits]\nruns = "2/hour"\n')
    return directory


def counter(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"count": 7})


def test_a_run_goes_through_the_real_gates_with_a_fake_transport(agent_dir):
    """The result, the log events and the state are what `agentops run` would produce."""
    with AgentHarness(agent_dir, http=counter) as agent:
        run = agent.run()
        assert (run.exit_code, run.status) == (0, "succeeded")
        assert run.result == {"count": 7, "seen": 1}
        assert [e["count"] for e in run.events_named("count.read")] == [7]
        assert run.events_named("http.request")[0]["url"] == "https://api.example.org/count"
        assert run.state == {"seen": 1}


def test_the_fake_clock_drives_the_guards(agent_dir):
    """runs = 2/hour: the third run is skipped until the test moves the clock an hour."""
    start = datetime(2026, 11, 22, 9, tzinfo=UTC)
    with AgentHarness(agent_dir, http=counter, now=start) as agent:
        assert agent.run().exit_code == 0
        assert agent.run().exit_code == 0
        assert agent.run().exit_code == 75
        agent.clock.advance(hours=1)
        again = agent.run()
        assert again.exit_code == 0
        assert again.result == {"count": 7, "seen": 3}
        assert again.events[0]["ts"].startswith("2026-11-22T10:00:00")


def test_state_can_be_seeded_and_each_run_sees_only_its_events(agent_dir):
    """state= is the first run's ctx.state; each TestRun holds only its own log lines."""
    with AgentHarness(agent_dir, http=counter, state={"seen": 41}) as agent:
        first = agent.run()
        second = agent.run()
        assert (first.result["seen"], second.result["seen"]) == (42, 43)
        assert {e["run_id"] for e in second.events} == {second.outcome.run_id}


def test_a_failing_service_is_retried_on_fake_time(agent_dir):
    """A 503 is retried after waits the fake clock takes, so the test does not sleep."""
    start = datetime(2026, 11, 22, 9, tzinfo=UTC)
    with AgentHarness(agent_dir, http=lambda _request: httpx.Response(503), now=start) as agent:
        run = agent.run()
        assert (run.exit_code, run.status) == (1, "failed")
        assert len(run.events_named("retry.attempt")) == 2
        assert agent.clock() > start


def test_the_environment_is_only_what_the_test_gives(agent_dir):
    """env= is the agent's environment: its secrets are redacted from what is written."""
    secret = "s3cr3t-value-for-the-test"

    def echo(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"count": 1, "token": secret})

    with AgentHarness(agent_dir, http=echo, env={"SERVICE_TOKEN": secret}) as agent:
        run = agent.run()
        assert run.exit_code == 0
        log = (agent.home / "logs" / "fetcher.jsonl").read_text()
        assert secret not in log


def test_the_real_project_is_never_touched(agent_dir):
    """The agent is copied into a temporary home, which goes when the harness closes."""
    before = sorted(p.name for p in agent_dir.iterdir())
    with AgentHarness(agent_dir, http=counter) as agent:
        agent.run()
        home = agent.home
        assert (home / "state" / "fetcher.json").exists()
    assert not home.exists()
    assert sorted(p.name for p in agent_dir.iterdir()) == before
    assert not (agent_dir.parent.parent / "state").exists()


def test_a_directory_without_agent_toml_is_refused(tmp_path):
    """The harness is given the agent's directory, and says so when it is not one."""
    with pytest.raises(FileNotFoundError, match=r"no agent\.toml"):
        AgentHarness(tmp_path)


def test_a_fake_clock_needs_an_aware_time():
    """A naive datetime would be read in no zone at all: refused."""
    with pytest.raises(ValueError, match="aware"):
        FakeClock(datetime(2026, 1, 1))  # noqa: DTZ001 - the mistake being refused


def test_the_harness_keeps_memory_between_runs_and_shows_it(project, tmp_path):
    """AgentHarness runs keep working memory and notes; agent.memory() shows them."""
    directory = project.add_agent("memo", MEMO)
    with AgentHarness(directory, now=T0, home=tmp_path / "kit") as agent:
        agent.run({"remember": {"cursor": 7}, "ttl": "1h", "note": ["disk full"], "importance": 8})
        assert agent.memory().recall("cursor") == 7
        assert agent.run({"search": "disk"}).result["found"] == ["disk full"]
        view = agent.memory(search="disk")
        assert [(n.text, n.importance) for n in view.notes] == [("disk full", 8)]
        agent.clock.advance(hours=1)
        assert agent.memory().recall("cursor") is None
        assert agent.run({"recall": ["cursor"]}).result["recalled"] == {"cursor": None}
