"""A checks service on loopback that speaks the pinging API of Healthchecks, as documented.

Written from https://healthchecks.io/docs/http_api/ (and its source's
``hc/api/views.py``), not from agentops: what it accepts and refuses is the
protocol's, so a client that passes here pings a real Healthchecks.

- ``/ping/<uuid>`` a success, ``/ping/<uuid>/start``, ``/fail``, ``/log``, or
  ``/<exit-status>`` (0-255: 0 a success, any other a failure; over 255 is
  ``400 invalid url format``); HEAD, GET and POST alike.
- ``/ping/<ping-key>/<slug>`` the same by slug; an unknown slug is ``404``
  unless the query says ``create=1``, which creates the check (``201 Created``).
- ``rid`` in the query must be a UUID in its canonical form, or the ping is
  refused (``400 invalid uuid format``); it pairs a start with its end, as
  the service measures a run's duration.
- The body of a ping is kept up to :data:`PING_BODY_LIMIT` bytes, and every
  answer says so in a ``Ping-Body-Limit`` header.
- An unknown check is ``404 not found``.

It can also hang (never answer until it is closed) or be shut down.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from loopback import LoopbackServer, LoopbackService

if TYPE_CHECKING:
    from loopback import LoopbackHandler

__all__ = ["PING_BODY_LIMIT", "Healthchecks", "Ping"]

PING_BODY_LIMIT = 10_000
"""What a self-hosted Healthchecks keeps of a ping's body by default."""

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ACTIONS = {"start", "fail", "log"}
_HANGS_FOR_S = 300.0
_HIGHEST_EXIT_STATUS = 255


@dataclass(frozen=True)
class Ping:
    """One ping a check received."""

    kind: str
    """``start``, ``success``, ``fail`` or ``log``."""
    exitstatus: int | None
    rid: str | None
    body: bytes
    """As kept: at most :data:`PING_BODY_LIMIT` bytes."""
    method: str
    query: dict[str, list[str]]


@dataclass
class _Check:
    pings: list[Ping] = field(default_factory=list)


class Healthchecks(LoopbackService):
    """The service: its checks, and every request it answered (or refused)."""

    def __init__(self) -> None:
        """Listen on a free port of 127.0.0.1 and serve, until closed."""
        self.hang = False
        self.requests: list[tuple[str, str, int]] = []
        """Every request: method, path and query as sent, and the status answered."""
        self._checks: dict[str, _Check] = {}
        self._lock = threading.Lock()
        self._server = LoopbackServer(self._serve, methods=("HEAD", "GET", "POST"))
        self._server.start()

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self._server.base_url

    def new_check(self) -> str:
        """Create a check; its ping URL (``.../ping/<uuid>``)."""
        code = str(uuid.uuid4())
        with self._lock:
            self._checks[code] = _Check()
        return f"{self.base}/ping/{code}"

    def pings(self, url: str) -> list[Ping]:
        """What the check of ``url`` (its ping URL, or ``.../ping/<key>/<slug>``) received."""
        key = urlsplit(url).path.removeprefix("/ping/")
        with self._lock:
            check = self._checks.get(key)
            return [] if check is None else list(check.pings)

    def status(self, url: str) -> str:
        """The check's status, as the service shows it: new, started, up or down."""
        last = next((p for p in reversed(self.pings(url)) if p.kind != "log"), None)
        if last is None:
            return "new"
        return {"start": "started", "success": "up", "fail": "down"}[last.kind]

    def runs(self, url: str) -> list[tuple[str, str | None]]:
        """Each end of a run and the rid pairing it with its start (None: no start)."""
        pings = self.pings(url)
        started = {p.rid for p in pings if p.kind == "start" and p.rid is not None}
        return [
            (p.kind, p.rid if p.rid in started else None)
            for p in pings
            if p.kind in ("success", "fail")
        ]

    def kill(self) -> None:
        """Die: connecting is refused from now on (a hanging request lets go)."""
        self.close()

    def _serve(self, request: LoopbackHandler) -> None:
        if self.hang:
            request.stopped_during(_HANGS_FOR_S)
        parts = urlsplit(request.path)
        query = parse_qs(parts.query)
        status, text = self._ping(request.command, parts.path, query, request.body)
        with self._lock:
            self.requests.append((request.command, request.path, status))
        request.respond(
            status,
            text.encode(),
            content_type="text/plain; charset=utf-8",
            headers=[("Ping-Body-Limit", str(PING_BODY_LIMIT))],
        )

    def _ping(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, str]:
        try:
            key, by_uuid, action, exitstatus = _route(path)
        except _Refused as refused:
            return refused.status, refused.text
        rid = query.get("rid", [None])[-1]
        if rid is not None and not _UUID.match(rid):
            return 400, "invalid uuid format"
        created = False
        with self._lock:
            check = self._checks.get(key)
            if check is None and not by_uuid and query.get("create") == ["1"]:
                check = self._checks[key] = _Check()
                created = True
            if check is None:
                return 404, "not found"
            check.pings.append(Ping(action, exitstatus, rid, body[:PING_BODY_LIMIT], method, query))
        return (201, "Created") if created else (200, "OK")


class _Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


def _route(path: str) -> tuple[str, bool, str, int | None]:
    """The check's key, whether it is a UUID, the action and the exit status a path asks for."""
    segments = path.removeprefix("/ping/").split("/")
    if not path.startswith("/ping/") or not 1 <= len(segments) <= 3:
        raise _Refused(404, "not found")
    action, exitstatus = "success", None
    by_uuid = _UUID.match(segments[0]) is not None
    if len(segments) == (2 if by_uuid else 3):
        last = segments.pop()
        if last in _ACTIONS:
            action = last
        elif last.isdigit():
            exitstatus = int(last)
            if exitstatus > _HIGHEST_EXIT_STATUS:
                raise _Refused(400, "invalid url format")
            action = "success" if exitstatus == 0 else "fail"
        else:
            raise _Refused(404, "not found")
    if len(segments) != (1 if by_uuid else 2):
        raise _Refused(404, "not found")
    return "/".join(segments), by_uuid, action, exitstatus
