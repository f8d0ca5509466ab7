"""A loopback HTTP server whose threads all start with it, for the suite's fake servers.

A run counts the threads that start while it runs as its agent's, left
running: they keep its lease, and the CLI ends its process rather than wait
for them. A fake server in the test's own process that started a thread per
request had that thread counted whenever it outlived its reply by a moment,
and an in-process ``agentops run`` then ended the test's worker
(``os._exit``). These threads start with the server, before any run, and
take the requests from a queue.
"""

from __future__ import annotations

import queue
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import socket

__all__ = ["LoopbackServer"]

THREADS = 16
"""Requests answered at once: more than any test keeps hanging together."""


class LoopbackServer(HTTPServer):
    """An ``HTTPServer`` answering each request on one of its threads, started with it."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        """Bind ``address`` and start the threads that will answer with ``handler``."""
        super().__init__(address, handler)
        self._requests: queue.Queue[tuple[socket.socket, tuple[str, int]] | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._answer, name=f"loopback-{n}", daemon=True)
            for n in range(THREADS)
        ]
        for thread in self._threads:
            thread.start()

    def process_request(self, request, client_address) -> None:
        """Hand the request to a thread of the server's own."""
        self._requests.put((request, client_address))

    def _answer(self) -> None:
        while (item := self._requests.get()) is not None:
            request, client_address = item
            try:
                self.finish_request(request, client_address)
            except Exception:  # noqa: BLE001 - as socketserver does: said, and the server goes on
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    def server_close(self) -> None:
        """Close the socket; the threads end once they are done with what they hold."""
        super().server_close()
        for _ in self._threads:
            self._requests.put(None)
