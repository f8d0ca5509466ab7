"""Telling people: webhooks for what needs a human, and for when it is over.

``[notify]`` in agentops.toml lists webhooks and the kinds to send:

=================  ===============================================================
``failure``        a run failed, timed out, crashed, or could not start
``circuit_open``   a run opened the circuit breaker: runs are skipped for a while
``escalated``      a result's confidence was too low: a person must look
``budget``         a budget stopped a run (or one spend is larger than a cap)
``stale``          ``agentops health`` found no success since the schedule's tick
``recovered``      an agent people were told about succeeded again (once)
=================  ===============================================================

Each message is one JSON POST that Slack (``text``), Discord (``content``) and
ntfy (which shows the body; template it with ``?tpl=1&m={{.text}}``) accept.
At most one message per agent and kind per ``cooldown``; ``recovered`` answers
the problems told about, once, however soon after the last one. A webhook that fails
(or is slow: a short timeout) is logged as ``notify.failed`` and changes
nothing else: the run's outcome is what it was.

What was sent, and what is still open, is kept per agent by the store
(``state/<name>.notices.json``), beside the state and without its lock: the
watchdog sends ``stale`` while a run may hold the lock.
"""

from __future__ import annotations

import re
import socket
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from agentops._infra.timestamps import iso
from agentops.model.status import RunStatus
from agentops.store import Notices

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    import httpx

    from agentops._infra.log import EventLogger
    from agentops._infra.redact import Redactor
    from agentops.model.outcome import Outcome
    from agentops.project.config import Notify
    from agentops.store import Store

__all__ = ["TIMEOUT_S", "Notifier", "kinds_of"]

TIMEOUT_S = 5.0
"""The longest a webhook may take: a notification never holds up a run for long."""

_MAX_TEXT = 1900  # Discord refuses content longer than 2000 characters
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


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


class Notifier:
    """Sends one agent's notifications, minding the cooldown and what is still open."""

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
        """Notify through the webhooks of ``config``, keeping notices in ``store``."""
        self.config = config
        self.store = store
        self.clock = clock
        self.log = log
        self.redactor = redactor
        self.transport = transport

    def after_run(self, outcome: Outcome) -> None:
        """Tell what a finished invocation needs a human for, or that it recovered."""
        kinds = kinds_of(outcome)
        if not kinds and not outcome.status.ok:
            return
        notices = self._notices(outcome.agent)
        if outcome.status.ok:
            if notices.open:
                self._send(
                    outcome.agent, "recovered", f"{outcome.agent}: recovered", notices, outcome
                )
            return
        for kind in kinds:
            self._send(outcome.agent, kind, outcome.message, notices, outcome)

    def stale(self, agent: str, why: str) -> None:
        """Tell that an agent has not succeeded since its schedule's tick (from the watchdog)."""
        self._send(agent, "stale", f"{agent}: stale: {why}", self._notices(agent), None)

    def _notices(self, agent: str) -> Notices:
        try:
            found = self.store.notices(agent)
        except Exception as exc:  # noqa: BLE001 - unreadable notices must not stop a run
            self.log.warning("notify.notices_unreadable", error=str(exc))
            found = None
        return found or Notices()

    def _send(
        self, agent: str, kind: str, text: str, notices: Notices, outcome: Outcome | None
    ) -> None:
        if kind not in self.config.on or not self.config.webhooks:
            return
        now = self.clock()
        # ``recovered`` answers a problem people were told about, and each of those
        # is cooled down already: holding it back would leave them thinking an agent
        # that works again is still broken.
        last = None if kind == "recovered" else notices.sent.get(kind)
        if last is not None and now - last < timedelta(seconds=self.config.cooldown):
            self.log.info("notify.cooled_down", kind=kind, last=iso(last))
            return
        payload = self._payload(agent, kind, text, outcome, now)
        delivered = [url for url in self.config.webhooks if self._post(url, payload, kind)]
        if not delivered:
            return
        # Telling that it recovered closes every problem; telling a problem opens it.
        still_open = [] if kind == "recovered" else sorted({*notices.open, kind})
        updated = Notices(sent={**notices.sent, kind: now}, open=still_open)
        try:
            self.store.set_notices(agent, updated)
        except Exception as exc:  # noqa: BLE001 - a notice not kept means, at worst, one more message
            self.log.warning("notify.notices_not_kept", error=str(exc))
        notices.sent, notices.open = updated.sent, updated.open

    def _payload(
        self, agent: str, kind: str, text: str, outcome: Outcome | None, now: datetime
    ) -> dict[str, Any]:
        line = self.redactor.value(f"agentops [{kind}] {text}")[:_MAX_TEXT]
        return {
            "text": line,
            "content": line,
            "agent": agent,
            "kind": kind,
            "status": None if outcome is None else str(outcome.status),
            "exit_code": None if outcome is None else outcome.exit_code,
            "run_id": None if outcome is None else outcome.run_id,
            "host": socket.gethostname(),
            "at": iso(now),
        }

    def _post(self, url: str, payload: dict[str, Any], kind: str) -> bool:
        import httpx  # noqa: PLC0415 - only a run that notifies pays for it

        try:
            with httpx.Client(transport=self.transport, timeout=TIMEOUT_S) as client:
                headers = {"Title": _title(payload["text"])}
                response = client.post(url, json=payload, headers=headers)
                response.raise_for_status()
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            # A webhook URL is often its own secret (Slack's are): only its host is logged.
            self.log.warning(
                "notify.failed", kind=kind, webhook=host_of(url), error=type(exc).__name__
            )
            return False
        self.log.info("notify.sent", kind=kind, webhook=host_of(url), status=response.status_code)
        return True


def _title(text: str) -> str:
    # ntfy takes its title from a header: one ASCII line. A header holding a
    # control character, or ending in a space, is refused, and the message with it.
    return _CONTROL.sub(" ", text[:200]).encode("ascii", "replace").decode().strip()


def host_of(url: str) -> str:
    """The host a URL names, to be said without its path or query (which may hold a token)."""
    from urllib.parse import urlsplit  # noqa: PLC0415

    try:
        return urlsplit(url).hostname or "?"
    except ValueError:  # "http://[::1": the URL is what failed
        return "?"
