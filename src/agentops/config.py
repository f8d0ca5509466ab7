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
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    model_validator,
)

from agentops.schedule import check_schedule

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_DURATION_S",
    "REQUESTS",
    "RUNS",
    "AgentConfig",
    "Circuit",
    "Duration",
    "Guard",
    "Ledger",
    "Limits",
    "Rate",
    "Retry",
    "action_key",
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


RUNS = "runs"
REQUESTS = "requests"
"""Keys under which the state file's ``rate_limits`` counts runs and HTTP requests."""


def action_key(name: str) -> str:
    """The ``rate_limits`` key under which commits of the action ``name`` are counted."""
    return f"action:{name}"


class Limits(_Section):
    """``[limits]``: rate limits and budgets that hold across cron runs."""

    runs: RateSpec | None = None
    cost_usd_per_hour: float | None = Field(None, ge=0, allow_inf_nan=False)
    cost_usd_per_day: float | None = Field(None, ge=0, allow_inf_nan=False)
    tokens_per_run: int | None = Field(None, ge=0)
    requests_per_minute: int | None = Field(None, ge=1)
    steps_per_run: int | None = Field(None, ge=1)
    actions: dict[str, RateSpec] = {}

    @property
    def request_rate(self) -> Rate | None:
        """``requests_per_minute`` as a :class:`Rate`."""
        per_minute = self.requests_per_minute
        return None if per_minute is None else Rate(per_minute, 60.0, f"{per_minute}/minute")

    def rates(self) -> dict[str, Rate]:
        """Every rate limit set, by the ``rate_limits`` key its events are counted under."""
        rates = {action_key(name): rate for name, rate in self.actions.items()}
        if self.runs is not None:
            rates[RUNS] = self.runs
        if self.request_rate is not None:
            rates[REQUESTS] = self.request_rate
        return rates


class Retry(_Section):
    """``[retry]``: how transient failures of ``run()`` are retried."""

    attempts: int = Field(3, ge=1, le=100)
    initial: Duration = 1.0
    max: Duration = 60.0


class Circuit(_Section):
    """``[circuit]``: stop running after the same failure repeats."""

    failures: int = Field(2, ge=1)
    cooldown: Duration = 3600.0


class Ledger(_Section):
    """``[ledger]``: how long guarded actions are remembered."""

    keep: Duration = 30 * 86400.0


class Guard(_Section):
    """``[guard]``: confidence thresholds routing results to apply, review or escalation."""

    auto_threshold: float = Field(0.85, ge=0, le=1)
    review_threshold: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Guard:
        if self.review_threshold > self.auto_threshold:
            raise ValueError("review_threshold must not be above auto_threshold")
        return self


class AgentConfig(_Section):
    """``agents/<name>/agent.toml``: what the operator edits."""

    description: str = ""
    schedule: Schedule | None = None
    timeout: Annotated[Duration, Field(gt=0)] = DEFAULT_TIMEOUT_S
    params: dict[str, Any] = {}
    limits: Limits = Limits()
    retry: Retry = Retry()
    circuit: Circuit = Circuit()
    ledger: Ledger = Ledger()
    guard: Guard = Guard()


MAX_PROBLEMS = 5
"""How many problems one error line names; the rest are counted."""


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming the bad keys (the first few), for a config or state file error."""
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown key '{where}'")
        else:
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
    more = len(problems) - MAX_PROBLEMS
    return "; ".join(problems[:MAX_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
