"""The seam every channel implements: one :class:`Notification` in, delivered or not.

A channel is told *how* to reach people, never *whether* to: what is worth
telling, and how often, is the policy's (:mod:`agentops.notify.policy`), so a
new channel gets the cooldown and ``recovered`` for nothing and cannot get
them wrong. The text it is handed is already redacted.

A channel hears one of two streams (:data:`Hears`, chosen when it is
registered): ``alerts``, what the policy finds worth telling (the kinds of
``[notify] on``, cooled down, by incident), or ``runs``, every run's start
and end, as a checks service wants them (``start``, then ``success`` or
``failure``; a run skipped before it started is no run, and sends nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, TypeAlias

if TYPE_CHECKING:
    from datetime import datetime

    import httpx

    from agentops._infra.log import EventLogger
    from agentops.model.status import RunStatus
    from agentops.project.config import Notify

__all__ = ["RUN_KINDS", "Channel", "ChannelFactory", "ChannelSetup", "Hears", "Notification"]

Hears: TypeAlias = Literal["alerts", "runs"]
"""What a kind of channel hears: the policy's alerts, or every run's start and end."""

RUN_KINDS = ("start", "success", "failure")
"""The kinds of what a channel that hears ``runs`` is told: a run started, or ended so."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """One thing people are told about one agent, as every channel receives it."""

    agent: str
    kind: str
    """What it is about: one of ``[notify] on`` (``failure``, ``recovered``, ``stale``...)
    for an alert, one of :data:`RUN_KINDS` for a run's start or end."""
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
    lines: tuple[str, ...] = ()
    """What may go below the text, secrets redacted: the last lines of a failed run's
    log, or the watchdog's problems (a ping sends them as the body of a failure)."""


class Channel(Protocol):
    """A way to reach people: a webhook, or one a test registers.

    :meth:`deliver` reports a failure by returning False (and logging
    ``notify.failed``, naming no secret), never by raising: a notification is
    never the run's outcome. An alert, or a run's end, is delivered after the
    run's state is saved; a run's start, before its work begins. The run waits
    either way, so it must be quick (a short timeout).
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
    ping: str | None = None
    """The agent's check (``[notify] ping`` in its agent.toml); None when it has none."""


ChannelFactory: TypeAlias = Callable[[ChannelSetup], Iterable[Channel]]
"""Builds a kind of channel's instances from a setup: none when it is not configured."""
