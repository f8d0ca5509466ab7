"""Timestamps as agentops writes and reads them: UTC, ISO 8601, within sane years.

Every timestamp in a state file, a journal, a ledger and a log line is UTC
ISO 8601 text ending in ``Z``. Years outside :data:`MIN_YEAR` to
:data:`MAX_YEAR` are refused where they are read: a hand-edited ``9999``
would otherwise overflow the first window or cooldown added to it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator

__all__ = ["MAX_YEAR", "MIN_YEAR", "UtcDatetime", "at_most", "in_range", "iso", "iso_second"]

MIN_YEAR = 1970
MAX_YEAR = 2200
"""The years a timestamp read from disk may fall in."""


def iso(moment: datetime) -> str:
    """``2026-11-22T03:10:00.120000Z``: how log lines and journal records are stamped."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_second(moment: datetime) -> str:
    """``2026-11-22T03:10:00Z``: fixed width, so such stamps sort as text (the ledger)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="seconds")[:19] + "Z"


def at_most(moment: datetime, now: datetime) -> datetime:
    """``moment``, or ``now`` if it lies in the future.

    After the clock is stepped back, recorded times lie ahead of it. Every
    window (rate limits, budgets, the breaker) counts them as now, so a clock
    going back never blocks an agent for longer than the window itself.
    """
    return min(moment, now)


def in_range(value: datetime) -> datetime:
    """``value`` (aware) in UTC, if its year in UTC is one agentops accepts; else ``ValueError``."""
    try:
        moment = value.astimezone(UTC)
    except OverflowError:
        moment = value.replace(year=MAX_YEAR + 1 if value.year > MIN_YEAR else MIN_YEAR - 1)
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise ValueError(f"a timestamp must fall between {MIN_YEAR} and {MAX_YEAR}")
    return moment


def _as_utc(value: datetime) -> datetime:
    # A hand-edited timestamp without a zone is read as UTC, like every one we write.
    return in_range(value.replace(tzinfo=UTC) if value.tzinfo is None else value)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
"""A datetime stored as UTC ISO 8601 text (``2026-11-22T03:10:00Z``)."""
