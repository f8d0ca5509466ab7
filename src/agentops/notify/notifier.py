"""The notifier: one agent's policy and channels, as a run and the watchdog call them.

``Notifier(config, store, ...)`` is what a run and ``agentops health`` (for
``stale``) build. The channels that hear alerts are told what the
:class:`~agentops.notify.policy.NotifyPolicy` finds due (:meth:`Notifier.after_run`,
:meth:`Notifier.stale`), each turned into a redacted
:class:`~agentops.notify.channels.Notification`; those that hear runs (the
agent's ping) are told of every run's start (:meth:`Notifier.started`) and
end, uncooled. A channel that fails changes nothing else: the run's outcome
is what it was.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from agentops.model.status import RunStatus
from agentops.notify._tail import run_lines
from agentops.notify.channels import ChannelSetup, Notification, channels_for, host_of
from agentops.notify.channels.ping import secret_forms
from agentops.notify.channels.webhook import TIMEOUT_S
from agentops.notify.policy import NotifyPolicy, kinds_of
from agentops.notify.slow import slow_run

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    import httpx

    from agentops._infra.log import EventLogger
    from agentops._infra.redact import Redactor
    from agentops.model.outcome import Outcome
    from agentops.model.state import AgentState
    from agentops.notify.channels import Channel
    from agentops.notify.policy import Due
    from agentops.project.config import AgentConfig, Notify
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
        agent: AgentConfig | None = None,
    ) -> None:
        """Notify as ``config`` says, keeping notices in ``store``.

        ``redactor`` cleans every text before a channel sees it; ``transport``
        is the HTTP transport channels that speak HTTP use (tests pass theirs).
        ``agent`` is the agent's own configuration, when it could be read: its
        ``[notify] ping``, and its ``expected_duration``.
        """
        self.policy = NotifyPolicy(config, store, clock=clock, log=log)
        ping = None if agent is None else agent.notify.ping
        if ping is not None:  # it holds the check's token: redacted wherever it is quoted
            redactor.add(secret_forms(ping))
        setup = ChannelSetup(config=config, log=log, transport=transport, ping=ping)
        self.channels: list[Channel] = channels_for(setup)
        """The channels that hear the policy's alerts."""
        self.run_channels: list[Channel] = channels_for(setup, hears="runs")
        """The channels that hear every run's start and end."""
        self.expected_duration = None if agent is None else agent.expected_duration
        self.clock = clock
        self.log = log
        self.redactor = redactor

    def started(self, agent: str, run_id: str) -> None:
        """Tell the channels that hear runs that ``run_id`` has started its work."""
        if self.run_channels:
            text = f"{agent}: run {run_id} started"
            self._to(self.run_channels, self._notification(agent, "start", text, run_id=run_id))

    def after_run(self, outcome: Outcome, *, state: AgentState | None = None) -> None:
        """Tell how a finished invocation ended, and what it needs a human for.

        ``state`` is the agent's state as the run saved it (what tells a slow run).
        """
        if self.run_channels and outcome.status != RunStatus.SKIPPED:  # a skip is no run
            self._to(self.run_channels, self._ended(outcome))
        if self.channels:
            expected, run_id = self.expected_duration, outcome.run_id
            slow = None if state is None else slow_run(state, expected, run_id=run_id)
            self.policy.after_run(outcome, self._tell, slow=slow)

    def stale(self, agent: str, why: str) -> None:
        """Tell that an agent has not succeeded since its schedule's tick (from the watchdog)."""
        if self.channels:
            self.policy.stale(agent, why, self._tell)

    def _ended(self, outcome: Outcome) -> Notification:
        if outcome.exit_code == 0:
            return self._notification(outcome.agent, "success", outcome.message, outcome=outcome)
        # The end of the run's log says what happened: the body of a failure's ping.
        lines = run_lines(outcome.log_path, outcome.run_id) or (outcome.message,)
        return self._notification(
            outcome.agent, "failure", outcome.message, outcome=outcome, lines=lines
        )

    def _tell(self, due: Due) -> bool:
        notification = self._notification(
            due.agent, due.kind, due.text, outcome=due.outcome, at=due.at
        )
        return self._to(self.channels, notification)

    def _notification(
        self,
        agent: str,
        kind: str,
        text: str,
        *,
        outcome: Outcome | None = None,
        run_id: str | None = None,
        at: datetime | None = None,
        lines: tuple[str, ...] = (),
    ) -> Notification:
        return Notification(
            agent=agent,
            kind=kind,
            text=self.redactor.value(text),
            status=None if outcome is None else outcome.status,
            exit_code=None if outcome is None else outcome.exit_code,
            run_id=run_id if outcome is None else outcome.run_id,
            host=socket.gethostname(),
            at=self.clock() if at is None else at,
            lines=tuple(self.redactor.value(line) for line in lines),
        )

    def _to(self, channels: list[Channel], notification: Notification) -> bool:
        # Every channel is told, whatever the others did: no short cut by any().
        delivered = [self._deliver(channel, notification) for channel in channels]
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
