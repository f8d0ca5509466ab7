"""What kind of failure an exception is: the one place that decides what is retried.

===================  =========  ==================================================
category             transient  raised by
===================  =========  ==================================================
``timeout``          yes        httpx timeouts, ``TimeoutError``, a 408 response
``connection``       yes        httpx transport errors, ``ConnectionError`` (urllib's too)
``http_429``         yes        a 429 response (``Retry-After`` honoured)
``http_5xx``         yes        a 5xx response (``Retry-After`` honoured)
``transient``        yes        :class:`agentops.errors.TransientError`
``http_4xx``         no         any other 4xx response
``permission``       no         401, 403, ``PermissionError``
``bad_response``     no         a body that does not decode (``json.JSONDecodeError``)
``validation``       no         pydantic ``ValidationError``
``llm_unavailable``  no         every model of ``ctx.llm`` failed: retrying the run
                                would send every earlier prompt again
``llm``              no         another :class:`~agentops.errors.LLMError`
``error``            no         anything else, such as a URL without ``http://``
===================  =========  ==================================================

The fingerprint (category plus the message with URLs and every word holding
a digit blanked: ids, ports, hashes, sizes) is what the circuit breaker
compares between runs. Responses come from httpx's ``raise_for_status()`` or
urllib's ``HTTPError``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import urllib.error
from datetime import UTC, datetime
from typing import NamedTuple

from pydantic import ValidationError

from agentops.errors import LLMError, LLMUnavailable, TransientError

__all__ = ["Failure", "classify", "parse_retry_after"]

_VARIABLE_PARTS = re.compile(
    r"[a-z][a-z0-9+.-]*://[^\s'\"<>]+"  # URLs: a failing API is one failure whatever the path
    r"|[\w.-]*\d[\w.-]*"  # any word with a digit: ids, hashes, addresses, times, sizes
    r"|\b[0-9a-f]{6,}\b",  # hex ids without digits
    re.IGNORECASE,
)


class Failure(NamedTuple):
    """An exception, classified."""

    category: str
    message: str
    transient: bool
    retry_after_s: float | None = None

    @property
    def fingerprint(self) -> str:
        """Equal for "the same failure again", whatever the numbers in the message."""
        normalised = _VARIABLE_PARTS.sub("#", " ".join(self.message.lower().split()))
        digest = hashlib.sha256(normalised.encode()).hexdigest()[:12]
        return f"{self.category}:{digest}"


# (exception type, category, transient), first match wins.
_RULES: tuple[tuple[type[BaseException], str, bool], ...] = (
    (TimeoutError, "timeout", True),
    (ConnectionError, "connection", True),
    (PermissionError, "permission", False),
    (ValidationError, "validation", False),
    (LLMUnavailable, "llm_unavailable", False),
    (LLMError, "llm", False),
    (json.JSONDecodeError, "bad_response", False),
)


def classify(exc: BaseException) -> Failure:
    """Classify ``exc`` (the agent's own exception, not agentops' wrapper)."""
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, TransientError):
        return Failure("transient", message, transient=True, retry_after_s=exc.retry_after_s)
    httpx = sys.modules.get("httpx")  # not imported means no httpx error can exist
    rules = _RULES
    if httpx is not None:
        if isinstance(exc, httpx.HTTPStatusError):
            headers = exc.response.headers
            return _from_status(exc.response.status_code, headers.get("Retry-After"), message)
        rules = (
            (httpx.UnsupportedProtocol, "error", False),  # a URL without http://: a bug
            (httpx.TimeoutException, "timeout", True),
            (httpx.DecodingError, "bad_response", False),
            (httpx.TransportError, "connection", True),
            *rules,
        )
    if isinstance(exc, urllib.error.HTTPError):
        return _from_status(
            exc.code, exc.headers.get("Retry-After") if exc.headers else None, message
        )
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, Exception):
        return classify(exc.reason)._replace(message=message)  # urllib wraps the socket error
    for kind, category, transient in rules:
        if isinstance(exc, kind):
            return Failure(category, message, transient=transient)
    return Failure("error", message, transient=False)


def _from_status(status: int, retry_after: str | None, message: str) -> Failure:
    if status in (408, 429) or status >= 500:  # noqa: PLR2004 - HTTP semantics
        category = "http_429" if status == 429 else "http_5xx" if status >= 500 else "timeout"  # noqa: PLR2004
        return Failure(
            category, message, transient=True, retry_after_s=parse_retry_after(retry_after)
        )
    category = "permission" if status in (401, 403) else "http_4xx"
    return Failure(category, message, transient=False)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is true, float("²") fails
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    import email.utils  # noqa: PLC0415 - rarely needed, not worth every run's start-up

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
