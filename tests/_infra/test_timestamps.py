"""Timestamps: how they are written and read, and every window after the clock is stepped back.

A clock stepped back leaves recorded times in the future. Each window (the
run and action rate limits, the requests limit, the cost windows, the
breaker's cooldown) counts them as now, so an agent is never blocked for
longer than the window itself: checked here with a FakeClock moved back a
day between runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from pydantic import TypeAdapter, ValidationError

from agentops._infra.timestamps import (
    MAX_YEAR,
    MIN_YEAR,
    UtcDatetime,
    at_most,
    in_range,
    iso,
    iso_second,
)
from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import run_agent
from suite import agent_source

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))


# -- writing and reading -----------------------------------------------------------------


def test_iso_is_utc_with_microseconds_and_a_z():
    """Log lines and journal records: UTC, microseconds when there are any, ending in Z."""
    assert iso(NOW) == "2026-11-22T12:00:00Z"
    assert iso(NOW.replace(microsecond=120000)) == "2026-11-22T12:00:00.120000Z"
    assert iso(datetime(2026, 11, 22, 13, 0, tzinfo=PARIS)) == "2026-11-22T12:00:00Z"


def test_iso_second_is_utc_fixed_width():
    """The ledger's stamp: whole seconds, converted to UTC, so stamps sort as text."""
    assert iso_second(NOW.replace(microsecond=999999)) == "2026-11-22T12:00:00Z"
    assert iso_second(datetime(2026, 11, 22, 13, 0, 5, tzinfo=PARIS)) == "2026-11-22T12:00:05Z"


def test_at_most_counts_a_future_time_as_now():
    """A time after now (the clock went back) is now; any other time is itself."""
    earlier, later = NOW - timedelta(hours=1), NOW + timedelta(days=1)
    assert at_most(earlier, NOW) == earlier
    assert at_most(later, NOW) == NOW
    assert at_most(NOW, NOW) == NOW


@pytest.mark.parametrize("year", [MIN_YEAR, 2026, MAX_YEAR])
def test_in_range_accepts_the_sane_years(year):
    """From 1970 to 2200, a timestamp is read as it is, in UTC."""
    moment = datetime(year, 6, 1, tzinfo=UTC)
    assert in_range(moment) == moment


@pytest.mark.parametrize(
    "moment",
    [
        datetime(MIN_YEAR - 1, 12, 31, tzinfo=UTC),
        datetime(MAX_YEAR + 1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
        datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
    ],
    ids=["1969", "2201", "overflows-forward", "overflows-back"],
)
def test_in_range_refuses_other_years_with_a_value_error(moment):
    """Outside the years, even where the conversion to UTC overflows: a ValueError."""
    with pytest.raises(ValueError, match="between 1970 and 2200"):
        in_range(moment)


def test_a_stored_timestamp_without_a_zone_is_read_as_utc():
    """A hand-edited timestamp without a zone means UTC, like every one agentops writes."""
    adapter = TypeAdapter(UtcDatetime)
    assert adapter.validate_python("2026-11-22T12:00:00") == NOW
    assert adapter.validate_python("2026-11-22T13:00:00+01:00") == NOW
    with pytest.raises(ValidationError):
        adapter.validate_python("9999-01-01T00:00:00Z")


# -- every window after the clock is stepped back ----------------------------------------

AGENT = agent_source(
    """
    if params.fail:
        raise RuntimeError("the feed is down")
    if params.usd:
        ctx.spend(usd=params.usd)
    if params.key:
        ctx.action("publish", params.key, do=lambda: params.key)
    for _ in range(params.requests):
        ctx.http.get("http://feed.test/")
    return Result(ok=True)
    """,
    params="""
    usd: float = 0.0
    key: str = ""
    requests: int = 0
    fail: bool = False
    """,
    result="ok: bool",
)


@pytest.mark.parametrize(
    ("toml", "first", "then", "blocked", "window_s"),
    [
        pytest.param('[limits]\nruns = "1/hour"\n', {}, {}, "room again in 3600s", 3600, id="runs"),
        pytest.param(
            '[limits.actions]\npublish = "1/hour"\n',
            {"key": "a"},
            {"key": "b"},
            "action publish reached its rate limit 1/hour",
            3600,
            id="action",
        ),
        pytest.param(
            "[limits]\ncost_usd_per_hour = 1.0\n",
            {"usd": 1.0},
            {},
            "room in 3600s",
            3600,
            id="usd-hour",
        ),
        pytest.param(
            "[limits]\ncost_usd_per_day = 1.0\n",
            {"usd": 1.0},
            {},
            "room in 86400s",
            86400,
            id="usd-day",
        ),
        pytest.param(
            '[circuit]\nfailures = 1\ncooldown = "1h"\n',
            {"fail": True},
            {},
            "next try in 3600s",
            3600,
            id="breaker",
        ),
    ],
)
def test_a_clock_stepped_back_a_day_blocks_no_longer_than_the_window(
    project, clock, toml, first, then, blocked, window_s
):
    """A day back, what was recorded counts as now: blocked for the window, then free."""
    project.add_agent("agent", AGENT, toml)
    project.run(clock=clock, overrides=first)
    clock.advance(days=-1)
    stopped = project.run(clock=clock, overrides=then)
    assert stopped.exit_code == 75
    assert blocked in stopped.message
    clock.advance(seconds=window_s - 1)
    assert project.run(clock=clock, overrides=then).exit_code == 75, "the window itself still holds"
    clock.advance(seconds=2)
    assert project.run(clock=clock, overrides=then).exit_code == 0


def test_a_clock_stepped_back_a_day_delays_a_request_no_longer_than_a_minute(project, clock):
    """requests_per_minute: the request recorded a day ahead makes the next one wait a minute."""
    project.add_agent("agent", AGENT, "[limits]\nrequests_per_minute = 1\n")
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        clock.advance(seconds=seconds)

    transport = httpx.MockTransport(lambda _request: httpx.Response(200, text="ok"))
    options = {"clock": clock, "sleep": sleep, "http_transport": transport, "environ": {}}
    project_ = AgentopsProject(project.home)
    assert run_agent(project_, "agent", overrides={"requests": 1}, **options).exit_code == 0
    clock.advance(days=-1)
    assert run_agent(project_, "agent", overrides={"requests": 1}, **options).exit_code == 0
    assert waits == [pytest.approx(60.0)]


def test_recorded_times_from_the_future_are_saved_as_now(project, clock):
    """The next save brings the future stamps back: the state holds no time ahead of its clock."""
    project.add_agent("agent", AGENT, '[limits]\nruns = "5/hour"\ncost_usd_per_hour = 10.0\n')
    project.run(clock=clock, overrides={"usd": 1.0})
    clock.advance(days=-1)
    project.run(clock=clock, overrides={"usd": 1.0})
    state = project.state("agent")
    now = iso(clock())
    assert state["rate_limits"]["runs"] == [now, now]
    assert [spend["at"] for spend in state["budget"]["spends"]] == [now, now]
