"""Durations and rates as people write them in TOML: ``"1h30m"``, ``"500ms"``, ``"4/hour"``.

Durations are ``"500ms"``, ``"30s"``, ``"5m"``, ``"1h30m"``, ``"2d"``, ``"1w"`` or
a number of seconds. Rates are ``"4/hour"``, ``"10/minute"``, ``"100/day"`` or
``"3/15m"``: at most that many events in any window of that length (a sliding
window). Only ASCII digits count ("٣/hour" is refused, as is ``1_000``), and
a boolean is never a number: ``timeout = true`` is an error, not one second.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import PlainSerializer, PlainValidator

__all__ = [
    "MAX_DURATION_S",
    "Duration",
    "PositiveDuration",
    "Rate",
    "RateSpec",
    "parse_duration",
    "parse_positive_duration",
    "parse_rate",
    "parse_size",
]

MAX_DURATION_S = 10 * 366 * 86400.0
"""The longest duration accepted: ten years. Longer ones overflow timers and dates."""

_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_RATE_UNITS = {
    "second": 1,
    "sec": 1,
    "s": 1,
    "minute": 60,
    "min": 60,
    "m": 60,
    "hour": 3600,
    "h": 3600,
    "day": 86400,
    "d": 86400,
    "week": 604800,
    "w": 604800,
}
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|[smhdw])")
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+")
_COUNT = re.compile(r"[0-9]+")


def parse_duration(value: object) -> float:
    """Seconds in ``"1h30m"``-style text, or in a plain non-negative number."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '5m', got {value!r}")
    if isinstance(value, int | float):
        # Compared as it is: float() of a huge int (a TOML integer may have hundreds
        # of digits) would overflow, and so would isfinite().
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {_said(value)}")
        if value > MAX_DURATION_S:
            raise ValueError(f"a duration can be at most ten years, got {_said(value)}")
        if not math.isfinite(value):
            raise ValueError(f"a duration must be a finite number of seconds, got {value!r}")
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.fullmatch(text := value.strip().lower()):
        seconds = float(sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text)))
    else:
        raise ValueError(
            f"expected a duration like '500ms', '30s', '5m', '1h30m' or '2d', got {value!r}"
        )
    if seconds > MAX_DURATION_S:
        raise ValueError(f"a duration can be at most ten years, got {value!r}")
    return seconds


def _said(number: float) -> str:
    """A number for an error line: a huge one by its digits' count, not its digits."""
    if isinstance(number, int) and abs(number) >= 10**20:  # past any duration: count its digits
        return f"a number of {len(str(abs(number)))} digits"
    return repr(number)


def parse_positive_duration(value: object) -> float:
    """:func:`parse_duration`, refusing zero: a zero wait or cooldown is always a mistake."""
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be longer than zero, got {value!r}")
    return seconds


class Rate:
    """At most ``count`` events in any window of ``period_s`` seconds.

    A plain class: a dataclass costs start-up time on every cron tick, and a
    NamedTuple's ``count`` would shadow ``tuple.count``.
    """

    __slots__ = ("count", "period_s", "text")

    def __init__(self, count: int, period_s: float, text: str) -> None:
        """``text`` is the rate as written, e.g. ``4/hour``."""
        self.count = count
        self.period_s = period_s
        self.text = text

    def __eq__(self, other: object) -> bool:
        """Rates are equal when they allow the same."""
        if not isinstance(other, Rate):
            return NotImplemented
        return (self.count, self.period_s) == (other.count, other.period_s)

    def __hash__(self) -> int:
        """Hash as :meth:`__eq__` compares."""
        return hash((self.count, self.period_s))

    def __repr__(self) -> str:
        """``Rate('4/hour')``."""
        return f"Rate({self.text!r})"

    def __str__(self) -> str:
        """The rate as it was written, e.g. ``4/hour``."""
        return self.text


def parse_rate(value: object) -> Rate:
    """A :class:`Rate` from ``"4/hour"``, ``"10/minute"`` or ``"3/15m"``."""
    if isinstance(value, Rate):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a rate like '4/hour', '10/minute' or '3/15m', got {value!r}")
    count_text, _, period_text = value.strip().lower().partition("/")
    period: float = 0.0
    if _COUNT.fullmatch(count_text.strip()):
        try:
            period = _RATE_UNITS.get(period_text.strip()) or parse_positive_duration(period_text)
        except ValueError:
            period = 0.0
    if period <= 0:
        raise ValueError(f"expected a rate like '4/hour', '10/minute' or '3/15m', got {value!r}")
    return Rate(count=int(count_text), period_s=float(period), text=value.strip())


Duration = Annotated[float, PlainValidator(parse_duration)]
"""Seconds, written in TOML as ``"5m"`` or a number."""

PositiveDuration = Annotated[float, PlainValidator(parse_positive_duration)]
"""Seconds, more than zero."""

RateSpec = Annotated[Rate, PlainValidator(parse_rate), PlainSerializer(str)]
"""A :class:`Rate`, written in TOML as ``"4/hour"``."""


_SIZE = re.compile(r"([0-9]+)\s*(b|kb|kib|mb|mib|gb|gib)?")
_SIZE_UNITS = {
    None: 1,
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_size(value: object) -> int:
    """Bytes in ``"10MB"``, ``"512KiB"`` or a plain number of bytes (at least 1 KB)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like '10MB', got {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (match := _SIZE.fullmatch(value.strip().lower())):
        size = int(match[1]) * _SIZE_UNITS[match[2]]
    else:
        raise ValueError(f"expected a size like '10MB' or '512KiB', got {value!r}")
    if not 1000 <= size <= 1000**4:  # noqa: PLR2004 - a kilobyte to a terabyte
        raise ValueError(f"a size must be between 1KB and 1TB, got {value!r}")
    return size
