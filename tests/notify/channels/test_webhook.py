"""The webhook channel: one JSON POST that Slack, Discord and ntfy read, said without its token.

Delivered to the suite's webhook on loopback; what the run's log says of it
is read from a logger that records.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agentops.model.status import RunStatus
from agentops.notify.channels._url import host_of
from agentops.notify.channels.base import Notification
from agentops.notify.channels.webhook import WebhookChannel, payload_of

AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class Recorded:
    """A logger keeping (level, event, fields) of each line."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict]] = []

    def info(self, event: str, **fields) -> None:
        self.lines.append(("info", event, fields))

    def warning(self, event: str, **fields) -> None:
        self.lines.append(("warning", event, fields))


def failure(text: str = "pub: run() raised RuntimeError: the feed is down") -> Notification:
    return Notification(
        agent="pub",
        kind="failure",
        text=text,
        status=RunStatus.FAILED,
        exit_code=1,
        run_id="run-1",
        host="cron-host",
        at=AT,
    )


def test_a_notification_is_posted_as_json_with_a_title_and_logged(webhook):
    """text and content for Slack and Discord, Title for ntfy, the facts; notify.sent says so."""
    log = Recorded()
    assert WebhookChannel(webhook.url("/hook/T0?token=abc"), log=log).deliver(failure())
    [request] = webhook.received
    assert (request.method, request.path) == ("POST", "/hook/T0?token=abc")
    body = request.json()
    line = "agentops [failure] pub: run() raised RuntimeError: the feed is down"
    assert (body["text"], body["content"], request.headers["title"]) == (line, line, line)
    assert {k: body[k] for k in ("agent", "kind", "status", "exit_code", "run_id", "host")} == {
        "agent": "pub",
        "kind": "failure",
        "status": "failed",
        "exit_code": 1,
        "run_id": "run-1",
        "host": "cron-host",
    }
    assert body["at"] == "2026-11-22T12:00:00Z"
    assert log.lines == [
        ("info", "notify.sent", {"kind": "failure", "webhook": "127.0.0.1", "status": 200})
    ]


@pytest.mark.parametrize("how", ["500", "dead"])
def test_a_webhook_that_fails_is_false_and_logged_naming_the_host_only(webhook, how):
    """An error or a refused connection: not delivered, notify.failed, no path or token said."""
    if how == "500":
        webhook.status = 500
    else:
        webhook.kill()
    log = Recorded()
    channel = WebhookChannel(webhook.url("/hook/secret-token"), log=log)
    assert channel.deliver(failure()) is False
    [(level, event, fields)] = log.lines
    assert (level, event, fields["webhook"]) == ("warning", "notify.failed", "127.0.0.1")
    assert fields["error"] in {"HTTPStatusError", "ConnectError"}
    assert "secret-token" not in repr(channel)


def test_a_run_without_a_run_behind_it_says_none():
    """A stale agent, told by the watchdog: no status, exit code or run id."""
    stale = Notification(
        agent="pub",
        kind="stale",
        text="pub: stale",
        status=None,
        exit_code=None,
        run_id=None,
        host="h",
        at=AT,
    )
    body = payload_of(stale)
    assert (body["status"], body["exit_code"], body["run_id"]) == (None, None, None)


def test_a_long_text_is_cut_to_fit_the_strictest_reader():
    """Discord refuses more than 2000 characters: the line is cut, text and content alike."""
    body = payload_of(failure("x" * 5000))
    assert len(body["content"]) <= 2000
    assert body["text"] == body["content"]


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://hooks.slack.com/services/T0/B0/XYZ", "hooks.slack.com"),
        ("https://ntfy.sh/my-secret-topic", "ntfy.sh"),
        ("http://[::1/hook", "?"),
        ("not a url", "?"),
    ],
)
def test_only_the_host_of_a_url_is_said(url, host):
    """The path and query may be the token: a URL is named by its host, or '?'."""
    assert host_of(url) == host
