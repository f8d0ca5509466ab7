"""classify() decides what is retried; the fingerprint decides what counts as the same failure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from agentops.errors import TransientError
from agentops.guards.failure import Failure, classify, parse_retry_after

URL = "https://api.example.com/v1/items/42"


def status_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    """The error raise_for_status() raises for a real response with ``status``."""
    request = httpx.Request("GET", URL)
    response = httpx.Response(status, headers=headers, request=request)
    with pytest.raises(httpx.HTTPStatusError) as caught:
        response.raise_for_status()
    return caught.value


def validation_error() -> ValidationError:
    """A real pydantic ValidationError."""

    class Item(BaseModel):
        count: int

    with pytest.raises(ValidationError) as caught:
        Item.model_validate({"count": "many"})
    return caught.value


def json_error() -> json.JSONDecodeError:
    """A real JSONDecodeError."""
    with pytest.raises(json.JSONDecodeError) as caught:
        json.loads("{not json")
    return caught.value


# classify: built-in and pydantic exceptions


@pytest.mark.parametrize(
    ("exc", "category", "transient"),
    [
        (TimeoutError("read timed out"), "timeout", True),
        (ConnectionError("connection refused"), "connection", True),
        (ConnectionResetError("reset by peer"), "connection", True),
        (PermissionError("cannot write /srv/out"), "permission", False),
        (json_error(), "bad_response", False),
        (validation_error(), "validation", False),
        (ValueError("bad value"), "error", False),
        (KeyError("missing"), "error", False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_classify_builtin_exceptions(exc, category, transient):
    """Each exception type falls in its category, with the documented transient flag."""
    failure = classify(exc)
    assert (failure.category, failure.transient) == (category, transient)
    assert failure.retry_after_s is None


def test_classify_message_names_the_exception_type():
    """The message starts with the exception's type name, then its text."""
    assert classify(TimeoutError("read timed out")).message == "TimeoutError: read timed out"


def test_classify_transient_error_keeps_retry_after():
    """The agent's own TransientError is transient, and its retry_after_s is kept."""
    failure = classify(TransientError("queue busy", retry_after_s=12.5))
    assert failure == Failure(
        "transient", "TransientError: queue busy", transient=True, retry_after_s=12.5
    )
    assert classify(TransientError("queue busy")).retry_after_s is None


# classify: errors from httpx


@pytest.mark.parametrize(
    ("exc", "category", "transient"),
    [
        (httpx.ReadTimeout("read timed out"), "timeout", True),
        (httpx.ConnectTimeout("connect timed out"), "timeout", True),
        (httpx.PoolTimeout("no connection free"), "timeout", True),
        (httpx.ConnectError("connection refused"), "connection", True),
        (httpx.ReadError("connection reset"), "connection", True),
        (httpx.RemoteProtocolError("server hung up"), "connection", True),
        (httpx.DecodingError("bad gzip"), "bad_response", False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_classify_httpx_transport_errors(exc, category, transient):
    """Timeouts and transport errors are transient; a body that does not decode is not."""
    failure = classify(exc)
    assert (failure.category, failure.transient) == (category, transient)


@pytest.mark.parametrize(
    ("status", "category", "transient"),
    [
        (429, "http_429", True),
        (500, "http_5xx", True),
        (502, "http_5xx", True),
        (503, "http_5xx", True),
        (400, "http_4xx", False),
        (401, "permission", False),
        (403, "permission", False),
        (404, "http_4xx", False),
        (422, "http_4xx", False),
    ],
)
def test_classify_http_status_errors(status, category, transient):
    """429 and 5xx are retried; 401 and 403 are permission errors; other 4xx are not retried."""
    failure = classify(status_error(status))
    assert (failure.category, failure.transient) == (category, transient)
    assert failure.retry_after_s is None
    assert str(status) in failure.message


def test_classify_429_honours_retry_after_in_seconds():
    """A 429 with Retry-After: 120 asks for a 120 s wait."""
    assert classify(status_error(429, {"Retry-After": "120"})).retry_after_s == 120


def test_classify_503_honours_retry_after_in_seconds():
    """A 503 with Retry-After is honoured too."""
    assert classify(status_error(503, {"Retry-After": "7"})).retry_after_s == 7


def test_classify_429_honours_retry_after_as_an_http_date():
    """A Retry-After HTTP date two minutes ahead asks for about two minutes."""
    when = datetime.now(UTC) + timedelta(minutes=2)
    failure = classify(status_error(429, {"Retry-After": format_datetime(when, usegmt=True)}))
    assert failure.retry_after_s is not None
    assert 110 <= failure.retry_after_s <= 120


def test_classify_429_with_a_garbage_retry_after_has_no_wait():
    """A Retry-After that is neither seconds nor a date is ignored."""
    failure = classify(status_error(429, {"Retry-After": "soon"}))
    assert failure.category == "http_429"
    assert failure.retry_after_s is None


def test_classify_429_with_a_non_ascii_digit_retry_after_has_no_wait():
    """A Retry-After byte 0xB2 (latin-1 '²', a Unicode digit) is garbage, not a crash."""
    request = httpx.Request("GET", URL)
    response = httpx.Response(429, headers=[(b"Retry-After", b"\xb2")], request=request)
    error = httpx.HTTPStatusError("429", request=request, response=response)
    assert classify(error).retry_after_s is None


def test_retry_after_on_a_4xx_is_not_a_reason_to_retry():
    """A 404 carrying Retry-After is still not transient."""
    failure = classify(status_error(404, {"Retry-After": "5"}))
    assert failure.transient is False
    assert failure.retry_after_s is None


# parse_retry_after

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("120", 120.0),
        (" 30 ", 30.0),
        ("Sun, 22 Nov 2026 12:02:00 GMT", 120.0),
        ("Sun, 22 Nov 2026 11:00:00 GMT", 0.0),  # in the past: go now
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("Sun, 22 Nov 2026 12:00:30 -0000", 30.0),  # no zone given: read as UTC
    ],
)
def test_parse_retry_after(value, seconds):
    """Delta-seconds are taken as they are; an HTTP date is counted from now, never negative."""
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "tomorrow at noon"])
def test_parse_retry_after_garbage_is_none(value):
    """Anything that is neither delta-seconds nor an HTTP date gives None."""
    assert parse_retry_after(value, now=NOW) is None


@given(st.integers(0, 10**9))
def test_parse_retry_after_any_delta_seconds(seconds):
    """Every non-negative integer is read back as that many seconds."""
    assert parse_retry_after(str(seconds), now=NOW) == seconds


@given(st.text(max_size=40))
@example("\u00b2")  # latin-1 0xB2, superscript two: str.isdigit() is True, float() refuses it
def test_parse_retry_after_never_raises(value):
    """Whatever a server sends, the answer is a wait >= 0 or None, never an exception."""
    result = parse_retry_after(value, now=NOW)
    assert result is None or result >= 0


# fingerprint


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("connection refused by 10.0.0.1:8080", "connection refused by 192.168.1.20:5432"),
        ("no item 12345 in feed", "no item 7 in feed"),
        ("took 3.25s, limit 3s", "took 12.5s, limit 10s"),
        (
            "job 6f1c9c1e-8e2b-4c4e-9a0e-3d2f1b7a9c10 failed",
            "job 0A1B2C3D-4E5F-6789-ABCD-EF0123456789 failed",
        ),
        ("<Client object at 0x7f3a2b1c9d80> closed", "<Client object at 0x10ab4e2f0> closed"),
        ("commit deadbeefcafe0123 not found", "commit 0123456789abcdef0 not found"),
        ("at 2026-11-22T03:10:00Z", "at 2027-01-05T23:59:59Z"),
        ("rate   limited\nagain", "Rate limited again"),
    ],
)
def test_fingerprint_ignores_numbers_ids_addresses_and_uuids(first, second):
    """Messages that differ only in their variable parts give the same fingerprint."""
    assert (
        Failure("error", first, transient=False).fingerprint
        == Failure("error", second, transient=False).fingerprint
    )


def test_fingerprint_differs_for_different_wording():
    """Different messages in the same category are different failures."""
    refused = Failure("connection", "connection refused", transient=True)
    reset = Failure("connection", "connection reset", transient=True)
    assert refused.fingerprint != reset.fingerprint


def test_fingerprint_differs_for_different_categories():
    """The same message in two categories is two different failures."""
    as_timeout = Failure("timeout", "upstream gave up", transient=True)
    as_5xx = Failure("http_5xx", "upstream gave up", transient=True)
    assert as_timeout.fingerprint != as_5xx.fingerprint
    assert as_timeout.fingerprint.startswith("timeout:")


def test_fingerprint_of_classified_failures_ignores_the_port():
    """Two ConnectionErrors differing in their port classify to the same fingerprint."""
    first = classify(ConnectionError("refused by localhost:8080"))
    second = classify(ConnectionError("refused by localhost:9090"))
    assert first.fingerprint == second.fingerprint
    assert first.fingerprint != classify(TimeoutError("refused by localhost:8080")).fingerprint


def test_fingerprint_of_http_errors_depends_on_the_status():
    """A 500 and a 503 from the same URL are both http_5xx but not the same failure."""
    assert classify(status_error(500)).fingerprint != classify(status_error(503)).fingerprint
    assert classify(status_error(500)).fingerprint == classify(status_error(500)).fingerprint


@given(st.integers(0, 10**12), st.integers(0, 10**12))
def test_fingerprint_is_the_same_whatever_the_number(a, b):
    """Any two ids in an otherwise identical message give the same fingerprint."""
    first = Failure("error", f"order {a} failed after {b % 60} retries", transient=False)
    second = Failure("error", f"order {b} failed after {a % 60} retries", transient=False)
    assert first.fingerprint == second.fingerprint


@given(st.uuids(), st.uuids())
def test_fingerprint_is_the_same_whatever_the_uuid(a, b):
    """Any two uuids in an otherwise identical message give the same fingerprint."""
    first = Failure("error", f"run {a} lost", transient=False)
    second = Failure("error", f"run {str(b).upper()} lost", transient=False)
    assert first.fingerprint == second.fingerprint


@pytest.mark.parametrize(
    ("make", "category", "transient"),
    [
        (
            "import urllib.error\nraise urllib.error.URLError(ConnectionRefusedError(1, 'no'))",
            "connection",
            True,
        ),
        (
            "import urllib.error\nraise urllib.error.HTTPError('http://x', 503, 'busy', {}, None)",
            "http_5xx",
            True,
        ),
        (
            "import urllib.error\nraise urllib.error.HTTPError('http://x', 408, 'slow', {}, None)",
            "timeout",
            True,
        ),
        (
            "import urllib.error\nraise urllib.error.HTTPError('http://x', 404, 'gone', {}, None)",
            "http_4xx",
            False,
        ),
        ("import httpx\nhttpx.get('example.com/no-scheme')", "error", False),
    ],
    ids=["urllib refused", "urllib 503", "urllib 408", "urllib 404", "httpx no scheme"],
)
def test_more_failures_are_classified(make, category, transient):
    """urllib's errors and a URL without a scheme are classified like their httpx kin."""
    try:
        exec(make, {})  # noqa: S102 - fixed test snippets
    except Exception as exc:  # noqa: BLE001 - the exception is what is tested
        failure = classify(exc)
    assert (failure.category, failure.transient) == (category, transient)


def test_the_same_api_failing_on_different_paths_is_one_failure():
    """A fingerprint ignores the URL and ids, so a failing API trips the breaker."""
    import httpx  # noqa: PLC0415

    def failure(path):
        request = httpx.Request("GET", f"http://127.0.0.1:8731/items/{path}")
        response = httpx.Response(503, request=request)
        try:
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            return classify(exc)
        raise AssertionError

    assert failure("rec_8c1f2a").fingerprint == failure("abc-def").fingerprint
