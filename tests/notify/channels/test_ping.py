"""An agent's own check (``[notify] ping``) against a checks service that speaks Healthchecks.

The service (:class:`hcserver.Healthchecks`) is written from Healthchecks'
documented pinging API, not from agentops: it refuses a ``rid`` that is not
a UUID and an exit status over 255, answers 404 for an unknown check, pairs
a run's start and end by ``rid``, keeps 10 kB of a body. Runs go through the
real ``agentops`` executable, as cron starts them.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from agentops.notify.channels import Notification
from agentops.notify.channels.ping import MAX_BODY_BYTES, PingChannel, rid_of, signal_url
from hcserver import Healthchecks
from webhookserver import Webhook

if TYPE_CHECKING:
    from collections.abc import Iterator

AGENT = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    fail: bool = False
    chatter: int = 0

class Result(BaseModel):
    pass

def run(params: Params, ctx: Context) -> Result:
    for i in range(params.chatter):
        ctx.log.info("agent.chatter", line=i, text="x" * 200)
    if params.fail:
        raise RuntimeError("the feed is down")
    return Result()
"""

RETURNS_WITHIN_S = 60.0
"""A generous bound for "it did not hang": a ping's timeout is 5 s, the machine is busy."""


@pytest.fixture
def hc() -> Iterator[Healthchecks]:
    """A checks service on loopback, stopped at the end of the test."""
    service = Healthchecks()
    try:
        yield service
    finally:
        service.close()


def with_check(project, url: str, extra: str = "") -> None:
    """The agent ``agent``, its agent.toml naming the check ``url``."""
    project.add_agent("agent", AGENT, f'{extra}[notify]\nping = "{url}"\n')


def logged(project, event: str) -> list[dict]:
    """The agent's log lines called ``event``."""
    return [e for e in project.events("agent") if e["event"] == event]


def run_ids(project) -> list[str]:
    """The run id of each run.finished, in order."""
    return [e["run_id"] for e in logged(project, "run.finished")]


# -- start, success, failure -------------------------------------------------------------


def test_a_run_pings_start_then_success_paired_by_its_rid(project, run_agentops, hc):
    """No webhook needed: /start then the URL, one UUID rid for both; the check is up."""
    url = hc.new_check()
    with_check(project, url)
    result = run_agentops("run", "agent")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    start, success = hc.pings(url)
    assert (start.kind, start.method, success.kind, success.method) == (
        "start",
        "GET",
        "success",
        "GET",
    )
    assert start.rid == success.rid == rid_of("agent", run_ids(project)[0])
    assert str(uuid.UUID(start.rid)) == start.rid  # canonical: the service would refuse it else
    assert hc.runs(url) == [("success", start.rid)]
    assert hc.status(url) == "up"
    assert [(e["kind"], e["ping"], e["status"]) for e in logged(project, "notify.sent")] == [
        ("start", "127.0.0.1", 200),
        ("success", "127.0.0.1", 200),
    ]
    started, sent = logged(project, "run.started"), logged(project, "notify.sent")
    assert started[0]["ts"] <= sent[0]["ts"], "the start is pinged once the run has started"


def test_a_failed_run_pings_its_exit_code_with_the_end_of_its_log(project, run_agentops, hc):
    """Exit 1: POST URL/1 with the run's last log lines as body; the check is down."""
    url = hc.new_check()
    with_check(project, url)
    assert run_agentops("run", "agent", "-p", "fail=true").returncode == 1
    start, failure = hc.pings(url)
    assert (failure.kind, failure.exitstatus, failure.method) == ("fail", 1, "POST")
    assert hc.runs(url) == [("fail", start.rid)]
    assert hc.status(url) == "down"
    lines = [json.loads(line) for line in failure.body.decode().splitlines()]
    [run_id] = run_ids(project)
    assert {line["run_id"] for line in lines} == {run_id}
    assert lines[-1]["event"] == "run.finished"
    assert "the feed is down" in failure.body.decode()


def test_each_run_has_a_rid_of_its_own(project, run_agentops, hc):
    """Three runs: three starts, three ends, each pair with its own rid."""
    url = hc.new_check()
    with_check(project, url)
    assert run_agentops("run", "agent").returncode == 0
    assert run_agentops("run", "agent", "-p", "fail=true").returncode == 1
    assert run_agentops("run", "agent").returncode == 0
    ends = hc.runs(url)
    assert [kind for kind, _rid in ends] == ["success", "fail", "success"]
    assert [rid for _kind, rid in ends] == [rid_of("agent", r) for r in run_ids(project)]
    assert len({rid for _kind, rid in ends}) == 3


def test_a_run_that_cannot_start_pings_its_exit_code_without_a_start(project, run_agentops, hc):
    """A param the agent does not take: exit 78, URL/78, and no /start (nothing started)."""
    url = hc.new_check()
    with_check(project, url, "[params]\nnope = 1\n")
    assert run_agentops("run", "agent").returncode == 78
    [failure] = hc.pings(url)
    assert (failure.kind, failure.exitstatus) == ("fail", 78)
    assert hc.runs(url) == [("fail", None)]


def test_a_skipped_run_is_no_run_and_pings_nothing(project, run_agentops, hc):
    """A paused agent's run exits 75 and the check hears nothing: its pings stop."""
    url = hc.new_check()
    with_check(project, url)
    assert run_agentops("pause", "agent", "--reason", "maintenance").returncode == 0
    assert run_agentops("run", "agent").returncode == 75
    assert hc.pings(url) == []


def test_the_body_of_a_failure_keeps_the_end_of_a_long_log(project, run_agentops, hc):
    """A run that logged 100 kB then failed: the body is at most 10 kB, whole lines, its end."""
    url = hc.new_check()
    with_check(project, url)
    assert run_agentops("run", "agent", "-p", "fail=true", "-p", "chatter=400").returncode == 1
    [_start, failure] = hc.pings(url)
    assert len(failure.body) <= MAX_BODY_BYTES
    lines = [json.loads(line) for line in failure.body.decode().splitlines()]  # all whole
    assert lines[-1]["event"] == "run.finished"


def test_a_slug_url_keeps_its_query(project, run_agentops, hc):
    """URL?create=1 (a slug): /start?create=1&rid=..., the check created on the first ping."""
    url = f"{hc.base}/ping/project-key/publisher?create=1"
    with_check(project, url)
    assert run_agentops("run", "agent").returncode == 0
    start, success = hc.pings(url)
    assert (start.kind, success.kind) == ("start", "success")
    assert start.query["create"] == ["1"]
    assert [status for _method, _path, status in hc.requests] == [201, 200]
    assert [e["status"] for e in logged(project, "notify.sent")] == [201, 200]


# -- a check that does not answer -------------------------------------------------------


@pytest.mark.parametrize("how", ["unknown", "dead", "hanging"])
def test_a_ping_that_fails_changes_nothing_about_the_run(project, run_agentops, hc, how):
    """404, refused or hanging: the same exit code, state and cron line; notify.failed; no hang."""
    url = hc.new_check()
    if how == "unknown":
        url = f"{hc.base}/ping/{uuid.uuid4()}"
    elif how == "dead":
        hc.kill()
    else:
        hc.hang = True
    with_check(project, url)
    began = time.monotonic()
    result = run_agentops("run", "agent", "-p", "fail=true")
    assert time.monotonic() - began < RETURNS_WITHIN_S
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("agentops: agent: run() raised RuntimeError: the feed is down")
    assert project.state("agent")["last_run"]["status"] == "failed"
    error = {"unknown": "HTTP 404", "dead": "ConnectError", "hanging": "ReadTimeout"}[how]
    failed = logged(project, "notify.failed")
    assert [(e["kind"], e["ping"], e["error"]) for e in failed] == [
        ("start", "127.0.0.1", error),
        ("failure", "127.0.0.1", error),
    ]


def test_the_check_url_is_said_by_its_host_only(project, run_agentops, hc):
    """The URL holds the check's token: no log line, output or state file holds it."""
    url = hc.new_check()
    token = url.rsplit("/", 1)[1]
    with_check(project, url)
    assert run_agentops("run", "agent", "-p", "fail=true").returncode == 1
    assert run_agentops("status").returncode == 0
    written = [project.log_path("agent"), *sorted((project.home / "state").iterdir())]
    assert not any(token in path.read_text() for path in written if path.is_file())
    bad = url.replace("http://", "ftp://")
    with_check(project, bad)
    refused = run_agentops("run", "agent")
    assert refused.returncode == 78
    assert "notify.ping" in refused.stderr
    assert token not in refused.stderr + refused.stdout


# -- runs by hand ----------------------------------------------------------------------------


def test_runs_by_hand_notify_nobody_when_manual_runs_is_false(project, run_agentops, hc):
    """manual_runs = false: a run by hand sends no message and no ping; a --scheduled run does."""
    webhook = Webhook()
    try:
        (project.home / "agentops.toml").write_text(
            f'[notify]\nwebhooks = ["{webhook.url()}"]\nmanual_runs = false\n'
        )
        url = hc.new_check()
        with_check(project, url, 'schedule = "* * * * *"\n[circuit]\nfailures = 5\n')
        assert run_agentops("run", "agent", "-p", "fail=true").returncode == 1
        assert webhook.received == []
        assert hc.pings(url) == []
        assert run_agentops("run", "agent", "--scheduled", "-p", "fail=true").returncode == 1
        assert webhook.kinds() == ["failure"]
        assert [p.kind for p in hc.pings(url)] == ["start", "fail"]
    finally:
        webhook.close()


# -- the protocol, piece by piece ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "signal", "rid", "sent"),
    [
        ("https://hc.example/ping/u", "start", "r", "https://hc.example/ping/u/start?rid=r"),
        ("https://hc.example/ping/u/", "", "r", "https://hc.example/ping/u/?rid=r"),
        ("https://hc.example/ping/u", "1", None, "https://hc.example/ping/u/1"),
        (
            "https://hc.example/k/s?create=1",
            "fail",
            "r",
            "https://hc.example/k/s/fail?create=1&rid=r",
        ),
    ],
)
def test_the_signal_goes_after_the_path_and_the_rid_into_the_query(url, signal, rid, sent):
    """/start, /fail, /<code> after the path (one slash), before a query that is kept."""
    assert signal_url(url, signal, rid=rid) == sent


@pytest.mark.parametrize(
    ("kind", "exit_code", "path"),
    [("failure", 0, "/fail"), ("failure", 300, "/fail"), ("failure", None, "/fail")],
)
def test_a_failure_without_an_exit_status_the_service_takes_is_a_fail(hc, kind, exit_code, path):
    """Exit 0 would be a success, over 255 a 400: both go as /fail, as does none."""
    url = hc.new_check()
    channel = PingChannel(url, log=_quiet())
    assert channel.deliver(_notification(kind, exit_code))
    [(_method, sent, status)] = hc.requests
    assert (sent.split("?")[0].removeprefix(url.removeprefix(hc.base)), status) == (path, 200)


def test_an_alert_is_no_ping():
    """A kind that is no run's start or end (an alert) is not sent, and not delivered."""
    channel = PingChannel("http://127.0.0.1:9/ping/x", log=_quiet())
    assert channel.deliver(_notification("recovered", 0)) is False


def _notification(kind: str, exit_code: int | None) -> Notification:
    from datetime import UTC, datetime  # noqa: PLC0415

    return Notification(
        agent="agent",
        kind=kind,
        text="agent: something",
        status=None,
        exit_code=exit_code,
        run_id="20261122T120000Z-abcdef",
        host="here",
        at=datetime(2026, 11, 22, tzinfo=UTC),
    )


def _quiet():
    from agentops._infra.log import EventLogger  # noqa: PLC0415

    return EventLogger(lambda *_args, **_kw: None, {})


def test_the_service_refuses_a_rid_that_is_not_a_uuid(hc):
    """Why rid_of exists: the service answers 400 to agentops's own run ids."""
    import httpx  # noqa: PLC0415

    url = hc.new_check()
    run_id = "20261122T120000Z-abcdef"
    assert httpx.get(signal_url(url, "start", rid=run_id)).status_code == 400
    assert httpx.get(signal_url(url, "start", rid=rid_of("agent", run_id))).status_code == 200


LOGGING_AGENT = """
import logging
from pydantic import BaseModel
from agentops import Context

logging.basicConfig(level=logging.INFO)  # httpx then logs every request, its URL whole

class Params(BaseModel):
    pass

class Result(BaseModel):
    pass

def run(params: Params, ctx: Context) -> Result:
    return Result()
"""


def test_a_ping_an_agent_logs_is_redacted(project, run_agentops, hc):
    """An agent that turns logging on hears httpx quote the ping's URL: it is logged redacted."""
    url = hc.new_check()
    token = url.rsplit("/", 1)[1]
    project.add_agent("agent", LOGGING_AGENT, f'[notify]\nping = "{url}?create=0"\n')
    result = run_agentops("run", "agent")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    quoted = [e for e in logged(project, "agent.output") if "HTTP Request" in e["line"]]
    assert quoted, "httpx logged the start ping"
    assert all("[REDACTED]" in e["line"] for e in quoted)
    assert token not in project.log_path("agent").read_text()
