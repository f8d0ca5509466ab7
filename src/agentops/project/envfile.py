r"""An agent's environment files: ``.env`` at the home, and ``agents/<name>/.env``.

Cron starts a job with almost no environment, so a key set in the
operator's shell never reaches a scheduled run. The env files are where an
operator declares what an agent needs; every run loads them, however it is
started, the agent's own file overriding the project's, and both overriding
the environment the run was started with (a run by hand sees what cron's
sees). Their values are secrets: never logged, redacted wherever they appear.

The format is the common subset of systemd's ``EnvironmentFile``, Docker's
``--env-file`` and python-dotenv, read strictly::

    # a comment, on a line of its own
    LOCAL_LLM_API_KEY=sk-...
    export FEED_TOKEN=abc123          (``export`` is allowed, and ignored)
    GREETING="two words"              (double quotes: \" \\ \n \t \$ escapes)
    PATTERN='literal $HOME and \n'    (single quotes: nothing is escaped)

No variable is expanded (``$HOME`` is five characters), a value is one line,
and a name is set once per file. An unquoted value with `` #`` in it is
refused rather than guessed at: quote it, or put the comment on its own line.
A line that cannot be read is a configuration error naming the file and line,
never its content (it may be a secret).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from agentops._infra.files import CONFIG_FILE_LIMIT, read_regular
from agentops.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

__all__ = ["ENV_FILE", "parse_env", "read_env_file", "read_env_files"]

ENV_FILE = ".env"
"""The name of an env file, at the home and in an agent's directory."""

_ASSIGNMENT = re.compile(r"(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*)")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "$": "$"}


def parse_env(text: str, *, where: str) -> dict[str, str]:
    """The variables ``text`` sets; ``where`` names the file in a :class:`ConfigError`."""
    found: dict[str, str] = {}
    lines_of: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ASSIGNMENT.fullmatch(line)
        if match is None:
            raise ConfigError(f"{where}:{number}: not NAME=value (a comment starts with #)")
        name = match["name"]
        if name in found:
            raise ConfigError(f"{where}:{number}: {name} is set already, on line {lines_of[name]}")
        try:
            found[name] = _value(match["value"])
        except ValueError as exc:
            raise ConfigError(f"{where}:{number}: {name}: {exc}") from None
        lines_of[name] = number
    return found


def _value(text: str) -> str:
    if text.startswith("'"):
        end = text.find("'", 1)
        if end < 0:
            raise ValueError("the single quote is not closed (a value is one line)")
        return _after_quote(text, end, text[1:end])
    if text.startswith('"'):
        return _double_quoted(text)
    if '"' in text or "'" in text:
        raise ValueError("a quote inside an unquoted value: quote the whole value")
    if re.search(r"\s#", text):
        raise ValueError("' #' in an unquoted value: quote the value, or put the comment alone")
    return text


def _double_quoted(text: str) -> str:
    chars: list[str] = []
    index = 1
    while index < len(text):
        char = text[index]
        if char == '"':
            return _after_quote(text, index, "".join(chars))
        if char == "\\":
            escaped = text[index + 1 : index + 2]
            if escaped not in _ESCAPES:
                raise ValueError(r"unknown escape in double quotes: use \" \\ \n \t or \$")
            chars.append(_ESCAPES[escaped])
            index += 2
            continue
        chars.append(char)
        index += 1
    raise ValueError("the double quote is not closed (a value is one line)")


def _after_quote(text: str, end: int, value: str) -> str:
    rest = text[end + 1 :].strip()
    if rest and not rest.startswith("#"):
        raise ValueError("text after the closing quote")
    return value


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of the env file at ``path`` (none if there is no such file)."""
    where = str(path)
    try:
        # Checked first: a FIFO or a device is refused, never waited on.
        raw = read_regular(path, limit=CONFIG_FILE_LIMIT, follow_links=True)
        if raw is None:
            return {}
        text = raw.decode("utf-8-sig")  # an editor's byte-order mark is no error
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror}") from exc
    return parse_env(text, where=where)


def read_env_files(paths: Iterable[Path]) -> dict[str, str]:
    """The variables of every file of ``paths``, a later file's overriding an earlier one's."""
    merged: dict[str, str] = {}
    for path in paths:
        merged.update(read_env_file(path))
    return merged
