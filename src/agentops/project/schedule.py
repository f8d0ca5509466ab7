"""Cron expressions (checked with cronsim, which matches Debian's cron) and crontab rendering."""

from __future__ import annotations

import math
import re
import shlex
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import tzinfo
    from pathlib import Path

__all__ = [
    "CRON_PATH",
    "check_schedule",
    "cron_zone",
    "longest_interval_s",
    "next_run",
    "previous_run",
    "render_crontab",
    "render_tick_crontab",
]

CRON_PATH = "/usr/local/bin:/usr/bin:/bin"
"""What cron's minimal environment lacks: a PATH with the usual system directories."""

# Debian cron's macros, as the five-field expressions they stand for.
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_REBOOT = "@reboot"

_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_NAMES = {
    "month": "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec",
    "day-of-week": "sun|mon|tue|wed|thu|fri|sat",
}


def _element(field: str) -> re.Pattern[str]:
    # What Debian's cron accepts in one comma-separated element: *, n, a-b, with
    # an optional /step; names in the month and day-of-week fields. cronsim
    # also takes L, W, # and ?, which cron would refuse.
    value = rf"(?:\d+|{_NAMES[field]})" if field in _NAMES else r"\d+"
    return re.compile(rf"(?:\*|{value}(?:-{value})?)(?:/\d+)?", re.IGNORECASE)


_ELEMENTS = {field: _element(field) for field in _FIELDS}


def check_schedule(value: object) -> str:
    """Return the expression if cron accepts it, else raise ``ValueError`` saying why."""
    if not isinstance(value, str):
        raise ValueError(f"expected a cron expression like '*/15 * * * *', got {value!r}")
    expr = " ".join(value.split())
    if expr == _REBOOT:
        return expr
    fields = _MACROS.get(expr, expr)
    if fields.startswith("@"):
        known = ", ".join([*_MACROS, _REBOOT])
        raise ValueError(f"{value!r} is not a cron expression: cron's macros are {known}")
    if len(fields.split()) != len(_FIELDS):  # cronsim would also take six fields
        raise ValueError(f"{value!r} is not a cron expression: it needs five fields")
    for field, text in zip(_FIELDS, fields.split(), strict=True):
        if not all(_ELEMENTS[field].fullmatch(part) for part in text.split(",")):
            raise ValueError(f"{value!r} is not a cron expression: bad {field} {text!r}")
    from cronsim import CronSim, CronSimError  # noqa: PLC0415 - cron pays start-up on every tick

    try:
        CronSim(fields, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        if not _never_fires(fields):
            raise ValueError(f"{value!r} is not a cron expression: {exc}") from exc
    return expr


def cron_zone(environ: Mapping[str, str] | None = None) -> tzinfo:
    """The time zone cron reads schedules in: ``$TZ`` if set, else the machine's.

    A zone with its rules (daylight saving included), not a fixed offset:
    ``0 2 * * *`` is 02:00 local time on both sides of a DST change.
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415

    name = (environ or {}).get("TZ", "").lstrip(":")
    try:
        if name:
            return ZoneInfo(name)
        with open("/etc/localtime", "rb") as handle:  # noqa: PTH123 - what cron itself reads
            return ZoneInfo.from_file(handle)
    except (OSError, ValueError, ZoneInfoNotFoundError):
        return datetime.now().astimezone().tzinfo or UTC


def previous_run(expr: str, at: datetime) -> datetime | None:
    """When cron last started (or should have started) the agent at or before ``at``.

    ``at`` must be aware, in the zone cron uses (see :func:`cron_zone`).
    None for ``@reboot`` or a schedule that never fires.
    """
    if expr == _REBOOT:
        return None
    from cronsim import CronSim, CronSimError  # noqa: PLC0415

    try:
        return next(CronSim(_MACROS.get(expr, expr), at + timedelta(seconds=1), reverse=True))
    except (CronSimError, StopIteration):
        return None


def _never_fires(fields: str) -> bool:
    # Debian's cron takes "0 0 30 2 *" (a day no month in the list has): it
    # simply never runs. cronsim refuses it; with any month it is fine.
    from cronsim import CronSim, CronSimError  # noqa: PLC0415

    minute, hour, dom, month, dow = fields.split()
    start = datetime(2000, 1, 1, tzinfo=UTC)
    try:
        CronSim(f"{minute} {hour} {dom} * {dow}", start)
        CronSim(f"0 0 1 {month} *", start)  # the months themselves are valid
    except CronSimError:
        return False
    return True


def next_run(expr: str, after: datetime) -> datetime | None:
    """When cron next starts an agent with this schedule; None for ``@reboot`` or never."""
    if expr == _REBOOT:
        return None
    from cronsim import CronSim, CronSimError  # noqa: PLC0415

    try:
        return next(CronSim(_MACROS.get(expr, expr), after))
    except (CronSimError, StopIteration):
        return None


_WEEK_S = 8 * 86400.0
"""A schedule that fires every week or more often never leaves a gap longer than this."""

_MINUTE_S = 60.0
_MAX_STRIDES = 20_000
"""How far the walk goes: a keep of a day covers four years in fewer strides."""


def longest_interval_s(expr: str | None, *, at_least: float) -> float | None:
    """The longest gap between two runs of ``expr``, if it is longer than ``at_least``.

    None when it is not (or for ``@reboot``, no schedule, or one that never
    fires). Every run validates its agent.toml, so the common case costs
    nothing: a schedule that fires every week never leaves a gap of eight
    days. Otherwise the schedule is walked in strides of ``at_least`` (a
    stride with no fire in it is a longer gap): over a week when the pattern
    repeats weekly, else over four years (leap days).
    """
    if expr is None or expr == _REBOOT:
        return None
    fields = _MACROS.get(expr, expr)
    _minute, _hour, dom, month, dow = fields.split()
    # Debian cron ORs day-of-month and day-of-week when both are restricted:
    # unless only day-of-month restricts the days, it fires every week.
    weekly = month == "*" and not (dom != "*" and dow == "*")
    if weekly and at_least >= _WEEK_S:
        return None
    from cronsim import CronSim  # noqa: PLC0415

    start = datetime(2026, 1, 1, tzinfo=UTC)
    fire = next_run(expr, start)
    if fire is None:
        return None  # it never fires
    if at_least < _MINUTE_S:  # cron fires once a minute at most: every gap is longer
        return max(_MINUTE_S, longest_interval_s(expr, at_least=_MINUTE_S) or _MINUTE_S)
    end = start + timedelta(days=8 if weekly else 4 * 366)
    stride = timedelta(seconds=at_least)
    longest = 0.0
    for _ in range(_MAX_STRIDES):
        if fire >= end:
            break
        # The last fire at or before fire + stride: if it is fire itself, none
        # came within the stride, and the gap to the next one is longer.
        last = next(CronSim(fields, fire + stride + timedelta(seconds=1), reverse=True))
        if last > fire:
            fire = last
            continue
        following = next(CronSim(fields, fire))
        gap = (following - fire).total_seconds()
        longest = max(longest, gap)
        stride = timedelta(seconds=gap)
        fire = following
    else:  # the walk ran out before the end: a keep too short to check for such a schedule
        return math.inf
    return longest if longest > at_least else None


def render_crontab(
    entries: Iterable[tuple[str, str, str]], *, program: str, home: Path, path: str = CRON_PATH
) -> str:
    """Crontab text running each ``(name, schedule, description)`` with ``agentops run``.

    ``program`` is the shell-quoted command that starts agentops, with absolute
    paths: cron runs commands with almost no environment, so each line sets
    PATH for its own command (a ``PATH=`` line would change every line after
    it, in a crontab that may hold other people's lines too).
    ``%`` is escaped because cron reads it as a newline.
    """
    command = f"{program} --home {shlex.quote(str(home))}"
    lines = [
        "# Generated by `agentops cron`. Install with `agentops cron --install`,",
        "# which keeps the rest of your crontab as it is.",
        "# Runs print nothing unless they fail; cron mails what they print to MAILTO.",
        "",
    ]
    for name, schedule, description in entries:
        if description:
            lines.append(f"# {name}: {' '.join(description.split())}")
        job = f"{schedule} PATH={path} {command} run {name} --scheduled"
        lines.append(job.replace("%", r"\%"))
    return "\n".join(lines) + "\n"


def render_tick_crontab(*, program: str, home: Path, path: str = CRON_PATH) -> str:
    """Crontab text with the one line that runs every due agent: ``agentops tick``, each minute.

    ``program`` and ``path`` as for :func:`render_crontab`.
    """
    command = f"{program} --home {shlex.quote(str(home))}"
    lines = [
        "# Generated by `agentops cron --tick`. Install with `agentops cron --install --tick`,",
        "# which keeps the rest of your crontab as it is.",
        "# Every minute, one process runs each agent whose schedule is due, each in a child",
        "# of its own; it prints nothing unless an agent needs a human.",
        "",
        f"* * * * * PATH={path} {command} tick".replace("%", r"\%"),
    ]
    return "\n".join(lines) + "\n"
