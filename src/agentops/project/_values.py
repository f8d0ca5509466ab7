"""The kinds of value the configuration's keys hold, and the rules every section follows.

Shared by the sections of ``agent.toml`` and of ``agentops.toml``, with how a
value that breaks them is said (:func:`error_line`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import ConfigDict, Field, PlainValidator

from agentops.project.schedule import check_schedule

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pydantic_core import ErrorDetails

SECTION = ConfigDict(extra="forbid", frozen=True)
"""Every section's model configuration: unknown keys refused, frozen once read."""

PATTERN_MEANINGS: dict[str, str] = {}
"""What each text key's pattern asks for, in words: an error says that, never the regex."""


def matching(pattern: str, meaning: str, *, alias: str | None = None) -> Any:
    """A :class:`Field` of text matching ``pattern``, said as ``meaning`` when it does not."""
    PATTERN_MEANINGS[pattern] = meaning
    return Field(pattern=pattern, alias=alias)


def error_line(error: ErrorDetails, prefix: Sequence[str | int] = ()) -> str:
    """One error of a configuration's validation as ``key: what is wrong``.

    The key is its dotted path (after ``prefix``); a table's own name that
    is refused (a group's) is quoted after its table. A text not matching
    its pattern says what it must be, never the pattern, nor the value (a
    store's URL may hold a password).
    """
    loc = [str(part) for part in (*prefix, *error["loc"])]
    name = None
    if loc and loc[-1] == "[key]":
        name, loc = loc[-2], loc[:-2]
    where = ".".join(loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"unknown key '{where}'"
    message = error["msg"].removeprefix("Value error, ")
    meaning = PATTERN_MEANINGS.get(str(error.get("ctx", {}).get("pattern")))
    if error["type"] == "string_pattern_mismatch" and meaning is not None:
        message = f"must be {meaning}"
    return f"{where}: {message}" if name is None else f"{where}: {name!r}: {message}"


Money = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Count = Annotated[int, Field(strict=True, ge=0)]
Fraction = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
Weight = Annotated[float, Field(strict=True, ge=0, le=1000, allow_inf_nan=False)]

Schedule = Annotated[str, PlainValidator(check_schedule)]
"""A five-field cron expression or an ``@daily``-style macro, checked with cronsim."""

GroupName = Annotated[
    str,
    matching(
        r"^[a-z0-9][a-z0-9_-]{0,62}$",
        "lower-case letters, digits, _ and - (at most 63), starting with a letter or a digit",
    ),
]
"""A group of agents that share a concurrency limit (``[groups]`` in agentops.toml)."""

HttpUrl = Annotated[str, matching(r"^https?://[^\s/]+", "an http:// or https:// URL naming a host")]
"""An ``http://`` or ``https://`` URL naming a host."""
