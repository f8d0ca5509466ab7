"""What the report's charts draw: buckets of a width that suits the span, bounded whatever the log.

In memory, with times given: which bucket a moment falls in, the finest
width a period can be kept in and the one a chart is drawn in, counts
regrouped at a coarser width, and the recent runs and durations kept
bounded, the latest ones, when a log holds more.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from agentops.ops.series import (
    MAX_BARS,
    MAX_GRAINS,
    MAX_POINTS,
    RECENT_RUNS,
    Ending,
    Point,
    Series,
    chart_bucket,
    floor,
    grain_for,
)

T0 = datetime(2026, 11, 26, 15, 42, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("bucket", "start"),
    [
        ("hour", datetime(2026, 11, 26, 15, 0, tzinfo=UTC)),
        ("day", datetime(2026, 11, 26, tzinfo=UTC)),
        ("week", datetime(2026, 11, 23, tzinfo=UTC)),
    ],
)
def test_a_moment_falls_in_the_hour_day_or_week_that_holds_it(bucket, start):
    """Buckets start on the hour, at midnight UTC, on Monday."""
    assert floor(datetime(2026, 11, 26, 15, 42, 7, tzinfo=UTC), bucket) == start


def test_a_moment_in_another_zone_falls_in_its_utc_bucket_and_minutes_divide_the_hour():
    """Buckets are UTC; 5 and 15 minutes start on the hour's multiples."""
    paris = T0.astimezone(timezone(timedelta(hours=1)))
    assert floor(paris, "day") == datetime(2026, 11, 26, tzinfo=UTC)
    assert floor(T0, "minute") == datetime(2026, 11, 26, 15, 42, tzinfo=UTC)
    assert floor(T0, "5 minutes") == datetime(2026, 11, 26, 15, 40, tzinfo=UTC)
    assert floor(T0, "15 minutes") == datetime(2026, 11, 26, 15, 30, tzinfo=UTC)


def test_the_grain_is_the_finest_width_a_period_fits_in():
    """Under MAX_GRAINS buckets: minutes for two weeks, then coarser; a week at the very most."""
    assert grain_for(3600) == "minute"
    assert grain_for(MAX_GRAINS * 60) == "minute"
    assert grain_for(MAX_GRAINS * 60 + 1) == "5 minutes"
    assert grain_for(365 * 86400) == "hour"
    assert grain_for(1e12) == "week"


def test_a_chart_is_drawn_in_the_finest_width_that_fits_its_bars_never_finer_than_the_grain():
    """At most MAX_BARS bars; the span of the data decides, the grain is a floor."""
    assert chart_bucket(MAX_BARS * 60, "minute") == "minute"
    assert chart_bucket(MAX_BARS * 60 + 1, "minute") == "5 minutes"
    assert chart_bucket(600, "hour") == "hour", "no finer than what was kept"
    assert chart_bucket(30 * 86400, "minute") == "day"
    assert chart_bucket(1e12, "minute") == "week"


def test_endings_are_counted_at_the_grain_and_regrouped_at_any_coarser_width():
    """Counts by status per bucket; a day is the sum of its hours; first is the earliest bucket."""
    series = Series(grain="hour", bucket="day")
    for hours, status in [(0, "succeeded"), (1, "failed"), (1, "succeeded"), (30, "succeeded")]:
        at = T0 + timedelta(hours=hours)
        series.ended(Ending(at, status, f"r{hours}", 1.0))
    hour = datetime(2026, 11, 26, 16, tzinfo=UTC)
    assert series.counts("hour")[hour] == {"failed": 1, "succeeded": 1}
    assert series.runs == {
        datetime(2026, 11, 26, tzinfo=UTC): {"succeeded": 2, "failed": 1},
        datetime(2026, 11, 27, tzinfo=UTC): {"succeeded": 1},
    }
    assert series.first() == datetime(2026, 11, 26, 15, tzinfo=UTC)
    assert Series().first() is None


def test_only_the_latest_runs_are_kept_however_many_ended():
    """The strip: the last RECENT_RUNS, oldest first; the last MAX_POINTS durations; all counted."""
    series = Series(grain="minute")
    total = MAX_POINTS * 2 + 7
    for n in reversed(range(total)):  # in any order: the latest by time are kept
        at = T0 + timedelta(seconds=n)
        series.ended(Ending(at, "succeeded", f"r{n}", 1.0))
        series.add_point(Point(at, 1.0, "succeeded", "pub", f"r{n}"))
    assert [e.run_id for e in series.recent] == [f"r{n}" for n in range(total - RECENT_RUNS, total)]
    assert len(series.points) == MAX_POINTS
    assert series.points[0].run_id == f"r{total - MAX_POINTS}"
    assert series.points[-1].run_id == f"r{total - 1}"
    assert series.point_count == total


def test_series_merge_into_the_projects():
    """Counts, costs per UTC day and points add up; the latest of both are kept."""
    one, two = Series(grain="hour"), Series(grain="hour")
    one.ended(Ending(T0, "succeeded", "a1", 2.0))
    two.ended(Ending(T0 + timedelta(minutes=5), "failed", "b1", None))
    one.spent(T0, 0.25)
    two.spent(T0 + timedelta(hours=1), 0.5)
    two.spent(T0 + timedelta(hours=9), 1.0)  # the next day, UTC
    two.add_point(Point(T0, 3.0, "failed", "b", "b1"))
    one.merge(two)
    assert one.ends == {datetime(2026, 11, 26, 15, tzinfo=UTC): {"succeeded": 1, "failed": 1}}
    assert one.cost == {
        datetime(2026, 11, 26, tzinfo=UTC): 0.75,
        datetime(2026, 11, 27, tzinfo=UTC): 1.0,
    }
    assert [e.run_id for e in one.recent] == ["a1", "b1"]
    assert (one.point_count, [p.run_id for p in one.points]) == (1, ["b1"])
