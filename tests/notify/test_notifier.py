"""Notifications and heartbeats against a real webhook on loopback.

The webhook (:class:`webhookserver.Webhook`) is a server on 127.0.0.1 that
records every request (method, path, headers, body). It can answer an error,
hang until the test ends, or be shut down so that connecting is refused. Commands
run in-process (the click app), and runs in-process with a fake clock where
time must move; a run that kills itself is a real process.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

import pytest

from leakscan import FAKE_SECRETS, scan_bytes
from suite import T0, FakeClock, agent_source
from webhookserver import Webhook

AGENT = agent_source(
    """
    for _ in range(2):
        if params.tokens:
            ctx.spend(tokens=params.tokens)
    if params.secret:
        raise RuntimeError(
            "the feed refused " + os.environ["FAKE_SERVICE_API_KEY"]
            + " and " + os.environ["FAKE_OPENAI_KEY"]
        )
    if params.fail:
        raise RuntimeError(params.why)
    return Result(confidence=params.confidence)
    """,
    params="""
    fail: bool = False
    why: str = "the feed is down"
    secret: bool = False
    tokens: int = 0
    confidence: float | None = None
    """,
    result="confidence: float | None = None",
    imports="import os",
    extra="""
    def apply(result: Result, ctx: Context) -> None:
        pass
    """,
)

RETURNS_WITHIN_S = 60.0
"""A generous bound for "it did not hang": the short timeouts are 5 s, the machine is busy."""


def configure(project, *webhooks: str, on: list[str] | None = None, cooldown: str = "1h") -> None:
    """Write agentops.toml with a ``[notify]`` section."""
    lines = ["[notify]", f"webhooks = {json.dumps(list(webhooks))}", f'cooldown = "{cooldown}"']
    if on is not None:
        lines.append(f"on = {json.dumps(on)}")
    (project.home / "agentops.toml").write_text("\n".join(lines) + "\n")


def logged(project, event: str, name: str = "agent") -> list[dict[str, Any]]:
    """The agent's log lines called ``event``."""
    return [e for e in project.events(name) if e["event"] == event]


def notices(project, name: str = "agent") -> dict[str, Any]:
    """What the store keeps of what people were told."""
    return json.loads((project.home / "state" / f"{name}.notices.json").read_text())


def cron_line(project) -> str:
    """The one line a failed run of the agent prints for cron's mail."""
    return (
        "agentops: agent: run() raised RuntimeError: the feed is down"
        f" (log: {project.log_path('agent')})"
    )


def stale_agent(project, name: str = "agent") -> None:
    """An hourly agent set up long ago that never ran: stale whatever the time."""
    project.add_agent(name, AGENT, 'schedule = "@hourly"\n')
    os.utime(project.home / "agents" / name / "agent.toml", (0, 0))


# -- a failure, and what it posts --------------------------------------------------------


def test_a_failed_run_posts_one_message_that_slack_discord_and_ntfy_read(project, invoke, webhook):
    """One JSON POST: text (Slack), content (Discord), a Title header (ntfy), and the facts."""
    project.add_agent("agent", AGENT)
    configure(project, webhook.url("/services/T0/B0"))
    result = invoke("run", "agent", "-p", "fail=true")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [cron_line(project)], "nothing added to cron's mail"

    [request] = webhook.received
    assert (request.method, request.path) == ("POST", "/services/T0/B0")
    assert request.headers["content-type"] == "application/json"
    message = request.json()
    line = "agentops [failure] agent: run() raised RuntimeError: the feed is down"
    assert message["text"] == message["content"] == line
    assert request.headers["title"] == line
    state = project.state("agent")
    assert {k: message[k] for k in ("agent", "kind", "status", "exit_code", "run_id")} == {
        "agent": "agent",
        "kind": "failure",
        "status": "failed",
        "exit_code": 1,
        "run_id": state["last_run"]["run_id"],
    }
    assert message["host"]
    assert message["at"].endswith("Z")
    [sent] = logged(project, "notify.sent")
    assert (sent["kind"], sent["webhook"], sent["status"]) == ("failure", "127.0.0.1", 200)
    assert notices(project)["open"] == ["failure"]


def test_a_second_failure_within_the_cooldown_posts_nothing(project, invoke, webhook):
    """Two failures a moment apart, cooldown 1h: one message; the second run says why not."""
    project.add_agent("agent", AGENT, "[circuit]\nfailures = 5\n")
    configure(project, webhook.url())
    assert invoke("run", "agent", "-p", "fail=true").exit_code == 1
    assert invoke("run", "agent", "-p", "fail=true").exit_code == 1
    assert webhook.kinds() == ["failure"]
    [cooled] = logged(project, "notify.cooled_down")
    assert cooled["kind"] == "failure"


def test_the_cooldown_is_per_agent(project, invoke, webhook):
    """Two agents failing a moment apart: one message each."""
    project.add_agent("one", AGENT)
    project.add_agent("two", AGENT)
    configure(project, webhook.url())
    assert invoke("run", "one", "-p", "fail=true").exit_code == 1
    assert invoke("run", "two", "-p", "fail=true").exit_code == 1
    assert [(m["agent"], m["kind"]) for m in webhook.messages()] == [
        ("one", "failure"),
        ("two", "failure"),
    ]


def test_a_run_that_cannot_start_posts_failure(project, invoke, webhook):
    """params agent.toml names that the agent does not take: exit 78, and `failure`."""
    project.add_agent("agent", AGENT, "[params]\nnope = 1\n")
    configure(project, webhook.url())
    assert invoke("run", "agent").exit_code == 78
    [message] = webhook.messages()
    assert (message["kind"], message["status"], message["exit_code"]) == ("failure", "aborted", 78)
    assert "nope" in message["text"]


def test_after_the_cooldown_a_failure_posts_again(project, webhook):
    """cooldown 10m: a failure 9m after the message posts nothing, one 10m after it does."""
    project.add_agent("agent", AGENT, "[circuit]\nfailures = 5\n")
    configure(project, webhook.url(), cooldown="10m")
    clock = FakeClock(T0)
    project.run(clock=clock, overrides={"fail": True})
    clock.advance(minutes=9)
    project.run(clock=clock, overrides={"fail": True})
    assert webhook.kinds() == ["failure"]
    clock.advance(minutes=1)
    project.run(clock=clock, overrides={"fail": True})
    assert webhook.kinds() == ["failure", "failure"]
    assert [m["at"] for m in webhook.messages()] == ["2026-11-22T12:00:00Z", "2026-11-22T12:10:00Z"]


def test_a_success_after_a_notified_failure_posts_recovered_once(project, invoke, webhook):
    """failure, then two successes: one `recovered`, from the first, and nothing left open."""
    project.add_agent("agent", AGENT)
    configure(project, webhook.url())
    assert invoke("run", "agent", "-p", "fail=true").exit_code == 1
    result = invoke("run", "agent")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    recovered = webhook.messages()[-1]
    assert recovered["text"] == recovered["content"] == "agentops [recovered] agent: recovered"
    assert (recovered["kind"], recovered["status"], recovered["exit_code"]) == (
        "recovered",
        "succeeded",
        0,
    )
    assert recovered["run_id"] == project.state("agent")["last_run"]["run_id"]
    assert invoke("run", "agent").exit_code == 0
    assert webhook.kinds() == ["failure", "recovered"]
    assert notices(project)["open"] == []


def test_successes_nobody_was_warned_about_post_nothing(project, invoke, webhook):
    """Successes alone, or after a failure no webhook heard of, post no `recovered`."""
    project.add_agent("agent", AGENT)
    configure(project, webhook.url())
    assert invoke("run", "agent").exit_code == 0
    assert invoke("run", "agent").exit_code == 0
    assert webhook.received == []
    webhook.status = 500
    assert invoke("run", "agent", "-p", "fail=true").exit_code == 1
    webhook.status = 200
    assert invoke("run", "agent").exit_code == 0
    assert webhook.kinds() == ["failure"], "the failure was refused: nobody is waiting to hear"


def test_recovered_is_not_held_back_by_an_earlier_recovered(project, webhook):
    """Told of an open circuit 10m after a `recovered`: its end is told at once, not an hour on."""
    project.add_agent("agent", AGENT, '[circuit]\nfailures = 2\ncooldown = "5m"\n')
    configure(project, webhook.url())
    clock = FakeClock(T0)
    project.run(clock=clock, overrides={"fail": True})  # failure
    clock.advance(minutes=5)
    project.run(clock=clock)  # recovered
    clock.advance(minutes=5)
    project.run(
        clock=clock, overrides={"fail": True}
    )  # failure again: a new incident, told at once
    clock.advance(minutes=5)
    opened = project.run(clock=clock, overrides={"fail": True})
    assert opened.circuit == "opened"
    clock.advance(minutes=6)  # past the circuit's cooldown: a trial run, which succeeds
    assert project.run(clock=clock).exit_code == 0
    assert webhook.kinds() == ["failure", "recovered", "failure", "circuit_open", "recovered"]
    assert notices(project)["open"] == []


# -- the other kinds -------------------------------------------------------------------------


def test_the_circuit_opening_posts_circuit_open_and_the_skips_are_quiet(project, invoke, webhook):
    """failures = 2: the first failure posts `failure`, the second `circuit_open`, skips nothing."""
    project.add_agent("agent", AGENT)
    configure(project, webhook.url())
    assert invoke("run", "agent", "-p", "fail=true").exit_code == 1
    assert invoke("run", "agent", "-p", "fail=true").exit_code == 1
    assert invoke("run", "agent").exit_code == 75
    assert webhook.kinds() == ["failure", "circuit_open"]
    opened = webhook.messages()[1]
    assert opened["text"].startswith("agentops [circuit_open] agent: CIRCUIT OPEN after 2 ")
    assert opened["text"].endswith("run() raised RuntimeError: the feed is down")
    assert sorted(notices(project)["open"]) == ["circuit_open", "failure"]


def test_a_budget_stop_posts_budget(project, invoke, webhook):
    """tokens_per_run = 100 and two spends of 60: exit 75 and one `budget` message."""
    project.add_agent("agent", AGENT, "[limits]\ntokens_per_run = 100\n")
    configure(project, webhook.url())
    result = invoke("run", "agent", "-p", "tokens=60")
    assert result.exit_code == 75
    [message] = webhook.messages()
    assert (message["kind"], message["status"], message["exit_code"]) == (
        "budget",
        "budget_exceeded",
        75,
    )
    assert "tokens_per_run 100 reached" in message["text"]


def test_an_escalated_result_posts_escalated(project, invoke, webhook):
    """Confidence under review_threshold: exit 1 and `escalated`, not `failure`."""
    project.add_agent("agent", AGENT)
    configure(project, webhook.url())
    assert invoke("run", "agent", "-p", "confidence=0.1").exit_code == 1
    [message] = webhook.messages()
    assert (message["kind"], message["status"]) == ("escalated", "escalated")
    assert "confidence 0.1 is below review_threshold" in message["text"]


def test_on_chooses_the_kinds_that_are_sent(project, invoke, webhook):
    """on = ["circuit_open"]: no `failure`, no `budget`, only the circuit opening."""
    project.add_agent("agent", AGENT, "[limits]\ntokens_per_run = 100\n")
    configure(project, webhook.url(), on=["circuit_open"])
    assert invoke("run", "agent", "-p", "tokens=60").exit_code == 75
    assert invoke("run", "agent", "-p", "fail=true").exit_code == 1
    assert webhook.received == []
    assert invoke("run", "agent", "-p", "fail=true").exit_code == 1
    assert webhook.kinds() == ["circuit_open"]


def test_a_dry_run_posts_nothing(project, invoke, webhook):
    """A dry run saves nothing and tells nobody."""
    project.add_agent("agent", AGENT)
    configure(project, webhook.url())
    assert invoke("run", "agent", "--dry-run", "-p", "fail=true").exit_code == 1
    assert webhook.received == []


# -- what goes in a message ------------------------------------------------------------------


def test_no_secret_from_the_environment_reaches_the_webhook(project, invoke, webhook):
    """An error quoting two API keys: the body and the headers hold them redacted."""
    project.add_agent("agent", AGENT)
    configure(project, webhook.url())
    assert invoke("run", "agent", "-p", "secret=true").exit_code == 1
    [request] = webhook.received
    assert request.json()["text"].count("[REDACTED]") == 2
    raw = request.body + json.dumps(request.headers).encode()
    assert [str(leak) for leak in scan_bytes(raw, "the webhook's request")] == []
    assert not any(secret in request.body.decode() for secret in FAKE_SECRETS.values())


FAILURE = "agentops [failure] agent: run() raised RuntimeError: "


@pytest.mark.parametrize(
    ("why", "title"),
    [
        pytest.param(
            "the feed is down\r\nTraceback: line 2\n\tline 3\x7f",
            FAILURE + "the feed is down Traceback: line 2 line 3",
            id="lines-and-a-control-character",
        ),
        pytest.param(
            "x" * (199 - len(FAILURE)) + " the 200th character is a space",
            FAILURE + "x" * (199 - len(FAILURE)),
            id="cut-at-a-space",
        ),
        pytest.param("Ünïcødé is down", FAILURE + "?n?c?d? is down", id="not-ascii"),
    ],
)
def test_any_error_is_sent_with_a_title_a_header_can_carry(project, invoke, webhook, why, title):
    """ntfy's Title header: one ASCII line, never ending in a space, or the message is lost."""
    project.add_agent("agent", AGENT)
    configure(project, webhook.url())
    assert invoke("run", "agent", "-p", "fail=true", "-p", f"why={why}").exit_code == 1
    assert logged(project, "notify.failed") == []
    [request] = webhook.received
    assert request.headers["title"] == title
    assert request.json()["text"].startswith(FAILURE)


def test_a_long_error_fits_discord(project, invoke, webhook):
    """Discord refuses content over 2000 characters: a 5000-character error is cut to fit."""
    project.add_agent("agent", AGENT)
    configure(project, webhook.url())
    assert invoke("run", "agent", "-p", "fail=true", "-p", "why=" + "x" * 5000).exit_code == 1
    [message] = webhook.messages()
    assert 1000 < len(message["content"]) <= 2000
    assert message["text"] == message["content"]


# -- webhooks that fail ------------------------------------------------------------------------


@dataclass
class Breakage:
    """A way a webhook fails, and the error ``notify.failed`` names."""

    how: str
    error: str
    webhook: Webhook

    def apply(self) -> None:
        """Break the webhook."""
        if self.how == "dead":
            self.webhook.kill()
        elif self.how == "500":
            self.webhook.status = 500
        else:
            self.webhook.hang = True


@pytest.fixture(
    params=[("dead", "ConnectError"), ("500", "HTTPStatusError"), ("hanging", "ReadTimeout")],
    ids=lambda p: p[0],
)
def breakage(request: pytest.FixtureRequest, webhook: Webhook) -> Breakage:
    """The webhook refusing connections, answering 500, or never answering."""
    how, error = request.param
    return Breakage(how, error, webhook)


def test_a_webhook_that_fails_changes_nothing_about_the_run(project, invoke, webhook, breakage):
    """Dead, 500 or hanging: the same exit code, line and state; notify.failed; no hang."""
    project.add_agent("agent", AGENT, "[circuit]\nfailures = 5\n")
    configure(project, webhook.url())
    breakage.apply()
    started = time.monotonic()
    result = invoke("run", "agent", "-p", "fail=true")
    assert time.monotonic() - started < RETURNS_WITHIN_S
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [cron_line(project)]
    state = project.state("agent")
    assert state["last_run"]["status"] == "failed"
    assert (state["metrics"]["runs"], state["metrics"]["failed"]) == (1, 1)
    [failed] = logged(project, "notify.failed")
    assert (failed["kind"], failed["webhook"], failed["error"]) == (
        "failure",
        "127.0.0.1",
        breakage.error,
    )
    assert len(webhook.received) == (0 if breakage.how == "dead" else 1)
    assert not (project.home / "state" / "agent.notices.json").exists()

    # Nothing was delivered, so nothing is cooled down: the next failure tries again.
    assert invoke("run", "agent", "-p", "fail=true").exit_code == 1
    assert [e["kind"] for e in logged(project, "notify.failed")] == ["failure", "failure"]


def test_a_success_with_a_failing_webhook_still_succeeds(project, invoke, webhook, breakage):
    """A `recovered` that cannot be sent: exit 0, silent; the next success sends it."""
    project.add_agent("agent", AGENT)
    configure(project, webhook.url())
    assert invoke("run", "agent", "-p", "fail=true").exit_code == 1
    breakage.apply()
    started = time.monotonic()
    result = invoke("run", "agent")
    assert time.monotonic() - started < RETURNS_WITHIN_S
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert project.state("agent")["last_run"]["status"] == "succeeded"
    [failed] = logged(project, "notify.failed")
    assert (failed["kind"], failed["error"]) == ("recovered", breakage.error)
    assert notices(project)["open"] == ["failure"]

    other = Webhook()
    try:
        configure(project, other.url())
        assert invoke("run", "agent").exit_code == 0
        assert other.kinds() == ["recovered"]
    finally:
        other.close()


def test_one_dead_webhook_does_not_keep_the_message_from_the_others(project, invoke, webhook):
    """A dead webhook and a malformed one, then a live one: the live one gets the message."""
    dead = Webhook()
    dead.kill()
    project.add_agent("agent", AGENT)
    configure(project, dead.url(), "http://[::1/hook", webhook.url())
    assert invoke("run", "agent", "-p", "fail=true").exit_code == 1
    assert webhook.kinds() == ["failure"]
    assert [e["error"] for e in logged(project, "notify.failed")] == ["ConnectError", "InvalidURL"]
    assert notices(project)["open"] == ["failure"]


def test_a_malformed_webhook_does_not_stop_the_watchdog(project, invoke, webhook):
    """`health` telling of a stale agent through a URL httpx refuses: exit 1, not a crash."""
    stale_agent(project)
    configure(project, "http://[::1/hook", webhook.url())
    result = invoke("health")
    assert result.exit_code == 1
    assert result.stdout.startswith("agent: stale: ")
    assert webhook.kinds() == ["stale"]


# -- stale, from the watchdog ---------------------------------------------------------------


def test_health_tells_of_a_stale_agent_once_and_of_its_recovery(project, invoke, webhook):
    """`health` posts `stale` once per cooldown; the agent's next success posts `recovered`."""
    stale_agent(project)
    configure(project, webhook.url())
    first = invoke("health")
    assert first.exit_code == 1
    [line] = first.stdout.splitlines()
    assert line.startswith("agent: stale: no successful run since the tick at ")
    [message] = webhook.messages()
    assert message["text"] == message["content"] == f"agentops [{message['kind']}] {line}"
    assert (message["kind"], message["agent"]) == ("stale", "agent")
    assert (message["status"], message["exit_code"], message["run_id"]) == (None, None, None)

    again = invoke("health")
    assert (again.exit_code, again.stdout) == (1, first.stdout)
    assert webhook.kinds() == ["stale"]
    assert [e["kind"] for e in logged(project, "notify.cooled_down")] == ["stale"]

    assert invoke("run", "agent").exit_code == 0
    assert webhook.kinds() == ["stale", "recovered"]
    healthy = invoke("health")
    assert (healthy.exit_code, healthy.stdout) == (0, "")
    assert webhook.kinds() == ["stale", "recovered"]


def test_health_tells_of_a_stale_agent_again_after_the_cooldown(project, invoke, webhook):
    """`health` has no clock to move: the notice is dated back past the cooldown (30m)."""
    stale_agent(project)
    configure(project, webhook.url(), cooldown="30m")
    assert invoke("health").exit_code == 1
    path = project.home / "state" / "agent.notices.json"
    kept = json.loads(path.read_text())
    assert kept["open"] == ["stale"]
    kept["sent"]["stale"] = "2000-01-01T00:00:00Z"
    path.write_text(json.dumps(kept))
    assert invoke("health").exit_code == 1
    assert webhook.kinds() == ["stale", "stale"]


def test_a_failing_webhook_does_not_hang_the_watchdog(project, invoke, webhook, ping, breakage):
    """Dead, 500 or hanging webhook: `health` still exits 1 with its line, and still pings."""
    stale_agent(project)
    configure(project, webhook.url())
    breakage.apply()
    started = time.monotonic()
    result = invoke("health", "--ping", ping.url("/hc/uuid"))
    assert time.monotonic() - started < RETURNS_WITHIN_S
    assert result.exit_code == 1
    assert result.stdout.startswith("agent: stale: ")
    assert result.stderr == ""
    [failed] = logged(project, "notify.failed")
    assert (failed["kind"], failed["error"]) == ("stale", breakage.error)
    assert [(r.method, r.path) for r in ping.received] == [("POST", "/hc/uuid/fail")]


# -- health --ping -----------------------------------------------------------------------------


@pytest.mark.parametrize("healthy", [True, False], ids=["healthy", "unhealthy"])
def test_a_failing_ping_changes_nothing_but_is_said(project, invoke, breakage, healthy):
    """Dead, 500 or hanging checks service: the same exit code and lines; one line on stderr."""
    if healthy:
        project.add_agent("agent", AGENT)
        assert invoke("run", "agent").exit_code == 0
    else:
        stale_agent(project)
    url = breakage.webhook.url("/hc/uuid")
    breakage.apply()
    started = time.monotonic()
    result = invoke("health", "--ping", url)
    assert time.monotonic() - started < RETURNS_WITHIN_S
    assert result.exit_code == (0 if healthy else 1)
    assert (result.stdout == "") is healthy
    [said] = result.stderr.splitlines()
    assert said.startswith("agentops: health: the heartbeat to 127.0.0.1 failed: ")
    assert "/hc/uuid" not in said  # a check's URL holds its token: only the host is said
    assert ("HTTP 500" if breakage.how == "500" else breakage.error) in said


KILLED_AGENT = agent_source(
    """
    ctx.action("publish", key="item-1", do=lambda: "sent")
    if params.die:
        os.kill(os.getpid(), signal.SIGKILL)
    return Result()
    """,
    params="die: bool = False",
    result="",
    imports="import os, signal",
)


def test_a_run_killed_mid_run_is_told_by_the_next_which_then_recovers(
    project, run_agentops, invoke, webhook
):
    """A dead run cannot speak: the run that recovers it posts its failure, then recovered."""
    project.add_agent("agent", KILLED_AGENT)
    configure(project, webhook.url())
    killed = run_agentops("run", "agent", "-p", "die=true")
    assert killed.returncode == -9
    assert webhook.received == []
    assert invoke("run", "agent").exit_code == 0
    assert webhook.kinds() == ["failure", "recovered"]
    dead, recovered = webhook.messages()
    assert dead["status"] == "crashed"
    assert dead["run_id"] != recovered["run_id"]
    assert "died before it finished" in dead["text"]
