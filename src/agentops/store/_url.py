"""Store URLs said without their passwords: what a store is called in messages and logs.

A URL naming a database may hold a password, in its user info or as a
``password=`` parameter, spelled many ways (percent-encoded, unencoded ``/``,
``@``, ``?`` or ``#`` inside). :func:`safe_url` removes them all, so a store
can be named anywhere; :func:`url_passwords` lists them, to scrub a driver's
error that quotes one. Kept apart from the backends so that naming a store
imports no backend.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from agentops._infra.redact import MIN_SECRET_LENGTH, REDACTED

__all__ = ["safe_url", "url_passwords"]

_SCHEME = r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)"
_USER_INFOS = (
    # libpq's reading: the user info ends at the authority's last @ (? and # are
    # the password's then) ...
    re.compile(_SCHEME + r"(?P<info>[^\s/]*)@"),
    # ... and a password holding an unencoded / reaches past the authority.
    re.compile(_SCHEME + r"(?P<info>[^\s?#]*)@"),
)
_PARAMETER = re.compile(r"(?P<name>(?<![\w%])[\w%]+\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'|[^&\s]*)")
"""``name=value`` in a URL's query or a key=value connection string."""
_PASSWORD_NAMES = frozenset({"password", "sslpassword"})
"""libpq's parameters holding a password (as libpq does, names percent-decoded)."""


def safe_url(url: str) -> str:
    """``url`` (or a message holding one) without its passwords, to be said anywhere."""
    for user_info in _USER_INFOS:
        url = user_info.sub(lambda m: m["scheme"] + m["info"].split(":", 1)[0] + "@", url)
    return _PARAMETER.sub(
        lambda m: m["name"] + REDACTED if _is_password(m["name"]) else m[0],
        url,
    )


def _is_password(name: str) -> bool:
    return unquote(name.rstrip(" =\t")).lower() in _PASSWORD_NAMES


def url_passwords(url: str) -> list[str]:
    """The passwords ``url`` holds, decoded too, and the pieces a parser may quote alone.

    libpq reads an unencoded ``/`` or ``:`` in a password as the start of the
    host's path or port, and quotes that piece in its error.
    """
    found = {m["info"].partition(":")[2] for pattern in _USER_INFOS for m in pattern.finditer(url)}
    found |= {m["value"].strip("'") for m in _PARAMETER.finditer(url) if _is_password(m["name"])}
    found |= {unquote(password) for password in found}
    found |= {piece for password in found for piece in re.split(r"[/:@?#&]", password)}
    return sorted((s for s in found if len(s) >= MIN_SECRET_LENGTH), key=len, reverse=True)
