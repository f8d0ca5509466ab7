"""Reading a TOML file, with the line of every problem: a syntax error's, and a bad key's.

tomllib says where a syntax error is (``(at line 3, column 5)``); a value
that parses but does not validate is found again in the text by its keys
(:func:`key_line`), so a validation error can say
``agents/x/agent.toml:3: schedule: ...`` as a compiler would.
"""

from __future__ import annotations

import errno
import os
import re
import tomllib
from typing import TYPE_CHECKING, Any

from agentops._infra.files import CONFIG_FILE_LIMIT, read_regular
from agentops.errors import ConfigError
from agentops.project._values import error_line

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from pydantic import ValidationError

__all__ = ["key_line", "key_place", "read_toml", "validation_problems"]

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r"\"(?:[^\"\\]|\\.)*\"|'[^']*'"
_PART = rf"(?:{_BARE}|{_QUOTED})"
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_HEADER = re.compile(rf"\s*\[\[?\s*(?P<keys>{_DOTTED})\s*\]\]?\s*(?:#.*)?")
_KEY = re.compile(rf"\s*(?P<keys>{_DOTTED})\s*=")


def read_toml(path: Path, *, agent: str | None) -> tuple[dict[str, Any], str]:
    """The document at ``path`` and its text; a :class:`ConfigError` naming the line if bad."""
    try:
        # Checked first: a FIFO or a device is refused, never waited on.
        raw = read_regular(path, limit=CONFIG_FILE_LIMIT, follow_links=True)
        if raw is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
        # utf-8-sig: a byte-order mark left by an editor is not a TOML error.
        text = raw.decode("utf-8-sig")
        return tomllib.loads(text), text
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        # tomllib says where: "Invalid value (at line 2, column 11)".
        raise ConfigError(f"{path}: bad TOML: {exc}", agent=agent) from exc
    except RecursionError:
        raise ConfigError(f"{path}: bad TOML: nested too deeply", agent=agent) from None
    except ValueError as exc:
        # Python's limit on an integer's digits, met by tomllib's int(): its
        # message names sys.set_int_max_str_digits, of no use to an operator.
        said = "a number too long to read" if "digits" in str(exc) else str(exc)
        raise ConfigError(f"{path}: bad TOML: {said}", agent=agent) from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}", agent=agent) from exc


def validation_problems(
    exc: ValidationError, text: str, *, prefix: Sequence[str | int] = ()
) -> list[tuple[int | None, str]]:
    """Each error of ``exc`` as (its line in ``text``, ``key: message``).

    ``prefix`` is where the validated value sits in the document
    (``("params",)`` for an agent's Params).
    """
    return [
        (key_line(text, (*prefix, *error["loc"])), error_line(error, prefix))
        for error in exc.errors(include_url=False, include_input=False)
    ]


def key_line(text: str, loc: Sequence[str | int]) -> int | None:
    """The line of ``text`` that sets the key at ``loc``, or else the nearest table holding it.

    ``("limits", "runs")`` is found as ``runs = ...`` under ``[limits]``, as
    ``limits.runs = ...`` or in ``limits = {runs = ...}`` (the line of
    ``limits``); a key that is missing points at its table's header. Only
    the keys of the text are read, not its values: good enough to point a
    person at a line, never used to read the document.
    """
    wanted = tuple(str(part) for part in loc)
    best: tuple[int, int | None] = (0, None)
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.fullmatch(line)
        if header is not None:
            table = _keys(header["keys"])
            path = table
        else:
            assignment = _KEY.match(line)
            if assignment is None:
                continue
            path = (*table, *_keys(assignment["keys"]))
        score = _score(path, wanted)
        if score > best[0]:
            best = (score, number)
    return best[1]


def key_place(path: Path, loc: Sequence[str | int]) -> str:
    """``path:line`` of the key at ``loc`` in the file, or ``path`` when it cannot be read now."""
    try:
        line = key_line(path.read_text(encoding="utf-8"), loc)
    except (OSError, UnicodeError):  # read a moment ago: said without its line
        line = None
    return str(path) if line is None else f"{path}:{line}"


def _score(path: tuple[str, ...], wanted: tuple[str, ...]) -> int:
    # A line setting the key itself, or a table or key holding it, scores by
    # how deep it reaches; a key inside the wanted one (a model validator's
    # error names its whole section) scores just below the section itself.
    if not path:
        return 0
    if wanted[: len(path)] == path:
        return 2 * len(path)
    if path[: len(wanted)] == wanted:
        return 2 * len(wanted) - 1
    return 0


def _keys(dotted: str) -> tuple[str, ...]:
    parts = re.findall(_PART, dotted)
    return tuple(part[1:-1] if part[:1] in "\"'" else part for part in parts)
