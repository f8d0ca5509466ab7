"""Channels: the ways notifications reach people, behind one small protocol.

:class:`~agentops.notify.channels.base.Channel` delivers one
:class:`~agentops.notify.channels.base.Notification`; a factory registered
under a name builds a kind of channel from a
:class:`~agentops.notify.channels.base.ChannelSetup`. Two are built in: the
webhook (:mod:`~agentops.notify.channels.webhook`, ``[notify] webhooks``),
which hears the policy's alerts, and the ping
(:mod:`~agentops.notify.channels.ping`, an agent's ``[notify] ping``), which
hears every run's start and end; :func:`register` adds another without
editing agentops.
"""

from __future__ import annotations

from agentops.notify.channels._registry import channels_for, register, registered, unregister
from agentops.notify.channels._url import host_of
from agentops.notify.channels.base import (
    RUN_KINDS,
    Channel,
    ChannelFactory,
    ChannelSetup,
    Hears,
    Notification,
)

__all__ = [
    "RUN_KINDS",
    "Channel",
    "ChannelFactory",
    "ChannelSetup",
    "Hears",
    "Notification",
    "channels_for",
    "host_of",
    "register",
    "registered",
    "unregister",
]
