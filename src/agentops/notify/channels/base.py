"""The seam every channel implements: one :class:`Notification` in, delivered or not.

A channel is told *how* to reach people, never *whether* to: what is worth
telling, and how often, is the policy's (:mod:`agentops.notify.policy`), so a
new channel gets the cooldown and ``recovered`` for nothing and cannot get
them wrong. The text it is handed is already redacted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias

if TYPE_CHECKING:
    from datetime import datetime

    import httpx

    from agentops._infra.log import EventLogger
    from agentops.model.status import RunStatus
    from agentops.project.config import Notify

__all__ = ["Channel", "ChannelFactory", "ChannelSetup", "Notification"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """One thing people are told about one agent, as every channel receives it."""

    agent: str
    kind: str
    """What it is about: one of ``[notify] on`` (``failure``, ``recovered``, ``stale``...)."""
    text: str
    """One line for a human, secrets already redacted: ``"publisher: run() raised ..."``."""
    status: RunStatus | None
    """How the run ended; None when no run is behind it (``stale``, from the watchdog)."""
    exit_code: int | None
    """The run's exit code; None when no run is behind it."""
    run_id: str | None
    """The run it is about; None when no run is behind it."""
    host: str
    """The host that tells it (where the run ran, or where the watchdog looked)."""
    at: datetime
    """When it is told: the moment the cooldown is counted from."""


class Channel(Protocol):
    """A way to reach people: a webhook, or one a test registers.

    :meth:`deliver` reports a failure by returning False (and logging
    ``notify.failed``, naming no secret), never by raising: a notification is
    never the run's outcome. It is called after the run's state is saved, and
    must be quick (a short timeout), since a run waits for it.
    """

    def deliver(self, notification: Notification) -> bool:
        """Send ``notification``; whether it reached its destination.

        Delivered by at least one channel, a problem counts as told: the
        policy cools it down, and answers it with ``recovered`` later.
        """
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelSetup:
    """What a channel is built from: the configuration, and the run's services."""

    config: Notify
    """``[notify]`` in agentops.toml."""
    log: EventLogger
    """The agent's log, bound to the run: ``notify.sent`` and ``notify.failed`` go there."""
    transport: httpx.BaseTransport | None = None
    """The HTTP transport a channel that speaks HTTP uses (tests pass their own)."""


ChannelFactory: TypeAlias = Callable[[ChannelSetup], Iterable[Channel]]
"""Builds a kind of channel's instances from a setup: none when it is not configured."""
