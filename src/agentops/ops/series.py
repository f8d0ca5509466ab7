"""What the report's charts draw, over time, in bounded memory whatever the log's size.

A :class:`Series` keeps the invocations that ended, by status, in buckets
of a fine width (its ``grain``, the finest that keeps a period under
:data:`MAX_GRAINS` buckets), so a chart can be drawn at any coarser width
afterwards: the width that suits the span of the data, not of the period
asked for (a project a day old is not drawn as one bar among seven
empty days). It also keeps the most recent :data:`MAX_POINTS` runs with a
duration, the cost of each day, and the last :data:`RECENT_RUNS`
invocations of each agent, for the strip of recent outcomes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

__all__ = [
    "CHART_BUCKETS",
    "MAX_BARS",
    "MAX_GRAINS",
    "MAX_POINTS",
    "RECENT_RUNS",
    "Ending",
    "Point",
    "Series",
    "chart_bucket",
    "floor",
    "grain_for",
]

CHART_BUCKETS = {
    "minute": 60,
    "5 minutes": 300,
    "15 minutes": 900,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
}
"""The widths a chart's buckets can have, in seconds, finest first; each divides the next."""

MAX_GRAINS = 20_000
"""At most this many buckets of the finest width cover a period."""

MAX_BARS = 72
"""A chart of runs over time has at most this many bars: the finest width that gives no more."""

MAX_POINTS = 5000
"""The duration chart shows at most this many runs, the most recent."""

RECENT_RUNS = 30
"""How many of an agent's last invocations its strip shows."""

_Timed = TypeVar("_Timed", "Point", "Ending")


def floor(moment: datetime, bucket: str) -> datetime:
    """The start of the bucket ``moment`` falls in (UTC; a week starts on Monday)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    if bucket == "week":
        day = floor(moment, "day")
        return day - timedelta(days=day.weekday())
    if bucket == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    minutes = CHART_BUCKETS[bucket] // 60  # each divides an hour
    return moment.replace(minute=moment.minute - moment.minute % minutes, second=0, microsecond=0)


def grain_for(span_s: float) -> str:
    """The finest bucket width that keeps a period of ``span_s`` under :data:`MAX_GRAINS`."""
    return next(
        (name for name, width in CHART_BUCKETS.items() if span_s / width <= MAX_GRAINS), "week"
    )


def chart_bucket(span_s: float, grain: str) -> str:
    """The finest width, no finer than ``grain``, that draws ``span_s`` in :data:`MAX_BARS` bars."""
    widths = list(CHART_BUCKETS)
    for name in widths[widths.index(grain) :]:
        if span_s / CHART_BUCKETS[name] <= MAX_BARS:
            return name
    return "week"


@dataclass(frozen=True, slots=True)
class Point:
    """One executed run on the duration chart."""

    at: datetime
    duration_s: float
    status: str
    agent: str
    run_id: str


@dataclass(frozen=True, slots=True)
class Ending:
    """How one invocation ended, for an agent's strip of recent outcomes."""

    at: datetime
    status: str
    run_id: str
    duration_s: float | None


@dataclass(slots=True)
class Series:
    """What the charts draw: invocations by status, durations, cost, recent outcomes."""

    grain: str = "hour"
    """The width of the buckets of :attr:`ends`."""
    bucket: str = "hour"
    """The width :attr:`runs` gives the buckets in (the period's)."""
    ends: dict[datetime, Counter[str]] = field(default_factory=dict)
    """Bucket start (``grain`` wide) -> status -> invocations that ended in it."""
    cost: dict[datetime, float] = field(default_factory=dict)
    """Day (UTC) -> USD spent."""
    point_count: int = 0
    """How many runs had a duration (the chart shows the latest :data:`MAX_POINTS`)."""
    _points: list[Point] = field(default_factory=list)
    _recent: list[Ending] = field(default_factory=list)

    def ended(self, ending: Ending) -> None:
        """Count an invocation that ended."""
        start = floor(ending.at, self.grain)
        self.ends.setdefault(start, Counter())[ending.status] += 1
        self._recent.append(ending)
        if len(self._recent) > 2 * RECENT_RUNS:
            self._recent = _latest(self._recent, RECENT_RUNS)

    def add_point(self, point: Point) -> None:
        """Put a run on the duration chart."""
        self.point_count += 1
        self._points.append(point)
        if len(self._points) > 2 * MAX_POINTS:
            self._points = _latest(self._points, MAX_POINTS)

    def spent(self, moment: datetime, usd: float) -> None:
        """Count ``usd`` spent at ``moment``."""
        day = floor(moment, "day")
        self.cost[day] = self.cost.get(day, 0.0) + usd

    @property
    def points(self) -> list[Point]:
        """The most recent :data:`MAX_POINTS` runs with a duration, oldest first."""
        return _latest(self._points, MAX_POINTS)

    @property
    def recent(self) -> list[Ending]:
        """The last :data:`RECENT_RUNS` invocations that ended, oldest first."""
        return _latest(self._recent, RECENT_RUNS)

    @property
    def runs(self) -> dict[datetime, Counter[str]]:
        """Invocations that ended, by status, in buckets of the period's width."""
        return self.counts(self.bucket)

    def counts(self, bucket: str) -> dict[datetime, Counter[str]]:
        """Invocations that ended, by status, in buckets ``bucket`` wide (the grain or coarser)."""
        if bucket == self.grain:
            return self.ends
        counts: dict[datetime, Counter[str]] = {}
        for start, ended in self.ends.items():
            counts.setdefault(floor(start, bucket), Counter()).update(ended)
        return counts

    def first(self) -> datetime | None:
        """When the earliest thing drawn happened, to the grain (None if nothing is drawn)."""
        starts = [*self.ends, *(point.at for point in self._points)]
        return floor(min(starts), self.grain) if starts else None

    def merge(self, other: Series) -> None:
        """Add ``other``'s figures (of the same grain) to these."""
        for start, counts in other.ends.items():
            self.ends.setdefault(start, Counter()).update(counts)
        for day, usd in other.cost.items():
            self.cost[day] = self.cost.get(day, 0.0) + usd
        self.point_count += other.point_count
        self._points = _latest([*self._points, *other._points], MAX_POINTS)
        self._recent = _latest([*self._recent, *other._recent], RECENT_RUNS)


def _latest(items: list[_Timed], count: int) -> list[_Timed]:
    """The ``count`` latest of ``items``, oldest first."""
    return sorted(items, key=lambda item: item.at)[-count:]
