"""What is worth telling people, and when: the kinds, ``on``, incidents, ``recovered``.

=================  ===============================================================
``failure``        a run failed, timed out, crashed, or could not start
``circuit_open``   a run opened the circuit breaker: runs are skipped for a while
``escalated``      a result's confidence was too low: a person must look
``budget``         a budget stopped a run (or one spend is larger than a cap)
``stale``          ``agentops health`` found no success since the schedule's tick
``slow``           a run succeeded, but took longer than it should (:mod:`.slow`)
``recovered``      the agent succeeded again after an incident people were told of
=================  ===============================================================

Only the kinds in ``[notify] on`` are told. Problems are told by incident: the
first problem told while none is open opens one, and it lasts until the agent
succeeds again (which is told as ``recovered``, once, at once). Within an
incident a kind already told is told again only once ``cooldown`` has passed
since it was; any other is told at once. So the first failure after a
recovery is told however soon it comes, and every ``recovered`` answers an
incident people heard of. ``slow`` is a notice, not a problem: it opens no
incident, and is told at most once per ``cooldown``.

A problem counts as told when at least one channel delivered it: a problem
nobody heard of is neither cooled down nor answered.

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
from agentops.notify.slow import describe
from agentops.store import Notices

if TYPE_CHECKING:
    from datetime import datetime

    from agentops._infra.log import EventLogger
    from agentops.model.outcome import Outcome
    from agentops.notify.slow import Slow
    from agentops.project.config import Notify
    from agentops.store import Store

__all__ = ["NOTICES", "Due", "NotifyPolicy", "Tell", "kinds_of"]

NOTICES = frozenset({"slow"})
"""Kinds that are no problem: told on their own, in no incident, never answered."""


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

    def after_run(self, outcome: Outcome, tell: Tell, *, slow: Slow | None = None) -> None:
        """Tell what a finished invocation needs a human for, that it recovered, or was slow.

        ``slow`` is the run, if it succeeded but took longer than it should.
        """
        kinds = kinds_of(outcome)
        if not kinds and not outcome.status.ok:
            return
        agent = outcome.agent
        notices = self._notices(agent)
        if outcome.status.ok:
            if notices.open:
                self._recovered(agent, outcome, notices=notices, tell=tell)
            if slow is not None:
                text = f"{agent}: slow: {describe(slow)}"
                self._tell(agent, "slow", text, outcome, notices=notices, tell=tell)
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

    def _recovered(self, agent: str, outcome: Outcome, *, notices: Notices, tell: Tell) -> None:
        if "recovered" in self.config.on:
            text = f"{agent}: recovered"
            self._tell(agent, "recovered", text, outcome, notices=notices, tell=tell)
        else:  # nobody waits to hear it: the incident ends untold
            self._keep(agent, notices, Notices(sent=notices.sent, open=[]))

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
        # Only a repeat waits for its cooldown: a kind told in the incident now
        # open, or a notice. The first problem of an incident is news, and
        # ``recovered`` answers an incident people were told of.
        repeat = kind in notices.open or kind in NOTICES
        last = notices.sent.get(kind)
        if repeat and last is not None and now - last < timedelta(seconds=self.config.cooldown):
            self.log.info("notify.cooled_down", kind=kind, last=iso(last))
            return
        if not tell(Due(agent, kind, text, outcome, now)):
            return
        # Telling that it recovered ends the incident; telling a problem opens it, or adds to it.
        if kind == "recovered":
            still_open = []
        elif kind in NOTICES:
            still_open = list(notices.open)
        else:
            still_open = sorted({*notices.open, kind})
        self._keep(agent, notices, Notices(sent={**notices.sent, kind: now}, open=still_open))

    def _keep(self, agent: str, notices: Notices, updated: Notices) -> None:
        try:
            self.store.set_notices(agent, updated)
        except Exception as exc:  # noqa: BLE001 - a notice not kept means, at worst, one more message
            self.log.warning("notify.notices_not_kept", error=str(exc))
        notices.sent, notices.open = updated.sent, updated.open
