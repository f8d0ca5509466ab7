"""Redaction of secrets from everything agentops writes: log lines and state files.

Three kinds of secret are replaced by ``[REDACTED]``:

- the values of environment variables named like ``*_KEY``, ``*_TOKEN``,
  ``*_SECRET`` or ``*PASSWORD*`` (values shorter than :data:`MIN_SECRET_LENGTH`
  are left alone: redacting ``"1"`` everywhere would garble every line);
- strings shaped like well-known keys and credentials: ``sk-…`` API keys,
  GitHub, GitLab, Slack, AWS and Google tokens, JWTs, ``Bearer …`` and
  ``Basic …`` credentials, passwords in URLs, secret query parameters, PEM
  private keys;
- in JSON, the string value of any key named like a secret (``password``,
  ``api_key``, ``access_token``, ``Authorization``, ``cookie``, …).

Redaction works on serialized JSON text, so it costs a few regex scans of the
bytes about to be written, whatever the shape of the data.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["MIN_SECRET_LENGTH", "REDACTED", "Redactor", "is_secret_env_name"]

REDACTED = "[REDACTED]"
"""What a secret is replaced with."""

MIN_SECRET_LENGTH = 8
"""Environment values shorter than this are not treated as secrets."""

_SECRET_ENV_NAME = re.compile(r"(?:^|_)(?:KEY|TOKEN|SECRET|APIKEY)$|PASSWORD|PASSWD", re.IGNORECASE)

# (pattern, replacement). Patterns begin with literal text where they can,
# which lets the regex engine skip quickly through long JSON documents.
_SHAPES: list[tuple[str, str]] = [
    (r"sk-[A-Za-z0-9_-]{20,}", REDACTED),
    (r"gh[pousr]_[A-Za-z0-9]{30,}", REDACTED),
    (r"github_pat_[A-Za-z0-9_]{30,}", REDACTED),
    (r"glpat-[A-Za-z0-9_-]{20,}", REDACTED),
    (r"xox[abposr]-[A-Za-z0-9-]{10,}", REDACTED),
    (r"(?:AKIA|ASIA)[0-9A-Z]{16}", REDACTED),
    (r"AIza[0-9A-Za-z_-]{35}", REDACTED),
    (r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", REDACTED),
    (r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", REDACTED),
    # Keep the scheme, the user name and the parameter name: they help debugging.
    (r"(?P<scheme>(?i:bearer|basic))\s+[A-Za-z0-9._~+/=-]{8,}", rf"\g<scheme> {REDACTED}"),
    (r"(?P<user>://[^/\s:@\"'<>]*):[^@\s/\"'<>]+@", rf"\g<user>:{REDACTED}@"),
    (
        (
            r"(?P<param>[?&](?i:api[_-]?key|apikey|key|token|access_token|refresh_token|secret|"
            r"client_secret|password|passwd|sig|signature|auth))=[^&#\s\"'<>]+"
        ),
        rf"\g<param>={REDACTED}",
    ),
]

_SENSITIVE_NAME = (
    r"[^\"\\]*?(?i:password|passwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
    r"private[_-]?key|authorization|cookie|credentials?)"
)
_JSON_SECRET_VALUE = re.compile(rf"(\"{_SENSITIVE_NAME}\"\s*:\s*)\"(?:[^\"\\]|\\.)*\"", re.DOTALL)


def is_secret_env_name(name: str) -> bool:
    """Whether an environment variable's value is treated as a secret."""
    return bool(_SECRET_ENV_NAME.search(name))


class Redactor:
    """Replaces secrets in text and JSON with :data:`REDACTED`.

    ``environ`` is read once, when the redactor is made: the values of its
    secret-named variables are redacted wherever they appear.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        """Learn the secret values in ``environ`` (none if omitted)."""
        self._rules: list[tuple[re.Pattern[str], str]] = []
        values = sorted(
            {
                variant
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
        if values:
            self._rules.append((re.compile("|".join(map(re.escape, values))), REDACTED))
        self._rules += [(re.compile(pattern, re.DOTALL), repl) for pattern, repl in _SHAPES]

    def text(self, text: str) -> str:
        """``text`` with every secret value and secret-shaped string replaced."""
        for pattern, replacement in self._rules:
            text = pattern.sub(replacement, text)
        return text

    def json(self, text: str) -> str:
        """Serialized JSON with secrets replaced; the result is still valid JSON."""
        return _JSON_SECRET_VALUE.sub(rf'\1"{REDACTED}"', self.text(text))
