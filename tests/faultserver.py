"""A fault-injecting HTTP server on loopback, for tests of retries, timeouts and the breaker.

Each path plays a script of replies, one per request, the last one repeated
forever::

    with FaultServer() as server:
        server.script("/feed", too_many(retry_after=1), error(500), ok({"items": []}))
        ...  # an agent calls server.url("/feed")
        assert len(server.hits("/feed")) == 3

Every request is recorded (method, path, arrival time on this process's
monotonic clock) before its reply is sent, so a test can measure the waits a
client took between attempts, and can tell that no request arrived at all.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, Self

from loopback import LoopbackServer, LoopbackService

if TYPE_CHECKING:
    from types import TracebackType

    from loopback import LoopbackHandler

__all__ = [
    "FaultServer",
    "Reply",
    "Request",
    "SilentServer",
    "error",
    "garbage",
    "http_date",
    "ok",
    "slow",
    "too_many",
]


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted response: status, headers, body, and a delay before any byte is sent."""

    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Request:
    """A request the server received: when (``time.monotonic()``), what and where."""

    at: float
    method: str
    path: str
    query: str = ""
    """What followed the ``?``, as it came over the wire (percent-encoded)."""


def ok(data: Any = None) -> Reply:
    """200 with ``data`` as JSON (``{"ok": true}`` by default)."""
    return Reply(body=json.dumps({"ok": True} if data is None else data).encode())


def error(status: int, *, retry_after: str | float | None = None) -> Reply:
    """An error status with a small JSON body, and a ``Retry-After`` header if given."""
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    if retry_after is not None:
        headers += (("Retry-After", str(retry_after)),)
    return Reply(status=status, body=json.dumps({"error": status}).encode(), headers=headers)


def too_many(*, retry_after: str | float | None = None) -> Reply:
    """429 Too Many Requests, with a ``Retry-After`` (seconds or an HTTP date) if given."""
    return error(429, retry_after=retry_after)


def slow(seconds: float, then: Reply | None = None) -> Reply:
    """``then`` (200 ok by default), sent only after ``seconds``: longer than a client waits."""
    reply = then or ok()
    return Reply(status=reply.status, body=reply.body, headers=reply.headers, delay_s=seconds)


def garbage() -> Reply:
    """200 that claims to be JSON but is not: ``response.json()`` fails on it."""
    return Reply(body=b"<html>502 upstream confused</html>")


def http_date(seconds_from_now: float) -> str:
    """An RFC 7231 HTTP date, as a ``Retry-After`` header may carry."""
    return formatdate(time.time() + seconds_from_now, usegmt=True)


@dataclass
class _Scripts:
    replies: dict[str, list[Reply]] = field(default_factory=dict)
    served: dict[str, int] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self, method: str, path: str, query: str = "") -> Reply:
        with self.lock:
            self.requests.append(
                Request(at=time.monotonic(), method=method, path=path, query=query)
            )
            script = self.replies.get(path)
            if not script:
                return error(404)
            index = self.served.get(path, 0)
            self.served[path] = index + 1
            return script[min(index, len(script) - 1)]


class FaultServer(LoopbackService):
    """A loopback server on 127.0.0.1, a free port, serving scripted replies in a thread."""

    def __init__(self) -> None:
        """Bind the port now; serve once entered (``with FaultServer() as server``)."""
        self._scripts = _Scripts()
        self._server = LoopbackServer(self._answer)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self._server.base_url

    def url(self, path: str) -> str:
        """The full URL of ``path``."""
        return self._server.url(path)

    def script(self, path: str, *replies: Reply) -> str:
        """Answer requests to ``path`` with ``replies`` in turn, the last one forever; its URL."""
        if not replies:
            raise ValueError("a script needs at least one reply")
        with self._scripts.lock:
            self._scripts.replies[path] = list(replies)
            self._scripts.served[path] = 0
        return self.url(path)

    @property
    def requests(self) -> list[Request]:
        """Every request received so far, in arrival order."""
        with self._scripts.lock:
            return list(self._scripts.requests)

    def hits(self, path: str) -> list[float]:
        """Arrival times of the requests to ``path``."""
        return [r.at for r in self.requests if r.path == path]

    def gaps(self, path: str) -> list[float]:
        """Seconds between consecutive requests to ``path``."""
        times = self.hits(path)
        return [later - earlier for earlier, later in itertools.pairwise(times)]

    def _answer(self, request: LoopbackHandler) -> None:
        path, _, query = request.path.partition("?")
        reply = self._scripts.next_reply(request.command, path, query)
        if reply.delay_s and request.stopped_during(reply.delay_s):
            return
        request.respond(reply.status, reply.body, headers=reply.headers)


class SilentServer:
    """A socket on loopback that takes connections and never answers: a server hung for good.

    The kernel completes each connection into the listening socket's backlog;
    nothing reads or replies, and no thread serves it, so an in-process run
    that calls it waits until its own timeout, and leaves no thread behind.
    """

    def __init__(self) -> None:
        """Listen on a free port now."""
        self._socket = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._accepted: list[socket.socket] = []

    def url(self, path: str) -> str:
        """The full URL of ``path``."""
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}{path}"

    def connections(self) -> int:
        """How many connections clients made so far (each is accepted and kept here)."""
        self._socket.settimeout(0.0)  # accept what is pending, wait for nothing
        while True:
            try:
                connection, _ = self._socket.accept()
            except BlockingIOError:
                return len(self._accepted)
            self._accepted.append(connection)

    def __enter__(self) -> Self:
        """Use it in a ``with`` block: the socket and its connections close at its end."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close every connection and the listening socket."""
        for connection in self._accepted:
            connection.close()
        self._socket.close()
