"""The notifier: one agent's policy and channels, as a run and the watchdog call them.

``Notifier(config, store, ...)`` is what the run (after its state is saved)
and ``agentops health`` (for ``stale``) build: :meth:`Notifier.after_run` and
:meth:`Notifier.stale` ask the :class:`~agentops.notify.policy.NotifyPolicy`
what is due, turn each into a redacted
:class:`~agentops.notify.channels.Notification`, and deliver it to every
channel registered (the webhooks of ``[notify] webhooks`` first). A channel
that fails changes nothing else: the run's outcome is what it was.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from agentops.notify.channels import ChannelSetup, Notification, channels_for, host_of
from agentops.notify.channels.webhook import TIMEOUT_S
from agentops.notify.policy import NotifyPolicy, kinds_of

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    import httpx

    from agentops._infra.log import EventLogger
    from agentops._infra.redact import Redactor
    from agentops.model.outcome import Outcome
    from agentops.notify.channels import Channel
    from agentops.notify.policy import Due
    from agentops.project.config import Notify
    from agentops.store import Store

# TIMEOUT_S, host_of and kinds_of moved to the channels and the policy; they are
# still found here, where callers have imported them from.
__all__ = ["TIMEOUT_S", "Notifier", "host_of", "kinds_of"]


class Notifier:
    """Sends one agent's notifications through every channel, as its policy decides."""

    def __init__(
        self,
        config: Notify,
        store: Store,
        *,
        clock: Callable[[], datetime],
        log: EventLogger,
        redactor: Redactor,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Notify as ``config`` says, keeping notices in ``store``.

        ``redactor`` cleans every text before a channel sees it; ``transport``
        is the HTTP transport channels that speak HTTP use (tests pass theirs).
        """
        self.policy = NotifyPolicy(config, store, clock=clock, log=log)
        self.channels: list[Channel] = channels_for(
            ChannelSetup(config=config, log=log, transport=transport)
        )
        self.log = log
        self.redactor = redactor

    def after_run(self, outcome: Outcome) -> None:
        """Tell what a finished invocation needs a human for, or that it recovered."""
        if self.channels:
            self.policy.after_run(outcome, self._tell)

    def stale(self, agent: str, why: str) -> None:
        """Tell that an agent has not succeeded since its schedule's tick (from the watchdog)."""
        if self.channels:
            self.policy.stale(agent, why, self._tell)

    def _tell(self, due: Due) -> bool:
        outcome = due.outcome
        notification = Notification(
            agent=due.agent,
            kind=due.kind,
            text=self.redactor.value(due.text),
            status=None if outcome is None else outcome.status,
            exit_code=None if outcome is None else outcome.exit_code,
            run_id=None if outcome is None else outcome.run_id,
            host=socket.gethostname(),
            at=due.at,
        )
        # Every channel is told, whatever the others did: no short cut by any().
        delivered = [self._deliver(channel, notification) for channel in self.channels]
        return any(delivered)

    def _deliver(self, channel: Channel, notification: Notification) -> bool:
        try:
            return channel.deliver(notification)
        except Exception as exc:  # noqa: BLE001 - one broken channel must not silence the others
            self.log.warning(
                "notify.failed",
                kind=notification.kind,
                channel=type(channel).__name__,
                error=type(exc).__name__,
            )
            return False
