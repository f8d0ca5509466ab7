"""Redaction of secrets from everything agentops writes: log lines, state files, stderr.

Three kinds of secret are replaced by ``[REDACTED]``:

- the values of environment variables named like ``*_KEY``, ``*_TOKEN``,
  ``*_SECRET``, ``*_CREDENTIALS``, ``*_CREDENTIAL``, ``*_CREDS``, ``*_PAT``,
  ``*_AUTH``, ``*_DSN``, ``*_COOKIE`` (and their plurals), or holding
  ``PASSWORD``, ``PASSPHRASE`` or ``PRIVATE_KEY`` anywhere (values shorter
  than :data:`MIN_SECRET_LENGTH` are left alone: redacting ``"1"``
  everywhere would garble every line);
- strings shaped like well-known keys and credentials: ``sk-…`` API keys,
  GitHub, GitLab, Slack, AWS and Google tokens, JWTs, ``Bearer …`` and
  ``Basic …`` credentials, passwords in URLs, secret query parameters, PEM
  private keys, and secret-named keys in JSON text carried inside a string;
- the string value of any key named like a secret (``password``,
  ``api_key``, ``access_token``, ``Authorization``, ``cookie``, …).

An agent's own data (``ctx.state``) is not agentops' to judge: there
:meth:`Redactor.known` replaces only the secrets agentops was given (the
environment's, a provider's key, an env file's values, secret params), and
:meth:`Redactor.looks_secret` says where the rest looks secret, so the run
can warn instead of destroying an agent's cursor named ``next_page_token``.

Redaction works on values, not on serialized text: strings are rewritten one
by one, so a replacement can never break the JSON written afterwards or touch
a number. An agent's data can be megabytes, so the whole document is first
checked, at memory-search speed, for the literals a match would contain; the
value-by-value walk runs only when one is there.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, quote_plus

import pydantic_core

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = ["MIN_SECRET_LENGTH", "REDACTED", "Redactor", "is_secret_env_name", "is_secret_key"]

REDACTED = "[REDACTED]"
"""What a secret is replaced with."""

MIN_SECRET_LENGTH = 8
"""Environment values shorter than this are not treated as secrets."""

_SECRET_ENV_NAME = re.compile(
    r"(?:^|_)(?:KEYS?|TOKENS?|SECRETS?|APIKEY|CREDENTIALS?|CREDS|PAT|AUTH|DSN|COOKIES?)$"
    r"|PASSWORD|PASSWD|PASSPHRASE|PRIVATE_?KEY",
    re.IGNORECASE,
)

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
    r"api[_-]?key|apikey|key|access[_-]?key|token|access_token|refresh_token|id_token|"
    r"private_token|secret|client_secret|password|passwd|sig|signature|auth|"
    r"x-amz-security-token|x-amz-signature|x-amz-credential|session_?id"
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
    # The password of user:password@host, up to the last @ before the path. Looked
    # for on "@", not "://": most log lines hold a URL, few an "@".
    (("@",), r"://[^/\s:@\"'<>]*:(?P<secret>[^\s/\"'<>]+)@"),
    # ?api_key=… in URLs, and form bodies such as "grant_type=x&client_secret=…".
    (
        (
            "key=",
            "token=",
            "secret=",
            "password=",
            "passwd=",
            "sig=",
            "signature=",
            "auth=",
            "credential=",
            "sessionid=",
            "session_id=",
        ),
        rf"(?:^|(?<=[?&]))(?i:{_QUERY_NAMES})=(?P<secret>[^&#\s\"'<>]+)",
    ),
    # JSON carried inside a string, such as a logged response body.
    (
        tuple(f'{ending}"' for ending in _SECRET_KEY_ENDINGS),
        rf"(?i:{_KEY_NAMES})\"\s*:\s*\"(?P<secret>(?:[^\"\\]|\\.)+)\"",
    ),
]
_SCHEMES = ("bearer", "basic", "token")
_CREDENTIAL = re.compile(
    rf"(?i:\b(?:{'|'.join(_SCHEMES)}))\s+(?P<secret>{_CREDENTIAL_CHARS}{{8,}})"
)


def is_secret_env_name(name: str) -> bool:
    """Whether an environment variable's value is treated as a secret."""
    return bool(_SECRET_ENV_NAME.search(name))


def is_secret_key(name: str) -> bool:
    """Whether a key (a JSON key, a header, a log field) names a secret."""
    return name.lower().endswith(_SECRET_KEY_ENDINGS)


def _minimal(triggers: set[str]) -> tuple[str, ...]:
    # A trigger holding another is found whenever the other is: searched for nothing.
    return tuple(sorted(t for t in triggers if not any(o != t and o in t for o in triggers)))


class Redactor:
    """Replaces secrets in JSON values with :data:`REDACTED`.

    The values of secret-named variables in ``environ`` are redacted wherever
    they appear; :meth:`learn` and :meth:`add` teach it more as a run goes on.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        """Learn the secret values in ``environ`` (none if omitted)."""
        self._values: list[str] = []
        self._needles: set[str] = set()
        self._learned: set[str] = set()
        self._shapes = [(literals, re.compile(p, re.DOTALL)) for literals, p in _SHAPES]
        self.learn(environ or {})

    # Lowercase substrings one of which any match of a shape, a scheme or a
    # secret key name contains, as they look in serialized JSON: what the
    # prefilter looks for. A key ends in a quote (escaped, in JSON carried in a
    # string), a scheme is followed by whitespace (escaped, in JSON): so a
    # "tokens" count or "Basic" in prose costs no walk over the value.
    _TRIGGERS = _minimal(
        {literal for literals, _ in _SHAPES for literal in literals}
        | {f"{scheme}{after}" for scheme in _SCHEMES for after in (" ", "\\")}
        | {f"{ending}{quote}" for ending in _SECRET_KEY_ENDINGS for quote in ('"', '\\"')}
    )

    def learn(self, environ: Mapping[str, str]) -> None:
        """Also redact the values of secret-named variables in ``environ``.

        Called again after an agent is imported (it may have loaded a ``.env``)
        and before each line it prints is logged: cheap when nothing is new.
        """
        found = {value for name, value in environ.items() if is_secret_env_name(name)}
        if not found <= self._learned:
            self._learned |= found
            self.add(found)

    def learn_secret_params(self, params: Mapping[str, Any]) -> None:
        """Also redact the values of params named like secrets (``bot_token = ...``)."""
        self.add(str(v) for k, v in params.items() if is_secret_key(k) and v is not None)

    def add(self, values: Iterable[str]) -> None:
        r"""Redact these exact values wherever they appear, in every form they are written in.

        Besides the value itself: percent-encoded as urllib and as httpx
        write it (httpx leaves ``$ ! \`` bare in paths and queries), and
        ``\uXXXX``-escaped as JSON text carried in a string holds it.
        """
        new = {
            variant
            for value in values
            if len(value) >= MIN_SECRET_LENGTH
            for variant in _forms(value)
        }
        self._values = sorted(set(self._values) | new, key=len, reverse=True)
        # How the values look inside serialized JSON, where the prefilter looks.
        self._needles = {
            form
            for value in self._values
            for form in (
                value,
                json.dumps(value)[1:-1],
                json.dumps(value, ensure_ascii=False)[1:-1],
            )
        }

    def value(self, value: Any, *, fallback: Callable[[Any], Any] | None = None) -> Any:
        """A JSON copy of ``value`` with every secret replaced.

        Strings that are not valid Unicode (a file name in another encoding)
        are kept with their bad bytes escaped. Raises
        ``pydantic_core.PydanticSerializationError`` if ``value`` is not JSON
        and no ``fallback`` turns the rest into JSON, and ``ValueError`` if it
        holds NaN or an infinity (JSON has neither), or is nested too deeply.
        """
        if value is None or type(value) in (bool, int):  # nothing to redact: the common case
            return value
        data = self._serialized(value, fallback)
        copy = pydantic_core.from_json(data, allow_inf_nan=False)
        return self._walk(copy, None) if self._suspect(data.decode()) else copy

    def line(self, value: Any, *, fallback: Callable[[Any], Any] | None = None) -> bytes:
        """``value`` serialized as one JSON line (newline included), every secret replaced.

        The same as serializing :meth:`value`, without parsing the bytes back
        when there is nothing to redact, which is the common case (a log line).
        NaN and infinities are written as strings: every line is strict JSON.
        """
        data = self._serialized(value, fallback, inf_nan="strings")
        if self._suspect(data.decode()):  # str searches run several times faster than bytes'
            data = pydantic_core.to_json(self._walk(pydantic_core.from_json(data), None))
        return data + b"\n"

    @staticmethod
    def _serialized(
        value: Any,
        fallback: Callable[[Any], Any] | None,
        inf_nan: Literal["constants", "strings"] = "constants",
    ) -> bytes:
        try:
            return pydantic_core.to_json(value, fallback=fallback, inf_nan_mode=inf_nan)
        except pydantic_core.PydanticSerializationError as exc:
            if "UnicodeEncodeError" not in str(exc):  # a cycle, too deep: escaping won't help
                raise
            return pydantic_core.to_json(
                _escape_surrogates(value), fallback=fallback, inf_nan_mode=inf_nan
            )

    def _suspect(self, text: str) -> bool:
        # Cheap: substring searches over the whole serialized document, no regex
        # (on megabytes, forty memory searches beat one alternation).
        for needle in self._needles:
            if needle in text:
                return True
        lowered = text.lower()
        for trigger in self._TRIGGERS:  # noqa: SIM110 - faster than any() on every log line
            if trigger in lowered:
                return True
        return False

    def known(self, value: Any) -> Any:
        """A JSON copy of ``value`` with the secrets this redactor was given replaced, only them.

        Neither a key's name nor a value's shape makes anything secret here:
        for data that is the agent's own, where a cursor named
        ``next_page_token`` must survive. Raises as :meth:`value` does.
        """
        if value is None or type(value) in (bool, int):
            return value
        data = self._serialized(value, None)
        copy = pydantic_core.from_json(data, allow_inf_nan=False)
        text = data.decode()
        if not any(needle in text for needle in self._needles):
            return copy
        return self._walk_known(copy)

    def _walk_known(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {self._known_text(k): self._walk_known(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk_known(item) for item in value]
        if isinstance(value, str):
            return self._known_text(value)
        return value

    def _known_text(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text

    def looks_secret(self, value: Any) -> list[str]:
        """Where JSON ``value`` holds what :meth:`value` would redact: paths such as ``a.b[0]``.

        A string under a key named like a secret, or shaped like a key or a
        credential. Sorted; empty for almost every value, found at the
        prefilter's speed.
        """
        if value is None or type(value) in (bool, int):
            return []
        if not self._suspect(self._serialized(value, None).decode()):
            return []
        found: list[str] = []
        self._find(value, "", secret=False, found=found)
        return sorted(found)

    def _find(self, value: Any, path: str, *, secret: bool, found: list[str]) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                inner = f"{path}.{key}" if path else str(key)
                self._find(item, inner, secret=secret or is_secret_key(str(key)), found=found)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._find(item, f"{path}[{index}]", secret=secret, found=found)
        elif (
            value not in (None, "", REDACTED)
            and not isinstance(value, bool)
            and (secret or (isinstance(value, str) and self._text(value) != value))
        ):
            found.append(path)

    def _walk(self, value: Any, key: str | None, *, secret: bool = False) -> Any:
        # Under a secret-named key every value is secret, however deep.
        secret = secret or (key is not None and is_secret_key(key))
        if isinstance(value, dict):
            return {self._text(k): self._walk(v, k, secret=secret) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(item, None, secret=secret) for item in value]
        if secret and value not in (None, "") and not isinstance(value, bool):
            return REDACTED
        if isinstance(value, str):
            return self._text(value)
        return value

    def identifier(self, text: str) -> str:
        """``text`` (an action's name or key) with each secret replaced by a digest of it.

        Plain :data:`REDACTED` would make two keys holding different secrets
        the same key, and the second action would be skipped as a duplicate;
        ``[REDACTED:1a2b3c4d]`` keeps them apart, and the same from run to run.
        """
        if not self._suspect(text):
            return text
        return self._text(text, mark=_digest)

    def _text(self, text: str, mark: Callable[[str], str] = lambda _: REDACTED) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, mark(value))
        lowered = text.lower()
        for literals, pattern in self._shapes:
            if any(literal in lowered for literal in literals):
                text = pattern.sub(lambda match: _redact_match(match, mark), text)
        if any(scheme in lowered for scheme in _SCHEMES):
            text = _CREDENTIAL.sub(lambda match: _redact_credential(match, mark), text)
        return text


# The characters httpx leaves bare in a URL's path, query and user info (WHATWG sets).
_PATH_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ' "#<>?`{}')
_QUERY_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ' "#<>')
_USERINFO_SAFE = "".join(c for c in _PATH_SAFE if c not in "/:;=@[\\]^|")
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def _forms(value: str) -> set[str]:
    forms = {value, quote(value, safe=""), quote_plus(value), quote(value)}
    forms |= {_percent(value, safe) for safe in (_PATH_SAFE, _QUERY_SAFE, _USERINFO_SAFE)}
    escaped = json.dumps(value)[1:-1]  # non-ASCII as \u00e9, as JSON text holds it
    forms |= {
        escaped,
        re.sub(r"\\u[0-9a-f]{4}", lambda m: m[0].upper().replace("\\U", "\\u"), escaped),
    }
    return forms


def _percent(value: str, safe: str) -> str:
    # httpx's quoting: percent-encode UTF-8 bytes, keep existing %XX sequences.
    keep = _UNRESERVED + safe
    parts = re.split(r"(%[0-9A-Fa-f]{2})", value)
    return "".join(
        part
        if index % 2
        else "".join(c if c in keep else "".join(f"%{b:02X}" for b in c.encode()) for c in part)
        for index, part in enumerate(parts)
    )


def _digest(secret: str) -> str:
    return f"[REDACTED:{hashlib.sha256(secret.encode()).hexdigest()[:8]}]"


def _redact_match(match: re.Match[str], mark: Callable[[str], str]) -> str:
    if "secret" not in match.re.groupindex:
        return mark(match.group(0))
    start, end = match.span("secret")
    whole = match.group(0)
    return (
        whole[: start - match.start()] + mark(match.group("secret")) + whole[end - match.start() :]
    )


def _escape_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_escape_surrogates(k): _escape_surrogates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_escape_surrogates(item) for item in value]
    return value


def _redact_credential(match: re.Match[str], mark: Callable[[str], str]) -> str:
    # "Basic authentication failed" is prose; "Basic dXNlcjpwYXNz" is not:
    # a credential has a digit, a symbol, or capitals past its first letter.
    token = match.group("secret")
    looks_random = any(c.isdigit() or c in "._~+/=-" for c in token) or any(
        c.isupper() for c in token[1:]
    )
    return _redact_match(match, mark) if looks_random else match.group(0)
