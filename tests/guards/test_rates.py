"""Sliding windows are half-open: an event at ``now - period`` has just left the window."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentops.errors import RateLimited
from agentops.guards.rates import RatePolicy, count_run, prune, request_rate, trim, wait_s
from agentops.model.state import AgentState
from agentops.project.config import AgentConfig, Limits
from agentops.project.units import Rate, parse_rate
from suite import T0, FakeClock, agent_source, logged

FOUR_PER_HOUR = parse_rate("4/hour")
MICROSECOND = timedelta(microseconds=1)


def minutes_ago(clock: FakeClock, *minutes: float) -> list[datetime]:
    """Event times that many minutes before the clock's now."""
    return [clock() - timedelta(minutes=m) for m in minutes]


# prune


def test_prune_keeps_events_inside_the_window_oldest_first(clock):
    """Events within the last period are kept and sorted; older ones are dropped."""
    times = minutes_ago(clock, 5, 90, 59, 0, 61)
    assert prune(times, FOUR_PER_HOUR, clock()) == minutes_ago(clock, 59, 5, 0)


def test_prune_drops_an_event_exactly_one_period_old(clock):
    """An event exactly one hour ago has left a 1/hour window; a microsecond later it has not."""
    exactly = clock() - timedelta(hours=1)
    assert prune([exactly], FOUR_PER_HOUR, clock()) == []
    assert prune([exactly + MICROSECOND], FOUR_PER_HOUR, clock()) == [exactly + MICROSECOND]


def test_prune_returns_a_new_list_and_leaves_the_given_one_alone(clock):
    """The state's list is not changed by looking at its window."""
    times = minutes_ago(clock, 90, 5)
    assert prune(times, FOUR_PER_HOUR, clock()) == minutes_ago(clock, 5)
    assert times == minutes_ago(clock, 90, 5)


def test_prune_counts_events_from_the_future_as_now(clock):
    """After the clock was stepped back, an event stamped ahead of it is kept, stamped now."""
    ahead = clock() + timedelta(days=1)
    assert prune([ahead, *minutes_ago(clock, 10)], FOUR_PER_HOUR, clock()) == [
        *minutes_ago(clock, 10),
        clock(),
    ]


# the rate policy


def test_requests_per_minute_is_a_one_minute_window():
    """30 requests a minute is the rate 30/minute; none set, none."""
    assert request_rate(Limits(requests_per_minute=30)) == Rate(30, 60.0, "30/minute")
    assert request_rate(Limits()) is None


def test_a_dead_runs_start_counts_against_the_run_rate(clock):
    """A run recovery found dead was counted by no gate: it is counted, and the next waits."""
    config = AgentConfig(limits=Limits(runs="1/hour"))
    state = AgentState(agent="agent")
    count_run(state, clock() - timedelta(minutes=15))
    with pytest.raises(RateLimited, match=r"run rate limit 1/hour reached; room again in 2700s"):
        RatePolicy.admit_run(config, state, clock())
    assert len(state.rate_limits["runs"]) == 1


# trim


def test_trim_drops_old_events_in_place(clock):
    """Trimming changes the list itself: events one period old or older leave it."""
    times = minutes_ago(clock, 60, 59, 5)
    trim(times, FOUR_PER_HOUR, clock())
    assert times == minutes_ago(clock, 59, 5)


def test_trim_brings_events_from_the_future_back_to_now(clock):
    """Events later than now are stamped now, so they leave one period from now."""
    times = [*minutes_ago(clock, 10), clock() + timedelta(hours=5)]
    trim(times, FOUR_PER_HOUR, clock())
    assert times == [*minutes_ago(clock, 10), clock()]


# wait_s


def test_wait_s_is_zero_while_the_window_has_room(clock):
    """Below the count, one more event fits now."""
    assert wait_s([], FOUR_PER_HOUR, clock()) == 0.0
    assert wait_s(minutes_ago(clock, 50, 30, 10), FOUR_PER_HOUR, clock()) == 0.0


def test_wait_s_waits_for_the_oldest_event_to_leave(clock):
    """At the count, the wait ends when the oldest event is one period old."""
    times = minutes_ago(clock, 50, 30, 10, 0)
    assert wait_s(times, FOUR_PER_HOUR, clock()) == 10 * 60


def test_wait_s_after_the_rate_was_lowered(clock):
    """With more events than a newly lowered count, enough of them must leave first."""
    times = minutes_ago(clock, 50, 40, 30, 20, 10)
    assert wait_s(times, parse_rate("2/hour"), clock()) == 40 * 60


def test_wait_s_of_a_zero_rate_is_forever(clock):
    """A rate of 0/hour never has room, even with no events at all."""
    assert wait_s([], parse_rate("0/hour"), clock()) == math.inf


def test_a_clock_stepped_back_blocks_no_longer_than_one_period(clock):
    """Events stamped a day ahead of the clock block a 1/hour rate for an hour, not 25."""
    rate = parse_rate("1/hour")
    kept = prune([clock() + timedelta(days=1)], rate, clock())
    assert wait_s(kept, rate, clock()) == 3600.0


# properties

PERIODS = st.sampled_from([1.0, 60.0, 900.0, 3600.0])


@st.composite
def attempts(draw, period_s: float) -> list[timedelta | None]:
    """Gaps between attempts, on the scale of the period; None means 'retry when told to'."""
    gap = st.one_of(
        st.integers(0, int(2 * period_s * 1000)).map(lambda ms: timedelta(milliseconds=ms)),
        st.sampled_from(
            [timedelta(0), timedelta(seconds=period_s), timedelta(seconds=period_s / 2)]
        ),
        st.none(),
    )
    return draw(st.lists(gap, max_size=60))


@given(data=st.data(), count=st.integers(0, 5), period_s=PERIODS)
def test_admitting_only_when_wait_is_zero_never_overfills_any_window(data, count, period_s):
    """However attempts fall, no window of one period ever holds more than `count` events."""
    rate = Rate(count=count, period_s=period_s, text=f"{count}/{period_s}s")
    clock = FakeClock(T0)
    kept: list[datetime] = []  # what the state file holds between runs
    admitted: list[datetime] = []
    for gap in data.draw(attempts(period_s)):
        if gap is None:  # a caller that retries exactly when it was told it may
            wait = wait_s(prune(kept, rate, clock()), rate, clock())
            clock.advance(seconds=wait if math.isfinite(wait) else 0)
        else:
            clock.advance(seconds=gap.total_seconds())
        kept = prune(kept, rate, clock())
        if wait_s(kept, rate, clock()) == 0:
            kept.append(clock())
            admitted.append(clock())
    # The fullest windows start at an event: count the events in [event, event + period).
    window = timedelta(seconds=period_s)
    for start in admitted:
        inside = [t for t in admitted if start <= t < start + window]
        assert len(inside) <= count


@given(
    count=st.integers(1, 5),
    period_s=PERIODS,
    ages=st.lists(st.floats(0, 1, exclude_max=True), max_size=12),
)
def test_wait_s_is_exact(count, period_s, ages):
    """After wait_s seconds one more event fits; a microsecond earlier it does not."""
    rate = Rate(count=count, period_s=period_s, text=f"{count}/{period_s}s")
    now = FakeClock(T0)()
    times = [now - timedelta(seconds=age * period_s) for age in ages]
    wait = wait_s(prune(times, rate, now), rate, now)
    if wait == 0:
        assert len(prune(times, rate, now)) < count
        return
    later = now + timedelta(seconds=wait)
    assert len(prune(times, rate, later)) < count
    assert wait_s(prune(times, rate, later), rate, later) == 0
    before = later - MICROSECOND
    assert len(prune(times, rate, before)) >= count
    assert wait_s(prune(times, rate, before), rate, before) > 0


@given(
    count=st.integers(1, 5),
    period_s=PERIODS,
    ages=st.lists(st.floats(-5, 1, exclude_max=True), max_size=12),
)
def test_a_window_never_blocks_for_longer_than_itself(count, period_s, ages):
    """Whatever the stored times, future ones included, the wait is at most one period."""
    rate = Rate(count=count, period_s=period_s, text=f"{count}/{period_s}s")
    now = FakeClock(T0)()
    times = [now - timedelta(seconds=age * period_s) for age in ages]
    assert wait_s(prune(times, rate, now), rate, now) <= period_s


@given(
    period_s=PERIODS,
    ages=st.lists(st.floats(-2, 3, allow_nan=False), max_size=12),
)
def test_trim_and_prune_agree(period_s, ages):
    """Trimming a sorted list in place leaves what prune returns for it."""
    rate = Rate(count=1, period_s=period_s, text=f"1/{period_s}s")
    now = FakeClock(T0)()
    times = sorted(now - timedelta(seconds=age * period_s) for age in ages)
    expected = prune(times, rate, now)
    trim(times, rate, now)
    assert times == expected


# -- real runs ---------------------------------------------------------------------------

PUBLISHING_AGENT = agent_source(
    """
    outbox = ctx.home / "outbox.txt"
    published = []
    for i in range(params.items):
        key = f"item-{i}"
        receipt = ctx.action(
            "publish", key=key, do=lambda key=key: _publish(outbox, key, ctx.run_id)
        )
        if receipt["run_id"] == ctx.run_id:
            published.append(key)
    return Result(published=published)
    """,
    params="items: int = 5",
    result="published: list[str]",
    extra="""
    def _publish(path, key, run_id):
        with path.open("a") as f:
            f.write(key + "\\n")
        return {"key": key, "run_id": run_id}
    """,
)


def test_action_rate_limit_stops_the_run_and_keeps_committed_work(project, invoke):
    """publish = "3/hour", five items: both runs exit 75 with the same three published once."""
    project.add_agent("pub", PUBLISHING_AGENT, '[limits.actions]\npublish = "3/hour"\n')
    first = invoke("run", "pub")
    assert (first.exit_code, first.stdout, first.stderr) == (75, "", "")
    state = project.state("pub")
    assert state["last_run"]["status"] == "rate_limited"
    committed = sorted(project.ledger("pub")["publish"])
    assert committed == ["item-0", "item-1", "item-2"]
    assert (project.home / "outbox.txt").read_text().splitlines() == committed

    second = invoke("run", "pub")
    assert (second.exit_code, second.stdout, second.stderr) == (75, "", "")
    state = project.state("pub")
    assert state["last_run"]["status"] == "rate_limited"
    assert sorted(project.ledger("pub")["publish"]) == committed
    assert (project.home / "outbox.txt").read_text().splitlines() == committed, "none repeated"
    assert len(state["rate_limits"]["action:publish"]) == 3
    duplicates = [e for e in logged(project, "pub", "action.skipped") if e["reason"] == "duplicate"]
    assert [e["key"] for e in duplicates] == committed
