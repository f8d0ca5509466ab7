"""Redaction of secrets from everything agentops writes: log lines, state files, stderr.

Three kinds of secret are replaced by ``[REDACTED]``:

- the values of environment variables named like ``*_KEY``, ``*_TOKEN``,
  ``*_SECRET`` or ``*PASSWORD*`` (values shorter than :data:`MIN_SECRET_LENGTH`
  are left alone: redacting ``"1"`` everywhere would garble every line);
- strings shaped like well-known keys and credentials: ``sk-…`` API keys,
  GitHub, GitLab, Slack, AWS and Google tokens, JWTs, ``Bearer …`` and
  ``Basic …`` credentials, passwords in URLs, secret query parameters, PEM
  private keys, and secret-named keys in JSON text carried inside a string;
- the string value of any key named like a secret (``password``,
  ``api_key``, ``access_token``, ``Authorization``, ``cookie``, …).

Redaction works on values, not on serialized text: strings are rewritten one
by one, so a replacement can never break the JSON written afterwards or touch
a number. An agent's data can be megabytes, so the whole document is first
checked, at memory-search speed, for the literals a match would contain; the
value-by-value walk runs only when one is there.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pydantic_core

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["MIN_SECRET_LENGTH", "REDACTED", "Redactor", "is_secret_env_name", "is_secret_key"]

REDACTED = "[REDACTED]"
"""What a secret is replaced with."""

MIN_SECRET_LENGTH = 8
"""Environment values shorter than this are not treated as secrets."""

_SECRET_ENV_NAME = re.compile(r"(?:^|_)(?:KEY|TOKEN|SECRET|APIKEY)$|PASSWORD|PASSWD", re.IGNORECASE)

# Keys whose names end like this (any case) hold secrets.
_SECRET_KEY_ENDINGS = (
    *(p + s + "key" for p in ("api", "access", "private", "secret") for s in ("", "_", "-")),
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "credential",
    "credentials",
)
_KEY_NAMES = "|".join(_SECRET_KEY_ENDINGS).replace("-", r"\-")
_QUERY_NAMES = (
    r"api[_-]?key|apikey|key|token|access_token|refresh_token|id_token|secret|client_secret|"
    r"password|passwd|sig|signature|auth"
)
_CREDENTIAL_CHARS = r"[A-Za-z0-9._~+/=-]"

# (literals, the lowercased text must hold one of them, pattern). The span
# replaced is the group named "secret" when there is one, else the match.
_SHAPES: list[tuple[tuple[str, ...], str]] = [
    (("sk-",), r"sk-[A-Za-z0-9_-]{20,}"),
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), r"gh[pousr]_[A-Za-z0-9]{30,}"),
    (("github_pat_",), r"github_pat_[A-Za-z0-9_]{30,}"),
    (("glpat-",), r"glpat-[A-Za-z0-9_-]{20,}"),
    (("xox",), r"xox[abposr]-[A-Za-z0-9-]{10,}"),
    (("akia", "asia"), r"(?:AKIA|ASIA)[0-9A-Z]{16}"),
    (("aiza",), r"AIza[0-9A-Za-z_-]{35}"),
    (("eyj",), r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    (
        ("private key-----",),
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
    ),
    # The password of user:password@host, up to the last @ before the path.
    (("://",), r"://[^/\s:@\"'<>]*:(?P<secret>[^\s/\"'<>]+)@"),
    # ?api_key=… in URLs, and form bodies such as "grant_type=x&client_secret=…".
    (
        ("key=", "token=", "secret=", "password=", "passwd=", "sig=", "signature=", "auth="),
        rf"(?:^|(?<=[?&\s]))(?i:{_QUERY_NAMES})=(?P<secret>[^&#\s\"'<>]+)",
    ),
    # JSON carried inside a string, such as a logged response body.
    (
        tuple(f'{ending}"' for ending in _SECRET_KEY_ENDINGS),
        rf"(?i:{_KEY_NAMES})\"\s*:\s*\"(?P<secret>(?:[^\"\\]|\\.)+)\"",
    ),
]
_CREDENTIAL = re.compile(rf"(?i:\b(?:bearer|basic))\s+(?P<secret>{_CREDENTIAL_CHARS}{{8,}})")


def is_secret_env_name(name: str) -> bool:
    """Whether an environment variable's value is treated as a secret."""
    return bool(_SECRET_ENV_NAME.search(name))


def is_secret_key(name: str) -> bool:
    """Whether a key (a JSON key, a header, a log field) names a secret."""
    return name.lower().endswith(_SECRET_KEY_ENDINGS)


class Redactor:
    """Replaces secrets in JSON values with :data:`REDACTED`.

    ``environ`` is read once, when the redactor is made: the values of its
    secret-named variables are redacted wherever they appear.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        """Learn the secret values in ``environ`` (none if omitted)."""
        self._values = sorted(
            {
                value
                for name, value in (environ or {}).items()
                if is_secret_env_name(name) and len(value) >= MIN_SECRET_LENGTH
            },
            key=len,
            reverse=True,
        )
        # How the values look inside serialized JSON, where the prefilter looks.
        self._needles = {
            variant
            for value in self._values
            for variant in (
                value,
                json.dumps(value)[1:-1],
                json.dumps(value, ensure_ascii=False)[1:-1],
            )
        }
        self._shapes = [(literals, re.compile(p, re.DOTALL)) for literals, p in _SHAPES]

    def value(self, value: Any, *, fallback: Callable[[Any], Any] | None = None) -> Any:
        """A JSON copy of ``value`` with every secret replaced.

        Raises ``pydantic_core.PydanticSerializationError`` if ``value`` is not
        JSON and no ``fallback`` turns the rest into JSON.
        """
        data = pydantic_core.to_json(value, fallback=fallback)
        copy = pydantic_core.from_json(data)
        return self._walk(copy, None) if self._suspect(data.decode()) else copy

    def _suspect(self, text: str) -> bool:
        # Cheap: substring searches over the whole serialized document, no regex.
        if any(needle in text for needle in self._needles):
            return True
        lowered = text.lower()
        return (
            "bearer" in lowered
            or "basic" in lowered
            or any(literal in lowered for literals, _ in _SHAPES for literal in literals)
            or any(ending in lowered for ending in _SECRET_KEY_ENDINGS)
        )

    def _walk(self, value: Any, key: str | None) -> Any:
        if isinstance(value, str):
            if key is not None and value and is_secret_key(key):
                return REDACTED
            return self._text(value)
        if isinstance(value, dict):
            return {k: self._walk(v, k) for k, v in value.items()}
        if isinstance(value, list):  # a list under a secret key is secret too
            return [self._walk(item, key) for item in value]
        return value

    def _text(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, REDACTED)
        lowered = text.lower()
        for literals, pattern in self._shapes:
            if any(literal in lowered for literal in literals):
                text = pattern.sub(_redact_match, text)
        if "bearer" in lowered or "basic" in lowered:
            text = _CREDENTIAL.sub(_redact_credential, text)
        return text


def _redact_match(match: re.Match[str]) -> str:
    if "secret" not in match.re.groupindex:
        return REDACTED
    start, end = match.span("secret")
    whole = match.group(0)
    return whole[: start - match.start()] + REDACTED + whole[end - match.start() :]


def _redact_credential(match: re.Match[str]) -> str:
    # "Basic authentication failed" is prose; "Basic dXNlcjpwYXNz" is not:
    # a credential has a digit, a symbol, or capitals past its first letter.
    token = match.group("secret")
    looks_random = any(c.isdigit() or c in "._~+/=-" for c in token) or any(
        c.isupper() for c in token[1:]
    )
    return _redact_match(match) if looks_random else match.group(0)
