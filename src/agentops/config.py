"""Pydantic models of ``agent.toml``, and the small value types it is written in.

Durations are ``"30s"``, ``"5m"``, ``"1h30m"``, ``"2d"`` or a number of seconds.
Rates are ``"4/hour"``, ``"10/minute"``, ``"100/day"`` or ``"3/15m"``: at most
that many events in any window of that length (a sliding window).

Every model forbids unknown keys, so a typo is an error that names the key
instead of a setting silently ignored.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator, ValidationError

from agentops.schedule import check_schedule

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_DURATION_S",
    "AgentConfig",
    "Duration",
    "Limits",
    "Rate",
    "describe_validation_error",
    "parse_duration",
    "parse_rate",
]

DEFAULT_TIMEOUT_S = 600.0
"""A run that has not finished after ten minutes is stopped, unless ``timeout`` says otherwise."""

MAX_DURATION_S = 10 * 366 * 86400.0
"""The longest duration accepted: ten years. Longer ones overflow timers and dates."""

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_RATE_UNITS = {
    "second": 1,
    "sec": 1,
    "minute": 60,
    "min": 60,
    "hour": 3600,
    "day": 86400,
    "week": 604800,
} | _UNIT_SECONDS
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+")


def parse_duration(value: object) -> float:
    """Seconds in ``"1h30m"``-style text, or in a plain non-negative number."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '5m', got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"a duration must be a finite number of seconds, got {value!r}")
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value!r}")
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.fullmatch(text := value.strip().lower()):
        seconds = float(sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text)))
    else:
        raise ValueError(f"expected a duration like '30s', '5m', '1h30m' or '2d', got {value!r}")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"a duration can be at most ten years, got {value!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``count`` events in any window of ``period_s`` seconds."""

    count: int
    period_s: float
    text: str

    def __str__(self) -> str:
        """The rate as it was written, e.g. ``4/hour``."""
        return self.text


def parse_rate(value: object) -> Rate:
    """A :class:`Rate` from ``"4/hour"``, ``"10/minute"`` or ``"3/15m"``."""
    if isinstance(value, Rate):
        return value
    count_text, _, period_text = str(value).strip().lower().partition("/")
    try:
        count = int(count_text)
        period = _RATE_UNITS.get(period_text) or parse_duration(period_text)
    except ValueError:
        count, period = -1, 0
    if count < 0 or period <= 0:
        raise ValueError(f"expected a rate like '4/hour', '10/minute' or '3/15m', got {value!r}")
    return Rate(count=count, period_s=float(period), text=str(value).strip())


Duration = Annotated[float, PlainValidator(parse_duration)]
"""Seconds, written in agent.toml as ``"5m"`` or a number."""

RateSpec = Annotated[Rate, PlainValidator(parse_rate), PlainSerializer(str)]
"""A :class:`Rate`, written in agent.toml as ``"4/hour"``."""

Schedule = Annotated[str, PlainValidator(check_schedule)]
"""A five-field cron expression or an ``@daily``-style macro, checked with cronsim."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Section):
    """``[limits]``: rate limits that hold across cron runs."""

    runs: RateSpec | None = None


class AgentConfig(_Section):
    """``agents/<name>/agent.toml``: what the operator edits."""

    description: str = ""
    schedule: Schedule | None = None
    timeout: Duration = DEFAULT_TIMEOUT_S
    params: dict[str, Any] = {}
    limits: Limits = Limits()


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad key, for a config or state file error."""
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown key '{where}'")
        else:
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
    return "; ".join(problems)
