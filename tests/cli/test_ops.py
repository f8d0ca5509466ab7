"""`agentops status` and `agentops health`: the table, the JSON, the verdict and the heartbeat."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest

from agentops.ops.status import HEALTHS, ROW_KEYS
from suite import T0, FakeClock, agent_source

AGENT = agent_source(
    """
    if params.fail:
        raise RuntimeError("the feed is down")
    return Result(ok=True)
    """,
    params="fail: bool = False",
    result="ok: bool",
)


def stale_agent(project, name: str = "agent") -> None:
    """An hourly agent set up long ago that never ran: stale whatever the time."""
    project.add_agent(name, AGENT, 'schedule = "@hourly"\n')
    os.utime(project.home / "agents" / name / "agent.toml", (0, 0))


def test_status_json_has_the_documented_keys(project, invoke):
    """Every row of `status --json` has exactly ROW_KEYS, in order; healths are documented."""
    project.add_agent("one", AGENT, 'schedule = "@hourly"\n')
    project.add_agent("two", AGENT)
    project.run("two", clock=FakeClock(T0), overrides={"fail": True})
    rows = json.loads(invoke("status", "--json").output)
    assert [row["agent"] for row in rows] == ["one", "two"]
    assert all(list(row) == list(ROW_KEYS) for row in rows)
    assert {row["health"] for row in rows} <= set(HEALTHS)
    assert rows[1]["last_run"]["status"] == "failed"


def test_health_exits_1_with_a_line_per_agent_that_needs_a_human(project, invoke):
    """One failing agent among fine ones: exit 1, its line only; all fine: exit 0."""
    project.add_agent("fine", AGENT)
    project.add_agent("sick", AGENT)
    clock = FakeClock(datetime.now(UTC))
    project.run("fine", clock=clock)
    project.run("sick", clock=clock, overrides={"fail": True})
    result = invoke("health")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "sick: failing: 1 failed run(s): sick: run() raised RuntimeError: the feed is down"
    ]
    report = json.loads(invoke("health", "--json").output)
    assert list(report) == ["healthy", "agents", "problems"]
    assert report["agents"] == {"fine": "ok", "sick": "failing"}
    project.run("sick", clock=clock)
    assert invoke("health").exit_code == 0


# -- health --ping: a heartbeat to a checks service ----------------------------------------


def test_a_healthy_project_pings_the_url(project, invoke, ping):
    """Every agent fine: exit 0, nothing printed, one GET of the URL itself."""
    project.add_agent("agent", AGENT)
    assert invoke("run", "agent").exit_code == 0
    result = invoke("health", "--ping", ping.url("/hc/uuid"))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    [request] = ping.received
    assert (request.method, request.path) == ("GET", "/hc/uuid")


def test_an_unhealthy_project_posts_its_lines_to_url_fail(project, invoke, ping):
    """One agent failing, one fine: exit 1, and URL/fail gets exactly the lines printed."""
    project.add_agent("fine", AGENT)
    project.add_agent("sick", AGENT)
    assert invoke("run", "fine").exit_code == 0
    assert invoke("run", "sick", "-p", "fail=true").exit_code == 1
    stale_agent(project, "late")
    result = invoke("health", "--ping", ping.url("/hc/uuid/"))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["late", "sick"]
    [request] = ping.received
    assert (request.method, request.path) == ("POST", "/hc/uuid/fail")
    assert request.body.decode().splitlines() == lines

    as_json = invoke("health", "--json", "--ping", ping.url("/hc/uuid"))
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["healthy"] is False
    assert ping.received[-1].body == request.body


def test_the_fail_ping_keeps_the_query_of_the_url(project, invoke, ping):
    """URL?create=1 (Healthchecks' slugs): the failure goes to URL/fail?create=1, not URL."""
    stale_agent(project)
    assert invoke("health", "--ping", ping.url("/key/backups?create=1")).exit_code == 1
    [request] = ping.received
    assert (request.method, request.path) == ("POST", "/key/backups/fail?create=1")


@pytest.mark.parametrize("url", ["http://[::1/hc", "hc-ping.com/uuid"])
def test_a_malformed_ping_url_is_said_and_changes_nothing(project, invoke, url):
    """A URL that cannot be sent to: a line on stderr; exit 0 and health's verdict stand."""
    project.add_agent("agent", AGENT)
    assert invoke("run", "agent").exit_code == 0
    result = invoke("health", "--ping", url)
    assert (result.exit_code, result.stdout) == (0, "")
    [said] = result.stderr.splitlines()
    assert said.startswith("agentops: health: the heartbeat to ")
    assert " failed: " in said
