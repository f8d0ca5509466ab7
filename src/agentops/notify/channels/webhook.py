"""The webhook channel: one JSON POST that Slack, Discord and ntfy all read.

The body carries the line as ``text`` (Slack) and ``content`` (Discord), and
the facts beside it (agent, kind, status, exit code, run id, host, time); ntfy
shows the body (template it with ``?tpl=1&m={{.text}}``) and takes its title
from a ``Title`` header. A webhook that fails, or is slow (:data:`TIMEOUT_S`),
is logged as ``notify.failed``; one that answers as ``notify.sent``. Neither
names more of the URL than its host: a webhook URL is often its own secret
(Slack's are).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from agentops._infra.timestamps import iso
from agentops.notify.channels._url import host_of

if TYPE_CHECKING:
    import httpx

    from agentops._infra.log import EventLogger
    from agentops.notify.channels.base import ChannelSetup, Notification

__all__ = ["TIMEOUT_S", "WebhookChannel", "webhook_channels"]

TIMEOUT_S = 5.0
"""The longest a webhook may take: a notification never holds up a run for long."""

_MAX_TEXT = 1900  # Discord refuses content longer than 2000 characters
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def webhook_channels(setup: ChannelSetup) -> list[WebhookChannel]:
    """One channel for each URL of ``[notify] webhooks``, in their order."""
    return [
        WebhookChannel(url, log=setup.log, transport=setup.transport)
        for url in setup.config.webhooks
    ]


class WebhookChannel:
    """Posts each notification to one webhook URL."""

    def __init__(
        self, url: str, *, log: EventLogger, transport: httpx.BaseTransport | None = None
    ) -> None:
        """Post to ``url``, logging to ``log``, through ``transport`` (httpx's own if None)."""
        self.url = url
        self.log = log
        self.transport = transport

    def __repr__(self) -> str:
        """Names the host only: the rest of the URL may be a token."""
        return f"WebhookChannel({host_of(self.url)!r})"

    def deliver(self, notification: Notification) -> bool:
        """POST the notification as JSON; whether the webhook answered with a success."""
        import httpx  # noqa: PLC0415 - only a run that notifies pays for it

        payload = payload_of(notification)
        kind, webhook = notification.kind, host_of(self.url)
        try:
            with httpx.Client(transport=self.transport, timeout=TIMEOUT_S) as client:
                headers = {"Title": _title(payload["text"])}
                response = client.post(self.url, json=payload, headers=headers)
                response.raise_for_status()
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            self.log.warning("notify.failed", kind=kind, webhook=webhook, error=type(exc).__name__)
            return False
        self.log.info("notify.sent", kind=kind, webhook=webhook, status=response.status_code)
        return True


def payload_of(notification: Notification) -> dict[str, Any]:
    """The JSON body posted for ``notification``."""
    line = f"agentops [{notification.kind}] {notification.text}"[:_MAX_TEXT]
    status = notification.status
    return {
        "text": line,
        "content": line,
        "agent": notification.agent,
        "kind": notification.kind,
        "status": None if status is None else str(status),
        "exit_code": notification.exit_code,
        "run_id": notification.run_id,
        "host": notification.host,
        "at": iso(notification.at),
    }


def _title(text: str) -> str:
    # ntfy takes its title from a header: one ASCII line. A header holding a
    # control character, or ending in a space, is refused, and the message with it.
    return _CONTROL.sub(" ", text[:200]).encode("ascii", "replace").decode().strip()
