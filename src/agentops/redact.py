"""Redaction of secrets from everything agentops writes: log lines and state files.

Three kinds of secret are replaced by ``[REDACTED]``:

- the values of environment variables named like ``*_KEY``, ``*_TOKEN``,
  ``*_SECRET`` or ``*PASSWORD*`` (values shorter than :data:`MIN_SECRET_LENGTH`
  are left alone: redacting ``"1"`` everywhere would garble every line);
- strings shaped like well-known keys and credentials: ``sk-…`` API keys,
  GitHub, GitLab, Slack, AWS and Google tokens, JWTs, ``Bearer …`` and
  ``Basic …`` credentials, passwords in URLs, secret query parameters, PEM
  private keys;
- the string value of any JSON key named like a secret (``password``,
  ``api_key``, ``access_token``, ``Authorization``, ``cookie``, …).

Redaction works on serialized JSON, whatever the shape of the data: each log
line as it is written, and each value an agent hands over as it enters the
state file (``ctx.state``, error messages). An agent's data can be megabytes,
so every rule first checks, at memory-search speed, for a literal its matches
must contain, and runs its regex only when that literal is there. Matches
become spans replaced in one pass; a span never ends a JSON string or splits
an escape, so the output is still valid JSON.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, TypeVar

import pydantic_core

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

T = TypeVar("T")

__all__ = ["MIN_SECRET_LENGTH", "REDACTED", "Redactor", "is_secret_env_name"]

REDACTED = "[REDACTED]"
"""What a secret is replaced with."""

MIN_SECRET_LENGTH = 8
"""Environment values shorter than this are not treated as secrets."""

_SECRET_ENV_NAME = re.compile(r"(?:^|_)(?:KEY|TOKEN|SECRET|APIKEY)$|PASSWORD|PASSWD", re.IGNORECASE)

_QUERY_NAMES = (
    rb"(?:api[_-]?key|apikey|key|token|access_token|refresh_token|secret|client_secret|"
    rb"password|passwd|sig|signature|auth)"
)
_VALUE_CHARS = rb"[^&#\s\"'<>\\]+"

# (literals one of which every match contains, pattern). The span redacted is
# the group named "secret" if the pattern has one, else the whole match.
_SHAPES: list[tuple[tuple[bytes, ...], bytes]] = [
    ((b"sk-",), rb"sk-[A-Za-z0-9_-]{20,}"),
    ((b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"), rb"gh[pousr]_[A-Za-z0-9]{30,}"),
    ((b"github_pat_",), rb"github_pat_[A-Za-z0-9_]{30,}"),
    ((b"glpat-",), rb"glpat-[A-Za-z0-9_-]{20,}"),
    ((b"xox",), rb"xox[abposr]-[A-Za-z0-9-]{10,}"),
    ((b"AKIA", b"ASIA"), rb"(?:AKIA|ASIA)[0-9A-Z]{16}"),
    ((b"AIza",), rb"AIza[0-9A-Za-z_-]{35}"),
    ((b"eyJ",), rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    (
        (b"PRIVATE KEY-----",),
        rb"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",
    ),
    ((b"://",), rb"://[^/\s:@\"'<>\\]*:(?P<secret>[^@\s/\"'<>\\]+)@"),
]
# The same, matched against an ASCII-lowercased copy: the spans are identical.
_SHAPES_ANY_CASE: list[tuple[tuple[bytes, ...], bytes]] = [
    ((b"bearer",), rb"bearer\s+(?P<secret>[a-z0-9._~+/=-]{8,})"),
    ((b"basic",), rb"basic\s+(?P<secret>[a-z0-9._~+/=-]{8,})"),
    ((b"?",), rb"\?" + _QUERY_NAMES + rb"=(?P<secret>" + _VALUE_CHARS + rb")"),
    ((b"&",), rb"&" + _QUERY_NAMES + rb"=(?P<secret>" + _VALUE_CHARS + rb")"),
]
# JSON keys ending in one of these (any case) have their string value redacted:
# needle searched for -> the key endings it stands for.
_SECRET_KEYS: dict[bytes, tuple[bytes, ...]] = {
    b'key"': tuple(
        prefix + sep + b"key"
        for prefix in (b"api", b"access", b"private", b"secret")
        for sep in (b"", b"_", b"-")
    ),
    b'password"': (b"password",),
    b'passwd"': (b"passwd",),
    b'secret"': (b"secret",),
    b'token"': (b"token",),
    b'authorization"': (b"authorization",),
    b'cookie"': (b"cookie",),
    b'credential"': (b"credential",),
    b'credentials"': (b"credentials",),
}
_STRING_VALUE = re.compile(rb'"\s*:\s*"((?:[^"\\]|\\.)*)"', re.DOTALL)


def is_secret_env_name(name: str) -> bool:
    """Whether an environment variable's value is treated as a secret."""
    return bool(_SECRET_ENV_NAME.search(name))


class Redactor:
    """Replaces secrets in serialized JSON with :data:`REDACTED`.

    ``environ`` is read once, when the redactor is made: the values of its
    secret-named variables are redacted wherever they appear.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        """Learn the secret values in ``environ`` (none if omitted)."""
        self._values = sorted(
            {
                variant.encode()
                for name, value in (environ or {}).items()
                if is_secret_env_name(name) and len(value) >= MIN_SECRET_LENGTH
                # As written in text, and as escaped inside JSON strings.
                for variant in (
                    value,
                    json.dumps(value)[1:-1],
                    json.dumps(value, ensure_ascii=False)[1:-1],
                )
            },
            key=len,
            reverse=True,
        )
        self._shapes = [(lits, re.compile(p, re.DOTALL)) for lits, p in _SHAPES]
        self._shapes_any_case = [(lits, re.compile(p)) for lits, p in _SHAPES_ANY_CASE]

    def json(self, text: str) -> str:
        """Serialized JSON with its secrets replaced; still valid JSON."""
        return self.json_bytes(text.encode()).decode()

    def value(self, value: T) -> T:
        """A JSON value (a dict, a message) with its secrets replaced."""
        redacted: T = pydantic_core.from_json(self.json_bytes(pydantic_core.to_json(value)))
        return redacted

    def json_bytes(self, data: bytes) -> bytes:
        """UTF-8 serialized JSON with its secrets replaced; still valid JSON."""
        spans = sorted(self._spans(data))
        if not spans:
            return data
        out, position = [], 0
        for match_start, match_end in spans:
            # Overlapping matches are redacted as their union.
            start = max(_escape_start(data, match_start), position)
            end = _escape_end(data, match_end)
            if end <= start:
                continue
            out += [data[position:start], REDACTED.encode()]
            position = end
        out.append(data[position:])
        return b"".join(out)

    def _spans(self, data: bytes) -> Iterator[tuple[int, int]]:
        for value in self._values:
            start = data.find(value)
            while start != -1:
                yield start, start + len(value)
                start = data.find(value, start + len(value))
        yield from _matches(self._shapes, data)
        lowered = data.lower()  # ASCII only, so offsets do not move
        yield from _matches(self._shapes_any_case, lowered)
        for needle, endings in _SECRET_KEYS.items():
            start = lowered.find(needle)
            while start != -1:
                key_end = start + len(needle) - 1
                found = _STRING_VALUE.match(data, key_end)
                if (
                    found
                    and found.end(1) > found.start(1)
                    and lowered.endswith(endings, 0, key_end)
                ):
                    yield found.span(1)
                start = lowered.find(needle, key_end)


def _matches(
    rules: list[tuple[tuple[bytes, ...], re.Pattern[bytes]]], data: bytes
) -> Iterator[tuple[int, int]]:
    for literals, pattern in rules:
        if any(literal in data for literal in literals):
            for match in pattern.finditer(data):
                yield match.span("secret" if "secret" in pattern.groupindex else 0)


def _escaping(data: bytes, position: int) -> bool:
    # Whether the byte at ``position`` is escaped: an odd run of backslashes before it.
    run = 0
    while position - run > 0 and data[position - run - 1] == ord("\\"):
        run += 1
    return run % 2 == 1


def _escape_start(data: bytes, start: int) -> int:
    # A match that begins on an escaped byte (the "n" of "\n") takes the backslash too.
    return start - 1 if _escaping(data, start) else start


def _escape_end(data: bytes, end: int) -> int:
    # A match that ends on a backslash takes the byte it escapes too.
    return end + 1 if end < len(data) and _escaping(data, end) else end
