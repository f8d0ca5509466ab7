"""Which kinds of channel exist: each registered under a name, with its factory.

A new channel is one new module plus one line in :data:`_BUILT_IN`; a test, or
a plugin, adds its own with :func:`register` without editing agentops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentops.notify.channels.webhook import webhook_channels

if TYPE_CHECKING:
    from agentops.notify.channels.base import Channel, ChannelFactory, ChannelSetup

__all__ = ["channels_for", "register", "registered", "unregister"]

_BUILT_IN: dict[str, ChannelFactory] = {"webhook": webhook_channels}

# In registration order: a notification reaches the channels in this order.
_factories: dict[str, ChannelFactory] = dict(_BUILT_IN)


def register(name: str, factory: ChannelFactory) -> None:
    """Make ``factory``'s channels receive every notification from now on.

    ``factory`` is called with each notifier's :class:`ChannelSetup` and
    returns the channels the setup configures (none when it configures none).
    A name already registered is refused (``ValueError``): unregister it first.
    """
    if name in _factories:
        raise ValueError(f"a notification channel named {name!r} is registered already")
    _factories[name] = factory


def unregister(name: str) -> None:
    """Forget the channel registered under ``name`` (``KeyError`` if there is none)."""
    del _factories[name]


def registered() -> list[str]:
    """The names of the channels registered, in the order they are told."""
    return list(_factories)


def channels_for(setup: ChannelSetup) -> list[Channel]:
    """Every channel ``setup`` configures, of every kind registered, in order."""
    return [channel for factory in _factories.values() for channel in factory(setup)]
