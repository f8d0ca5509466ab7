"""Store locations said without their passwords: what a store is called in messages and logs.

A PostgreSQL store is named by a URL (``postgresql://user:pw@host/db?...``)
or by a libpq keyword string (``host=db dbname=agents password=...``), and
either may hold a password: in a URL's user info, or as a ``password=`` or
``sslpassword=`` parameter. Written by hand, it often holds what the syntax
reserves: an unencoded ``@``, ``/``, ``?``, ``#`` or ``%`` in a URL, a space
in a keyword string. libpq then reads the location otherwise than its writer
meant, and its errors quote the pieces it read as a host, a port or a
parameter.

So a password is read here as generously as any parser might: in a URL's
user info, from its first ``:`` to the location's last ``@``; in a
parameter, from ``password=`` to the next parameter. :func:`safe_url` names
a location without those spans, :func:`url_passwords` lists them, and
:func:`scrub` removes any piece of them (:data:`FRAGMENT` characters or
more) that a driver's error quotes. :func:`keyword_pairs` reads a keyword
string as libpq does, so a location can be known for one without importing
a driver. Kept apart from the backends, so that naming a store imports none.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

from agentops._infra.redact import REDACTED

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "FRAGMENT",
    "hide_quoted",
    "is_keyword_string",
    "keyword_pairs",
    "misread",
    "safe_url",
    "scrub",
    "url_passwords",
]

FRAGMENT = 4
"""The shortest piece of a password :func:`scrub` removes (shorter ones are in every word)."""

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_KEYWORDS = (  # noqa: SIM905 - libpq's list, as its documentation prints it
    "host hostaddr port dbname user password passfile require_auth channel_binding "
    "connect_timeout client_encoding options application_name fallback_application_name "
    "keepalives keepalives_idle keepalives_interval keepalives_count tcp_user_timeout "
    "replication gssencmode sslmode sslnegotiation requiressl sslcompression sslcert sslkey "
    "sslkeylogfile sslpassword sslcertmode sslrootcert sslcrl sslcrldir sslsni requirepeer "
    "ssl_min_protocol_version ssl_max_protocol_version min_protocol_version "
    "max_protocol_version krbsrvname gsslib gssdelegation service target_session_attrs "
    "load_balance_hosts"
).split()
"""libpq's connection parameters: ``&name=`` of another name is still the value before it."""
_NEXT = r"(?:{})\s*=".format("|".join([r"[\w%]*%[0-9A-Fa-f]{2}[\w%]*", *_KEYWORDS]))
"""The start of the next parameter: a name of libpq's, or one percent-encoded (maybe one)."""


@functools.cache  # compiled when first needed: a project on files never needs it
def _parameters(separator: str) -> re.Pattern[str]:
    """``name=value``, ``separator`` ending a bare value: quoted, or all up to the next name.

    A quote left open is no quoted value (libpq refuses it): read bare, it
    ends where the next parameter starts, so a ``password=`` after it is one.
    """
    return re.compile(
        r"(?P<name>(?<![\w%])[\w%]+\s*=)(?P<gap>\s*)"
        rf"(?P<value>'(?:[^'\\]|\\.)*'|.*?)(?=(?:{separator}){_NEXT}|$)",
        re.DOTALL,
    )


_PASSWORD_NAMES = frozenset({"password", "sslpassword"})
"""libpq's parameters holding a password (as libpq does, names percent-decoded)."""
_KEYWORD_START = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*=")


def is_keyword_string(location: str) -> bool:
    """Whether ``location`` is meant as a libpq keyword string: it starts with ``name=``.

    A URL's scheme holds no ``=``, and a directory so named can be written
    ``./name=...``.
    """
    return _KEYWORD_START.match(location) is not None


def keyword_pairs(location: str) -> list[tuple[str, str]] | None:
    r"""The ``(name, value)`` pairs of a keyword string as libpq reads them; None if it cannot.

    Values are bare (a backslash escapes the next character) or in single
    quotes (``\'`` and ``\\`` inside), around an ``=`` spaces may stand.
    """
    pairs: list[tuple[str, str]] = []
    text, at = location, 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return pairs
        start = at
        while at < len(text) and not text[at].isspace() and text[at] != "=":
            at += 1
        name = text[start:at]
        while at < len(text) and text[at].isspace():
            at += 1
        if not name or at == len(text) or text[at] != "=":
            return None
        at += 1
        while at < len(text) and text[at].isspace():
            at += 1
        value, at = _keyword_value(text, at)
        if value is None:
            return None
        pairs.append((name, value))


def _keyword_value(text: str, at: int) -> tuple[str | None, int]:
    quoted = at < len(text) and text[at] == "'"
    at += quoted
    value: list[str] = []
    while at < len(text):
        char = text[at]
        if char == "\\" and at + 1 < len(text):
            value.append(text[at + 1])
            at += 2
            continue
        if (quoted and char == "'") or (not quoted and char.isspace()):
            return "".join(value), at + quoted
        value.append(char)
        at += 1
    return (None if quoted else "".join(value)), at


def safe_url(url: str) -> str:
    """``url`` (a URL, a keyword string, or a message holding one) without its passwords."""
    span = _user_info_password(url)
    if span is not None:  # user:password@ said as user@
        url = url[: span[0] - 1] + url[span[1] :]
    return _parameter(url).sub(
        lambda m: m["name"] + m["gap"] + REDACTED if _is_password(m["name"]) else m[0],
        url,
    )


def url_passwords(url: str) -> list[str]:
    """The passwords ``url`` may hold, read generously, raw and percent-decoded; longest first."""
    # A space after = is the value's in a URL's query, and not in a keyword string: both.
    found = {
        value
        for m in _parameter(url).finditer(url)
        if _is_password(m["name"])
        for value in (m["value"], m["gap"] + m["value"])
    }
    # A quoted value (a keyword string's) is its inside; in a URL the quote is the password's.
    found |= {value[1:].removesuffix("'") for value in found if value.startswith("'")}
    found |= {re.sub(r"\\(.)", r"\1", value) for value in found}  # a keyword string's escapes
    span = _user_info_password(url)
    if span is not None:
        found.add(url[span[0] : span[1]])
    found |= {unquote(password, errors="replace") for password in found}
    return sorted((password for password in found if password), key=len, reverse=True)


def scrub(text: str, passwords: list[str]) -> str:
    """``text`` with every piece of ``passwords`` of :data:`FRAGMENT` characters or more removed."""
    hidden = [False] * len(text)
    for password in passwords:
        for start in range(len(text) - FRAGMENT + 1):
            if text[start : start + FRAGMENT] not in password:
                continue
            end = start + FRAGMENT
            while end < len(text) and text[start : end + 1] in password:
                end += 1
            hidden[start:end] = [True] * (end - start)
    said: list[str] = []
    for index, char in enumerate(text):
        if not hidden[index]:
            said.append(char)
        elif index == 0 or not hidden[index - 1]:
            said.append(REDACTED)
    return "".join(said)


def hide_quoted(text: str, location: str) -> str:
    """``text`` (libpq's error on reading ``location``) with each piece of it quoted hidden.

    Such an error quotes the piece it could not read (``"abc"``), which may
    be any part of a password written unencoded, however short: where the
    location holds a password, every ``"..."`` that is a piece of it is said
    ``"[REDACTED]"``.
    """
    if not url_passwords(location):
        return text
    return re.sub(
        r'"([^"]*)"',
        lambda m: f'"{REDACTED}"' if len(m[1]) > 1 and m[1] in location else m[0],
        text,
    )


def misread(location: str, parsed: Mapping[str, str]) -> bool:
    """Whether libpq read the URL ``location`` (as ``parsed``) otherwise than its writer meant.

    An unencoded ``@`` or ``/`` in a password moves the rest of it into the
    host, the port or the database name, where errors would quote it.
    """
    scheme = _SCHEME.match(location)
    if scheme is None:
        return False  # a keyword string is read one way only
    rest = location[scheme.end() :]
    first = re.search(r"[@/]", rest)
    if first is not None and first[0] == "@":  # libpq's user info ends at its first @ ...
        host = re.split(r"[/?]", rest[first.end() :], maxsplit=1)[0]
        if "@" in host:  # ... and a host never holds one
            return True
    return (
        "@" in parsed.get("dbname", "")
        or "@" in parsed.get("host", "")
        or re.fullmatch(r"[0-9,]*", parsed.get("port", "")) is None
    )


def _user_info_password(url: str) -> tuple[int, int] | None:
    """Where a URL's password is: from its user info's first ``:`` to the last ``@``."""
    scheme = _SCHEME.search(url)
    if scheme is None:
        return None
    rest = scheme.end()
    at = url.rfind("@", rest)
    colon = url.find(":", rest, at)
    if at < 0 or colon < 0:
        return None
    return colon + 1, at


def _parameter(location: str) -> re.Pattern[str]:
    """How ``location``'s parameters are written: a URL's query, or a keyword string."""
    # A URL's query: & ends a value, a space does not. A keyword string: a space does.
    return _parameters("&" if _SCHEME.search(location) else r"\s+")


def _is_password(name: str) -> bool:
    return unquote(name.rstrip(" =\t\n")).lower() in _PASSWORD_NAMES
