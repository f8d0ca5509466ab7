"""What is worth telling people, and when: the kinds, ``on``, the cooldown, ``recovered``.

=================  ===============================================================
``failure``        a run failed, timed out, crashed, or could not start
``circuit_open``   a run opened the circuit breaker: runs are skipped for a while
``escalated``      a result's confidence was too low: a person must look
``budget``         a budget stopped a run (or one spend is larger than a cap)
``stale``          ``agentops health`` found no success since the schedule's tick
``recovered``      an agent people were told about succeeded again (once)
=================  ===============================================================

Only the kinds in ``[notify] on`` are told, at most one message per agent and
kind per ``cooldown``. ``recovered`` answers the problems told about, once,
however soon after the last one. A problem counts as told when at least one
channel delivered it: a problem nobody heard of is neither cooled down nor
answered.

What was told, and what is still open, is kept per agent by the store as
:class:`~agentops.store.Notices` (``state/<name>.notices.json``), beside the
state and without its lock: the watchdog tells of ``stale`` while a run may
hold the lock.

The policy never sends anything itself: it hands what is :class:`Due` to a
``tell`` function (the notifier's, which delivers to every channel) and
learns from its answer whether anyone heard.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

from agentops._infra.timestamps import iso
from agentops.model.status import RunStatus
from agentops.store import Notices

if TYPE_CHECKING:
    from datetime import datetime

    from agentops._infra.log import EventLogger
    from agentops.model.outcome import Outcome
    from agentops.project.config import Notify
    from agentops.store import Store

__all__ = ["Due", "NotifyPolicy", "Tell", "kinds_of"]


def kinds_of(outcome: Outcome) -> list[str]:
    """What a run's outcome is worth telling about (before ``on`` and cooldowns)."""
    status = outcome.status
    kinds = []
    if outcome.circuit == "opened":
        kinds.append("circuit_open")
    if status == RunStatus.ESCALATED:
        kinds.append("escalated")
    elif status == RunStatus.BUDGET_EXCEEDED or (status.failed and outcome.reason == "budget"):
        kinds.append("budget")
    elif status.failed or status == RunStatus.ABORTED:
        kinds.append("failure")
    return kinds


class Due(NamedTuple):
    """A notification the policy found worth telling now."""

    agent: str
    kind: str
    text: str
    """One line for a human, not yet redacted."""
    outcome: Outcome | None
    """The run it is about; None for what the watchdog found (``stale``)."""
    at: datetime
    """Now: if it is delivered, the cooldown of its kind counts from here."""


Tell: TypeAlias = Callable[[Due], bool]
"""Delivers what is due to every channel; whether at least one of them delivered it."""


class NotifyPolicy:
    """Decides what one agent's runs are worth telling, and remembers what was told."""

    def __init__(
        self, config: Notify, store: Store, *, clock: Callable[[], datetime], log: EventLogger
    ) -> None:
        """Apply ``config``'s kinds and cooldown, keeping notices in ``store``."""
        self.config = config
        self.store = store
        self.clock = clock
        self.log = log

    def after_run(self, outcome: Outcome, tell: Tell) -> None:
        """Tell what a finished invocation needs a human for, or that it recovered."""
        kinds = kinds_of(outcome)
        if not kinds and not outcome.status.ok:
            return
        agent = outcome.agent
        notices = self._notices(agent)
        if outcome.status.ok:
            if notices.open:
                self._tell(
                    agent, "recovered", f"{agent}: recovered", outcome, notices=notices, tell=tell
                )
            return
        for kind in kinds:
            self._tell(agent, kind, outcome.message, outcome, notices=notices, tell=tell)

    def stale(self, agent: str, why: str, tell: Tell) -> None:
        """Tell that an agent has not succeeded since its schedule's tick (from the watchdog)."""
        notices = self._notices(agent)
        self._tell(agent, "stale", f"{agent}: stale: {why}", None, notices=notices, tell=tell)

    def _notices(self, agent: str) -> Notices:
        try:
            found = self.store.notices(agent)
        except Exception as exc:  # noqa: BLE001 - unreadable notices must not stop a run
            self.log.warning("notify.notices_unreadable", error=str(exc))
            found = None
        return found or Notices()

    def _tell(
        self,
        agent: str,
        kind: str,
        text: str,
        outcome: Outcome | None,
        *,
        notices: Notices,
        tell: Tell,
    ) -> None:
        if kind not in self.config.on:
            return
        now = self.clock()
        # ``recovered`` answers a problem people were told about, and each of those
        # is cooled down already: holding it back would leave them thinking an agent
        # that works again is still broken.
        last = None if kind == "recovered" else notices.sent.get(kind)
        if last is not None and now - last < timedelta(seconds=self.config.cooldown):
            self.log.info("notify.cooled_down", kind=kind, last=iso(last))
            return
        if not tell(Due(agent, kind, text, outcome, now)):
            return
        # Telling that it recovered closes every problem; telling a problem opens it.
        still_open = [] if kind == "recovered" else sorted({*notices.open, kind})
        updated = Notices(sent={**notices.sent, kind: now}, open=still_open)
        try:
            self.store.set_notices(agent, updated)
        except Exception as exc:  # noqa: BLE001 - a notice not kept means, at worst, one more message
            self.log.warning("notify.notices_not_kept", error=str(exc))
        notices.sent, notices.open = updated.sent, updated.open
