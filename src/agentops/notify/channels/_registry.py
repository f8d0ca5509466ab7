"""Which kinds of channel exist: each registered under a name, with its factory.

A new channel is one new module plus one line in :data:`_BUILT_IN`; a test, or
a plugin, adds its own with :func:`register` without editing agentops. Each
hears the policy's alerts, or every run's start and end (``hears="runs"``,
as the ping does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from agentops.notify.channels.ping import ping_channels
from agentops.notify.channels.webhook import webhook_channels

if TYPE_CHECKING:
    from agentops.notify.channels.base import Channel, ChannelFactory, ChannelSetup, Hears

__all__ = ["channels_for", "register", "registered", "unregister"]


class _Registration(NamedTuple):
    factory: ChannelFactory
    hears: Hears


_BUILT_IN: dict[str, _Registration] = {
    "webhook": _Registration(webhook_channels, "alerts"),
    "ping": _Registration(ping_channels, "runs"),
}

# In registration order: a notification reaches the channels in this order.
_registrations: dict[str, _Registration] = dict(_BUILT_IN)


def register(name: str, factory: ChannelFactory, *, hears: Hears = "alerts") -> None:
    """Make ``factory``'s channels receive what they hear from now on.

    ``factory`` is called with each notifier's :class:`ChannelSetup` and
    returns the channels the setup configures (none when it configures none).
    They hear the policy's ``alerts`` (the default), or every run's start and
    end (``runs``). A name already registered is refused (``ValueError``):
    unregister it first.
    """
    if name in _registrations:
        raise ValueError(f"a notification channel named {name!r} is registered already")
    _registrations[name] = _Registration(factory, hears)


def unregister(name: str) -> None:
    """Forget the channel registered under ``name`` (``KeyError`` if there is none)."""
    del _registrations[name]


def registered() -> list[str]:
    """The names of the channels registered, in the order they are told."""
    return list(_registrations)


def channels_for(setup: ChannelSetup, *, hears: Hears = "alerts") -> list[Channel]:
    """Every channel ``setup`` configures that hears ``hears``, of every kind registered."""
    return [
        channel
        for registration in _registrations.values()
        if registration.hears == hears
        for channel in registration.factory(setup)
    ]
