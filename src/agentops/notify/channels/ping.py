"""The ping channel: an agent's own check, in the pinging protocol of Healthchecks.

``[notify] ping = "URL"`` in agent.toml names a check (on healthchecks.io, a
Healthchecks of one's own, or another service that speaks its pinging API).
It hears every run that starts or ends, not the policy's cooled-down alerts:

===========  ===============================================================
``start``    ``GET URL/start?rid=RID``, when the run starts its work
``success``  ``GET URL?rid=RID``, when it ends with exit 0
``failure``  ``POST URL/<exit code>?rid=RID`` (``URL/fail`` when there is no
             exit code), with the last lines of the run's log as the body
===========  ===============================================================

``RID`` is a UUID made from the agent and the run id (:func:`rid_of`): the
protocol's run ids must be UUIDs, agentops's are not. It is the same for a
run's start and its end, so the service pairs them and measures the run. A
query the URL has (``?create=1``, for a slug URL) is kept. The body is cut to
its last :data:`MAX_BODY_BYTES`, at a line: the service keeps the first 10 kB
(self-hosted, by default) or 100 kB (healthchecks.io) of a ping.

A ping that fails, or takes longer than :data:`TIMEOUT_S`, is logged as
``notify.failed`` and changes nothing else; one that is answered, as
``notify.sent``. Neither names more of the URL than its host: it holds the
check's token.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from agentops.notify.channels._url import host_of

if TYPE_CHECKING:
    import httpx

    from agentops._infra.log import EventLogger
    from agentops.notify.channels.base import ChannelSetup, Notification

__all__ = [
    "MAX_BODY_BYTES",
    "TIMEOUT_S",
    "PingChannel",
    "ping_channels",
    "rid_of",
    "secret_forms",
    "signal_url",
]

TIMEOUT_S = 5.0
"""The longest a ping may take: a run's start is never held up by more."""

MAX_BODY_BYTES = 10_000
"""The most a ping's body holds: what a self-hosted Healthchecks keeps by default."""

_RIDS = uuid.UUID("c00b4909-21e5-4bc6-a77e-052b90345fc6")
"""The namespace of the run ids a ping carries (any fixed UUID would do)."""

_HIGHEST_EXIT_STATUS = 255


def ping_channels(setup: ChannelSetup) -> list[PingChannel]:
    """The agent's check, if its agent.toml names one."""
    if setup.ping is None:
        return []
    return [PingChannel(setup.ping, log=setup.log, transport=setup.transport)]


def rid_of(agent: str, run_id: str) -> str:
    """The UUID a run's pings carry as ``rid``, the same for its start and its end."""
    return str(uuid.uuid5(_RIDS, f"{agent}/{run_id}"))


def secret_forms(url: str) -> list[str]:
    """What of ``url`` is a secret wherever it is written: the URL, and it up to its path.

    Every URL a ping is sent to begins with the second (what follows is a
    signal and a query), so a line that quotes one (httpx logging its
    requests, in an agent that turned logging on) is redacted too.
    """
    from urllib.parse import urlsplit, urlunsplit  # noqa: PLC0415

    try:
        parts = urlsplit(url)
    except ValueError:  # a URL that cannot be split is never sent to
        return [url]
    return [url, urlunsplit(parts._replace(path=parts.path.rstrip("/"), query="", fragment=""))]


def signal_url(url: str, signal: str, *, rid: str | None = None) -> str:
    """``url`` with ``/signal`` after its path (none for a success) and ``rid`` in its query.

    Raises ``ValueError`` for a URL that cannot be split (``http://[::1``).
    """
    from urllib.parse import urlsplit, urlunsplit  # noqa: PLC0415

    parts = urlsplit(url)
    path = f"{parts.path.rstrip('/')}/{signal}" if signal else parts.path
    query = "&".join(part for part in (parts.query, f"rid={rid}" if rid else "") if part)
    return urlunsplit(parts._replace(path=path, query=query))


class PingChannel:
    """Pings one check: each run's start, and its success or failure."""

    def __init__(
        self, url: str, *, log: EventLogger, transport: httpx.BaseTransport | None = None
    ) -> None:
        """Ping ``url``, logging to ``log``, through ``transport`` (httpx's own if None)."""
        self.url = url
        self.log = log
        self.transport = transport

    def __repr__(self) -> str:
        """Names the host only: the rest of the URL holds the check's token."""
        return f"PingChannel({host_of(self.url)!r})"

    def deliver(self, notification: Notification) -> bool:
        """Send the ping ``notification`` stands for; whether the check answered with a success.

        A notification that is no run's start or end (an alert) is not sent.
        """
        signal = _signal(notification)
        if signal is None:
            return False
        import httpx  # noqa: PLC0415 - only a run that pings pays for it

        kind, ping, run_id = notification.kind, host_of(self.url), notification.run_id
        body = _body(notification.lines) if kind == "failure" else b""
        try:
            rid = None if run_id is None else rid_of(notification.agent, run_id)
            url = signal_url(self.url, signal, rid=rid)
            with httpx.Client(transport=self.transport, timeout=TIMEOUT_S) as client:
                if body:
                    headers = {"Content-Type": "text/plain; charset=utf-8"}
                    response = client.post(url, content=body, headers=headers)
                else:
                    response = client.get(url)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            self.log.warning("notify.failed", kind=kind, ping=ping, error=type(exc).__name__)
            return False
        if response.is_error:  # a mistyped URL is a 404: the ping went nowhere
            error = f"HTTP {response.status_code}"
            self.log.warning("notify.failed", kind=kind, ping=ping, error=error)
            return False
        self.log.info("notify.sent", kind=kind, ping=ping, status=response.status_code)
        return True


def _signal(notification: Notification) -> str | None:
    # What follows the URL's path: nothing for a success, the exit status for a failure.
    if notification.kind == "start":
        return "start"
    if notification.kind == "success":
        return ""
    if notification.kind != "failure":
        return None
    code = notification.exit_code
    # 0 is a success to the service, and it refuses a status over 255.
    return str(code) if code is not None and 0 < code <= _HIGHEST_EXIT_STATUS else "fail"


def _body(lines: tuple[str, ...]) -> bytes:
    # The end of a log says most: what is cut is its beginning, at a line.
    data = "\n".join(lines).encode()
    if len(data) <= MAX_BODY_BYTES:
        return data
    tail = data[-MAX_BODY_BYTES:]
    newline = tail.find(b"\n")
    if newline != -1:
        return tail[newline + 1 :]
    return tail.decode(errors="ignore").encode()  # one long line: cut, but still UTF-8
