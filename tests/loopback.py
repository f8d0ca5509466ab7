"""A loopback HTTP server for the suite's fakes: its threads start with it, it answers with a call.

A fake is its answer and what it records; the HTTP plumbing is here::

    def answer(request: LoopbackHandler) -> None:
        request.respond(200, request.body, content_type="text/plain")

    with LoopbackServer(answer) as server:
        ...  # a client calls server.url("/echo")

A run counts the threads that start while it runs as its agent's, left
running: they keep its lease, and the CLI ends its process rather than wait
for them. A fake server in the test's own process that started a thread per
request had that thread counted whenever it outlived its reply by a moment,
and an in-process ``agentops run`` then ended the test's worker
(``os._exit``). These threads start with the server, before any run, and
take the requests from a queue.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["LoopbackHandler", "LoopbackServer", "LoopbackService"]

THREADS = 16
"""Requests answered at once: more than any test keeps hanging together."""

STOP_WITHIN_S = 5.0
"""How long stopping waits for the server's threads (a bound on a hang, not a speed)."""


class LoopbackHandler(BaseHTTPRequestHandler):
    """One request, its body read, handed to its server's ``answer``; quiet on stderr."""

    server: LoopbackServer
    body: bytes
    """The request's body: as many bytes as its ``Content-Length`` says (none without one)."""

    def setup(self) -> None:
        """Speak HTTP/1.1 with keep-alive where the server says so."""
        if self.server.keep_alive:
            self.protocol_version = "HTTP/1.1"  # clients reuse connections, as with providers
            self.wbufsize = -1  # headers and body leave in one write: no Nagle wait between
        super().setup()

    def do_HEAD(self) -> None:
        """Answer a HEAD, if the server takes it."""
        self._answer()

    def do_GET(self) -> None:
        """Answer a GET, if the server takes it."""
        self._answer()

    def do_POST(self) -> None:
        """Answer a POST, if the server takes it."""
        self._answer()

    def _answer(self) -> None:
        if self.command not in self.server.methods:  # as the stdlib answers a method it lacks
            self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})")
            return
        # Read whole before answering: a reply left with unread bytes may reach the client
        # as a reset.
        self.body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.answer(self)

    def json(self) -> Any:
        """The body parsed as JSON (None when it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def respond(
        self,
        status: int,
        body: bytes = b"",
        *,
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Send ``status``, the headers, a ``Content-Length`` and ``body`` (none to a HEAD).

        A client that has gone (it gave up waiting) is not an error: nobody is
        left to answer, and the connection closes.
        """
        try:
            self.send_response(status)
            if content_type is not None:
                self.send_header("Content-Type", content_type)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def stopped_during(self, seconds: float) -> bool:
        """Wait ``seconds`` before answering; True, sooner, if the server stops meanwhile.

        A test that walks away from a slow answer does not wait it out: the
        connection then closes, with nobody waiting for an answer.
        """
        stopped = self.server.stopping.wait(seconds)
        if stopped:
            self.close_connection = True
        return stopped

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        """Quiet: pytest output is for failures."""


class LoopbackServer(HTTPServer):
    """An HTTP server on 127.0.0.1 (a free port), answering on threads started with it.

    ``answer`` is called with each request (a :class:`LoopbackHandler`) whose
    method is one of ``methods``; any other is answered 501, as the stdlib's
    server does. Serving starts with :meth:`start` (or ``with``) and ends with
    :meth:`stop`.
    """

    def __init__(
        self,
        answer: Callable[[LoopbackHandler], None],
        *,
        methods: Iterable[str] = ("GET", "POST"),
        keep_alive: bool = False,
        threads: int = THREADS,
    ) -> None:
        """Bind a free port of 127.0.0.1 now; ``keep_alive``: HTTP/1.1 connections stay open."""
        super().__init__(("127.0.0.1", 0), LoopbackHandler)
        self.answer = answer
        self.methods = frozenset(methods)
        self.keep_alive = keep_alive
        self.stopping = threading.Event()
        """Set as the server stops: a held answer lets go, so its thread ends."""
        self._requests: queue.Queue[tuple[socket.socket, Any] | None] = queue.Queue()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._answering = [
            threading.Thread(target=self._work, name=f"loopback-{n}", daemon=True)
            for n in range(threads)
        ]
        self._accepting = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="loopback-accept",
            daemon=True,
        )

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str = "") -> str:
        """The full URL of ``path`` on this server."""
        return self.base_url + path

    def start(self) -> None:
        """Start accepting requests, and every thread that answers them."""
        for thread in [*self._answering, self._accepting]:
            thread.start()

    def stop(self) -> None:
        """Let held answers go, stop accepting, end every connection and thread.

        Connecting is refused from then on; a second stop does nothing.
        """
        if self.stopping.is_set():
            return
        self.stopping.set()
        started = self._accepting.is_alive()
        if started:
            self.shutdown()
        self.server_close()
        with self._lock:
            for connection in self._open:  # idle keep-alive connections: let their threads go
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        if not started:
            return
        for _ in self._answering:
            self._requests.put(None)
        deadline = time.monotonic() + STOP_WITHIN_S
        for thread in [self._accepting, *self._answering]:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Self:
        """Start serving."""
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop serving and free the port."""
        self.stop()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Hand the request to a thread of the server's own."""
        self._requests.put((request, client_address))

    def _work(self) -> None:
        while (item := self._requests.get()) is not None:
            request, client_address = item
            with self._lock:
                self._open.add(request)
            try:
                self.finish_request(request, client_address)
            except OSError:
                pass  # the client went away
            except Exception:  # noqa: BLE001 - as socketserver does: said, and the server goes on
                self.handle_error(request, client_address)
            finally:
                with self._lock:
                    self._open.discard(request)
                self.shutdown_request(request)


class LoopbackService:
    """A fake on a :class:`LoopbackServer` (``_server``), serving in a ``with`` or until closed."""

    _server: LoopbackServer

    def __enter__(self) -> Self:
        """Start serving: every thread of the server starts here, before any run."""
        self._server.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop serving: :meth:`close`."""
        self.close()

    def close(self) -> None:
        """Let held answers go, stop serving and free the port (once closed: nothing)."""
        self._server.stop()
