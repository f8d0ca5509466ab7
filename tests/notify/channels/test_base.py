"""The channel seam: a second channel, registered by the test, hears what the webhook hears.

:class:`Recorder` is a channel agentops does not know: it is registered from
here with :func:`agentops.notify.channels.register`, as a plugin would, and
keeps every :class:`~agentops.notify.channels.Notification` it is handed. It
has no cooldown and no memory of what it told: that it still receives
exactly what the webhook on loopback receives shows the policy, not the
channel, decides what is told.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from agentops._infra.timestamps import iso
from agentops.notify.channels import (
    ChannelSetup,
    Notification,
    register,
    unregister,
)
from agentops.testing import FakeClock
from leakscan import FAKE_SECRETS
from suite import agent_source

if TYPE_CHECKING:
    from collections.abc import Iterator

    from webhookserver import Webhook


AGENT = agent_source(
    """
    if params.secret:
        raise RuntimeError("the feed refused " + os.environ["FAKE_SERVICE_API_KEY"])
    if params.fail:
        raise RuntimeError("the feed is down")
    return Result()
    """,
    params="""
    fail: bool = False
    secret: bool = False
    """,
    result="",
    imports="import os",
)


class Recorder:
    """A channel that keeps what it is handed, and answers ``delivered``."""

    def __init__(self) -> None:
        self.received: list[Notification] = []
        self.setups: list[ChannelSetup] = []
        self.delivered = True

    def deliver(self, notification: Notification) -> bool:
        self.received.append(notification)
        return self.delivered

    def kinds(self) -> list[str]:
        return [n.kind for n in self.received]


class Exploding:
    """A channel with a bug: it raises instead of answering."""

    def deliver(self, notification: Notification) -> bool:
        raise RuntimeError(f"cannot deliver {notification.kind}")


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """A :class:`Recorder` registered as the channel ``recorder`` for the test."""
    channel = Recorder()

    def factory(setup: ChannelSetup) -> list[Recorder]:
        channel.setups.append(setup)
        return [channel]

    register("recorder", factory)
    try:
        yield channel
    finally:
        unregister("recorder")


def configure(project, webhook: Webhook, cooldown: str = "1h") -> None:
    """agentops.toml telling the webhook (a run notifies only when a webhook is configured)."""
    (project.home / "agentops.toml").write_text(
        f'[notify]\nwebhooks = ["{webhook.url()}"]\ncooldown = "{cooldown}"\n'
    )


def logged(project, event: str, name: str = "agent") -> list[dict]:
    """The agent's log lines called ``event``."""
    return [e for e in project.events(name) if e["event"] == event]


def notices(project, name: str = "agent") -> dict:
    """What the store keeps of what people were told."""
    return json.loads((project.home / "state" / f"{name}.notices.json").read_text())


# -- the second channel hears what the webhook hears --------------------------------------


def test_a_registered_channel_receives_what_the_webhook_receives(
    project, invoke, webhook, recorder
):
    """failure, circuit_open, recovered, stale: the same four, each with the same facts."""
    project.add_agent("agent", AGENT, '[circuit]\nfailures = 2\ncooldown = "5m"\n')
    project.add_agent("late", AGENT, 'schedule = "@hourly"\n')
    os.utime(project.home / "agents" / "late" / "agent.toml", (0, 0))  # stale whatever the time
    configure(project, webhook)
    clock = FakeClock()
    project.run(clock=clock, overrides={"fail": True})  # failure
    clock.advance(minutes=1)
    assert (
        project.run(clock=clock, overrides={"fail": True}).circuit == "opened"
    )  # failure cooled down
    clock.advance(minutes=6)  # past the circuit's cooldown: a trial run, which succeeds
    assert project.run(clock=clock).exit_code == 0
    assert invoke("health").exit_code == 1  # in-process: the registry is this process's

    assert recorder.kinds() == webhook.kinds() == ["failure", "circuit_open", "recovered", "stale"]
    for told, posted in zip(recorder.received, webhook.messages(), strict=True):
        assert posted["text"] == f"agentops [{told.kind}] {told.text}"
        status = None if told.status is None else str(told.status)
        facts = (told.agent, told.kind, status, told.exit_code, told.run_id, told.host)
        assert facts == tuple(
            posted[k] for k in ("agent", "kind", "status", "exit_code", "run_id", "host")
        )
        assert posted["at"] == iso(told.at)
    failure, opened, recovered, stale = recorder.received
    assert (failure.agent, failure.exit_code, failure.at) == ("agent", 1, FakeClock().now)
    assert opened.text.startswith("agent: CIRCUIT OPEN after 2 ")
    assert (recovered.text, recovered.status, recovered.exit_code) == (
        "agent: recovered",
        "succeeded",
        0,
    )
    assert (stale.agent, stale.status, stale.exit_code, stale.run_id) == ("late", None, None, None)
    assert stale.text.startswith("late: stale: no successful run since the tick at ")
    [cooled] = logged(project, "notify.cooled_down")
    assert cooled["kind"] == "failure"
    assert recorder.setups[0].config.webhooks == [webhook.url()]


def test_one_channel_delivering_is_enough_to_count_as_told(project, webhook, recorder):
    """The webhook answers 500, the recorder delivers: told, open, and cooled down for both."""
    project.add_agent("agent", AGENT, "[circuit]\nfailures = 5\n")
    configure(project, webhook)
    webhook.status = 500
    clock = FakeClock()
    project.run(clock=clock, overrides={"fail": True})
    assert notices(project)["open"] == ["failure"]
    clock.advance(minutes=1)
    project.run(clock=clock, overrides={"fail": True})
    assert recorder.kinds() == webhook.kinds() == ["failure"]
    assert [e["kind"] for e in logged(project, "notify.failed")] == ["failure"]


def test_nobody_delivering_leaves_the_problem_untold(project, webhook, recorder):
    """Both refuse: nothing is kept, and the next failure is tried on both again at once."""
    project.add_agent("agent", AGENT, "[circuit]\nfailures = 5\n")
    configure(project, webhook)
    webhook.status = 500
    recorder.delivered = False
    clock = FakeClock()
    project.run(clock=clock, overrides={"fail": True})
    clock.advance(minutes=1)
    project.run(clock=clock, overrides={"fail": True})
    assert recorder.kinds() == webhook.kinds() == ["failure", "failure"]
    assert not (project.home / "state" / "agent.notices.json").exists()


def test_a_channel_that_raises_does_not_silence_the_others(project, webhook, recorder):
    """A channel with a bug: notify.failed names it; the webhook and the recorder still hear."""
    register("exploding", lambda _setup: [Exploding()])
    try:
        project.add_agent("agent", AGENT)
        configure(project, webhook)
        outcome = project.run(clock=FakeClock(), overrides={"fail": True})
    finally:
        unregister("exploding")
    assert outcome.exit_code == 1
    assert recorder.kinds() == webhook.kinds() == ["failure"]
    [failed] = logged(project, "notify.failed")
    assert (failed["kind"], failed["channel"], failed["error"]) == (
        "failure",
        "Exploding",
        "RuntimeError",
    )
    assert notices(project)["open"] == ["failure"]


def test_a_channel_is_handed_redacted_text(project, webhook, recorder):
    """An error quoting an API key: the channel never sees the key."""
    project.add_agent("agent", AGENT)
    configure(project, webhook)
    project.run(clock=FakeClock(), overrides={"secret": True})
    [told] = recorder.received
    assert told.text == "agent: run() raised RuntimeError: the feed refused [REDACTED]"
    assert not any(secret in told.text for secret in FAKE_SECRETS.values())


# -- the registry -----------------------------------------------------------------------


def test_notifying_does_not_import_httpx_until_something_is_sent():
    """Building a notifier that has nothing to send leaves httpx unimported (cron's start-up)."""
    code = (
        "import sys\n"
        "from agentops.notify.notifier import Notifier\n"
        "from agentops.project.config import Notify\n"
        "Notifier(Notify(webhooks=['https://hooks.example.org/x']), None,"
        " clock=None, log=None, redactor=None)\n"
        "print('httpx' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"
