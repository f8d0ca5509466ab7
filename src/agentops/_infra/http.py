"""``ctx.http``: an httpx client whose every call is timed and logged.

Each request logs ``http.request`` with method, URL, status, duration_ms and
bytes once its response is closed, so streamed downloads stay streamed and
are counted as they are read. A request that got no response (or whose body
broke off) logs ``http.error`` with why, and its ``http.request`` all the
same, its ``status`` null (or the status that came) and its ``error``: every
request sent has its line. Log lines are redacted like every other line, so
secrets in URLs never reach the log, and headers are never logged.

httpx is imported only when an agent first touches ``ctx.http``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx

from agentops import __version__

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from agentops._infra.log import EventLogger

__all__ = ["DEFAULT_TIMEOUT_S", "LoggingTransport", "make_http_client"]

DEFAULT_TIMEOUT_S = 30.0
"""Seconds an HTTP call may wait to connect, or between bytes, before it times out."""


class LoggingTransport(httpx.BaseTransport):
    """Wraps a transport, logging each request with its timing and size."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        log: EventLogger,
        *,
        before_request: Callable[[str], None] | None = None,
    ) -> None:
        """Send requests through ``inner`` and log them to ``log``.

        ``before_request(host)`` is called before each request, redirects
        included: the run's permitted hosts and its request limit.
        """
        self._inner = inner
        self._log = log
        self._before_request = before_request

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request, read the response and log both."""
        if self._before_request is not None:
            self._before_request(request.url.host)
        started = time.perf_counter()
        try:
            response = self._inner.handle_request(request)
        except httpx.TransportError as exc:
            self._failed(request, exc, started, status=None, size=0)
            raise

        def finished(size: int) -> None:
            self._log.info(
                "http.request",
                method=request.method,
                url=str(request.url),
                status=response.status_code,
                duration_ms=_ms_since(started),
                bytes=size,
            )

        if response.is_closed:  # the body came whole (a mock transport): nothing to stream
            finished(len(response.content))
            return response
        response.stream = _CountingStream(
            response.stream,  # type: ignore[arg-type]
            on_close=finished,
            on_error=lambda exc, size: self._failed(
                request, exc, started, status=response.status_code, size=size
            ),
        )
        return response

    def _failed(
        self,
        request: httpx.Request,
        exc: Exception,
        started: float,
        *,
        status: int | None,
        size: int,
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"
        duration_ms = _ms_since(started)
        url = str(request.url)
        self._log.warning(
            "http.error", method=request.method, url=url, error=error, duration_ms=duration_ms
        )
        self._log.info(
            "http.request",
            method=request.method,
            url=url,
            status=status,
            duration_ms=duration_ms,
            bytes=size,
            error=error,
        )

    def close(self) -> None:
        """Close the wrapped transport."""
        self._inner.close()


class _CountingStream(httpx.SyncByteStream):
    """A response body that counts its bytes and reports when it is closed."""

    def __init__(
        self,
        inner: httpx.SyncByteStream,
        *,
        on_close: Callable[[int], None],
        on_error: Callable[[Exception, int], None],
    ) -> None:
        self._inner = inner
        self._on_close = on_close
        self._on_error = on_error
        self._size = 0
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._inner:
                self._size += len(chunk)
                yield chunk
        except httpx.TransportError as exc:
            self._closed = True  # reported once, with the error and the bytes that came
            self._on_error(exc, self._size)
            raise

    def close(self) -> None:
        self._inner.close()
        if not self._closed:
            self._closed = True
            self._on_close(self._size)


def make_http_client(
    log: EventLogger,
    *,
    transport: httpx.BaseTransport | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    before_request: Callable[[str], None] | None = None,
) -> httpx.Client:
    """An httpx client logging through ``log``; ``transport`` lets tests inject faults."""
    return httpx.Client(
        transport=LoggingTransport(
            transport or httpx.HTTPTransport(), log, before_request=before_request
        ),
        timeout=timeout_s,
        headers={"User-Agent": f"agentops/{__version__}"},
        follow_redirects=True,
    )


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
