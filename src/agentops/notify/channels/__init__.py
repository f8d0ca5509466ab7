"""Channels: the ways notifications reach people, behind one small protocol.

:class:`~agentops.notify.channels.base.Channel` delivers one
:class:`~agentops.notify.channels.base.Notification`; a factory registered
under a name builds a kind of channel from a
:class:`~agentops.notify.channels.base.ChannelSetup`. The webhook
(:mod:`~agentops.notify.channels.webhook`, ``[notify] webhooks``) is the one
built in; :func:`register` adds another without editing agentops.
"""

from __future__ import annotations

from agentops.notify.channels._registry import channels_for, register, registered, unregister
from agentops.notify.channels._url import host_of
from agentops.notify.channels.base import Channel, ChannelFactory, ChannelSetup, Notification

__all__ = [
    "Channel",
    "ChannelFactory",
    "ChannelSetup",
    "Notification",
    "channels_for",
    "host_of",
    "register",
    "registered",
    "unregister",
]
