"""What kind of failure an exception is: the one place that decides what is retried.

=================  =========  ==================================================
category           transient  raised by
=================  =========  ==================================================
``timeout``        yes        httpx timeouts, ``TimeoutError``
``connection``     yes        httpx transport errors, ``ConnectionError``
``http_429``       yes        a 429 response (``Retry-After`` honoured)
``http_5xx``       yes        a 5xx response (``Retry-After`` honoured)
``transient``      yes        :class:`agentops.errors.TransientError`
``http_4xx``       no         any other 4xx response
``permission``     no         401, 403, ``PermissionError``
``bad_response``   no         a body that does not decode (``json.JSONDecodeError``)
``validation``     no         pydantic ``ValidationError``
``error``          no         anything else
=================  =========  ==================================================

The fingerprint (category plus the message with numbers, ids and addresses
blanked) is what the circuit breaker compares between runs.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple

from pydantic import ValidationError

from agentops.errors import TransientError

if TYPE_CHECKING:
    import httpx

__all__ = ["Failure", "classify", "parse_retry_after"]

_VARIABLE_PARTS = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # uuids
    r"|0x[0-9a-f]+|\b[0-9a-f]{12,}\b"  # addresses, hashes
    r"|\d+(?:\.\d+)?",  # numbers: ports, ids, times, sizes
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
            return _classify_status(exc.response, message)
        rules = (
            (httpx.TimeoutException, "timeout", True),
            (httpx.DecodingError, "bad_response", False),
            (httpx.TransportError, "connection", True),
            *rules,
        )
    for kind, category, transient in rules:
        if isinstance(exc, kind):
            return Failure(category, message, transient=transient)
    return Failure("error", message, transient=False)


def _classify_status(response: httpx.Response, message: str) -> Failure:
    status = response.status_code
    if status == 429 or status >= 500:  # noqa: PLR2004 - HTTP semantics
        category = "http_429" if status == 429 else "http_5xx"  # noqa: PLR2004
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return Failure(category, message, transient=True, retry_after_s=retry_after)
    category = "permission" if status in (401, 403) else "http_4xx"
    return Failure(category, message, transient=False)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is true, float("²") fails
        return float(value)
    import email.utils  # noqa: PLC0415 - rarely needed, not worth every run's start-up

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
