"""A webhook on loopback that records every request, and can fail, hang or die.

The server is a :class:`loopback.LoopbackServer` on 127.0.0.1 that records every
request (method, path, headers, body) before it answers. It can answer an
error, hang until it is closed, or be shut down so that connecting is refused.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopback import LoopbackServer, LoopbackService

if TYPE_CHECKING:
    from loopback import LoopbackHandler

__all__ = ["LONGER_THAN_ANY_CLIENT_WAITS_S", "Received", "Webhook"]

LONGER_THAN_ANY_CLIENT_WAITS_S = 300.0
"""How long a hanging webhook holds a request (it is let go when the test ends)."""


@dataclass(frozen=True, slots=True)
class Received:
    """One request the webhook got."""

    method: str
    path: str
    """The path and query, as sent."""
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes

    def json(self) -> Any:
        """The body, parsed as JSON."""
        return json.loads(self.body)


class Webhook(LoopbackService):
    """A loopback HTTP server that records every request, and can fail, hang or die."""

    def __init__(self) -> None:
        """Listen on a free port of 127.0.0.1 and serve, until closed."""
        self.status = 200
        self.hang = False
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._server = LoopbackServer(self._serve)
        self._server.start()

    def url(self, path: str = "/hook") -> str:
        """The URL of ``path`` on this server."""
        return self._server.url(path)

    @property
    def received(self) -> list[Received]:
        """Every request so far, in arrival order (recorded before it is answered)."""
        with self._lock:
            return list(self._received)

    def messages(self) -> list[dict[str, Any]]:
        """The JSON bodies of the POSTs so far."""
        return [r.json() for r in self.received if r.method == "POST"]

    def kinds(self) -> list[str]:
        """The ``kind`` of each notification so far."""
        return [m["kind"] for m in self.messages()]

    def kill(self) -> None:
        """Die: connecting is refused from now on (a hanging request lets go)."""
        self.close()

    def _serve(self, request: LoopbackHandler) -> None:
        headers = {name.lower(): value for name, value in request.headers.items()}
        with self._lock:
            self._received.append(Received(request.command, request.path, headers, request.body))
        if self.hang:
            request.stopped_during(LONGER_THAN_ANY_CLIENT_WAITS_S)
        request.respond(self.status, b"ok", content_type="text/plain")
