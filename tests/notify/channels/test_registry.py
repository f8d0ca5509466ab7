"""Which channels exist: the webhook built in, others registered by name, once each."""

from __future__ import annotations

import pytest

from agentops.notify.channels import (
    ChannelSetup,
    channels_for,
    register,
    registered,
    unregister,
)
from agentops.notify.channels.webhook import WebhookChannel
from agentops.project.config import Notify


def test_the_webhook_is_the_channel_built_in():
    """`webhook` and `ping` are registered out of the box: one webhook per URL, in their order."""
    assert registered() == ["webhook", "ping"]
    urls = ["https://hooks.example.org/a", "https://ntfy.example.org/b"]
    setup = ChannelSetup(config=Notify(webhooks=urls), log=None)
    channels = channels_for(setup)
    assert [type(c) for c in channels] == [WebhookChannel, WebhookChannel]
    assert [c.url for c in channels] == urls
    assert repr(channels[0]) == "WebhookChannel('hooks.example.org')"  # the host only
    assert channels_for(ChannelSetup(config=Notify(), log=None)) == []


def test_a_name_is_registered_once():
    """A second channel of a name is refused; unregistering an unknown name is a KeyError."""
    register("recorder", lambda _setup: [])
    try:
        assert registered() == ["webhook", "ping", "recorder"]
        with pytest.raises(ValueError, match="'recorder' is registered already"):
            register("recorder", lambda _setup: [])
    finally:
        unregister("recorder")
    assert registered() == ["webhook", "ping"]
    with pytest.raises(KeyError):
        unregister("carrier-pigeon")
