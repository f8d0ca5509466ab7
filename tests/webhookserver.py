"""A webhook on loopback that records every request, and can fail, hang or die.

The server is a :class:`loopback.LoopbackServer` on 127.0.0.1 that records every
request (method, path, headers, body) before it answers. It can answer an
error, hang until it is closed, or be shut down so that connecting is refused.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback import LoopbackServer

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


class Webhook:
    """A loopback HTTP server that records every request, and can fail, hang or die."""

    def __init__(self) -> None:
        """Listen on a free port of 127.0.0.1 and serve in a thread."""
        self.status = 200
        self.hang = False
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hook._serve(self)

            def do_POST(self) -> None:
                hook._serve(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
                """Quiet: pytest output is for failures."""

        self._server = LoopbackServer(("127.0.0.1", 0), Handler)
        self._server.block_on_close = False  # a hanging request must not hold up the end
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._alive = True

    def url(self, path: str = "/hook") -> str:
        """The URL of ``path`` on this server."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{path}"

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
        """Stop listening: connecting is refused from now on."""
        if self._alive:
            self._alive = False
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)

    def close(self) -> None:
        """Let any hanging request go, and stop."""
        self._release.set()
        self.kill()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        headers = {name.lower(): value for name, value in handler.headers.items()}
        with self._lock:
            self._received.append(Received(handler.command, handler.path, headers, body))
        if self.hang:
            self._release.wait(LONGER_THAN_ANY_CLIENT_WAITS_S)
        try:
            handler.send_response(self.status)
            handler.send_header("Content-Type", "text/plain")
            handler.send_header("Content-Length", "2")
            handler.end_headers()
            handler.wfile.write(b"ok")
        except OSError:
            pass  # the client gave up waiting: nobody to answer
