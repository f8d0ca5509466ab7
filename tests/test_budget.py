"""Cost windows are sliding and half-open: a spend exactly one window old has left it."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from agentops.budget import EPSILON_USD, LONGEST_WINDOW_S, Window, windows
from agentops.config import Limits
from agentops.state import Budget, Spend
from conftest import FakeClock

HOURLY = Window("cost_usd_per_hour", 3600.0, 1.0)
MICROSECOND = timedelta(microseconds=1)
NOW = FakeClock()()


def spend(minutes_ago: float, usd: float, now: datetime = NOW) -> Spend:
    """A spend that many minutes before ``now``."""
    return Spend(at=now - timedelta(minutes=minutes_ago), run_id="r", usd=usd)


# windows


def test_windows_come_from_limits_shortest_first():
    """Both caps give an hourly then a daily window; no cap gives no window."""
    both = windows(Limits(cost_usd_per_day=5, cost_usd_per_hour=0.5))
    assert both == [
        Window("cost_usd_per_hour", 3600.0, 0.5),
        Window("cost_usd_per_day", 86400.0, 5.0),
    ]
    assert windows(Limits(cost_usd_per_day=5)) == [Window("cost_usd_per_day", 86400.0, 5.0)]
    assert windows(Limits()) == []


# spent


def test_spent_sums_only_the_spends_inside_the_window():
    """Spends in the last hour count; older ones do not."""
    spends = [spend(90, 5.0), spend(59, 0.25), spend(1, 0.5), spend(0, 0.125)]
    assert HOURLY.spent(spends, NOW) == 0.875


def test_spent_drops_a_spend_exactly_one_window_old():
    """A spend exactly an hour ago has left the window; a microsecond younger one has not."""
    exactly = Spend(at=NOW - timedelta(hours=1), run_id="r", usd=1.0)
    younger = Spend(at=exactly.at + MICROSECOND, run_id="r", usd=1.0)
    assert HOURLY.spent([exactly], NOW) == 0
    assert HOURLY.spent([younger], NOW) == 1.0


# allows


def test_allows_up_to_the_cap_inclusive():
    """A spend landing exactly on the cap is allowed; one cent more is not."""
    spends = [spend(30, 0.75)]
    assert HOURLY.allows(spends, NOW, 0.25)
    assert not HOURLY.allows(spends, NOW, 0.26)
    assert not HOURLY.allows(spends, NOW, 0.250001)


def test_allows_a_float_sum_that_lands_on_the_cap():
    """0.1 + 0.2 is 0.30000000000000004 in floats, but it is within a 0.3 cap."""
    window = Window("cost_usd_per_hour", 3600.0, 0.3)
    assert window.allows([spend(10, 0.1)], NOW, 0.2)


def test_a_zero_cap_allows_only_free_spends():
    """A cap of 0 refuses any cost, but a zero-cost spend goes ahead."""
    window = Window("cost_usd_per_day", 86400.0, 0.0)
    assert not window.allows([], NOW, 0.01)
    assert window.allows([], NOW, 0.0)


# room_in_s


def test_room_in_s_is_zero_below_the_cap():
    """A window with room left reports no wait."""
    assert HOURLY.room_in_s([], NOW) == 0
    assert HOURLY.room_in_s([spend(10, 0.5)], NOW) == 0


def test_room_in_s_waits_for_the_oldest_spend_to_leave():
    """A full window has room when enough of its oldest spends are one hour old."""
    spends = [spend(50, 0.5), spend(40, 0.5)]
    assert HOURLY.room_in_s(spends, NOW) == 10 * 60


def test_room_in_s_waits_for_as_many_spends_as_needed_after_the_cap_was_lowered():
    """With a cap lowered below the spent total, spends leave until the total is below it."""
    spends = [spend(10, 1.0), spend(50, 1.0), spend(30, 1.0)]  # unsorted on purpose
    lowered = Window("cost_usd_per_hour", 3600.0, 1.5)
    assert lowered.room_in_s(spends, NOW) == 30 * 60


def test_room_in_s_of_a_zero_cap_is_forever():
    """A cap of 0 never has room, even with nothing spent."""
    window = Window("cost_usd_per_hour", 3600.0, 0.0)
    assert window.room_in_s([], NOW) == math.inf


def test_room_in_s_of_a_tiny_cap_is_not_zero_when_overspent():
    """A cap at or under EPSILON_USD, with a dollar spent in the window, has no room now."""
    # room_in_s promises 0 only when spent is below the cap: here 1.0 against 5e-10.
    window = Window("cost_usd_per_hour", 3600.0, EPSILON_USD / 2)
    assert window.spent([spend(10, 1.0)], NOW) > window.cap_usd
    assert window.room_in_s([spend(10, 1.0)], NOW) > 0


# Budget.record


def test_budget_record_keeps_only_the_last_day():
    """Recording a spend forgets those a day old or older; younger ones stay, in order."""
    budget = Budget()
    start = NOW - timedelta(days=2)
    for hours in (0, 10, 30, 40, 47):
        budget.record(at=start + timedelta(hours=hours), run_id=f"r{hours}", usd=1.0, tokens=10)
    assert [s.run_id for s in budget.spends] == ["r30", "r40", "r47"]
    budget.record(at=start + timedelta(hours=54), run_id="r54", usd=0.5, tokens=5)
    assert [s.run_id for s in budget.spends] == ["r40", "r47", "r54"]
    assert budget.spends[-1] == Spend(
        at=start + timedelta(hours=54), run_id="r54", usd=0.5, tokens=5
    )


def test_budget_record_drops_a_spend_exactly_one_day_old():
    """The daily window is half-open, and so is what the state file keeps."""
    budget = Budget()
    budget.record(at=NOW, run_id="old", usd=1.0, tokens=0)
    budget.record(at=NOW + timedelta(days=1), run_id="new", usd=1.0, tokens=0)
    assert [s.run_id for s in budget.spends] == ["new"]
    budget.record(at=NOW + timedelta(days=2) - MICROSECOND, run_id="newer", usd=1.0, tokens=0)
    assert [s.run_id for s in budget.spends] == ["new", "newer"]


# properties

SECONDS = st.sampled_from([60.0, 3600.0, LONGEST_WINDOW_S])
CAPS = st.sampled_from([0.0, 0.3, 1.0, 2.5]) | st.floats(0.01, 10, allow_nan=False)
AMOUNTS = st.one_of(
    st.sampled_from([0.0, 0.01, 0.1, 0.2, 0.3, 1 / 3, 0.7, 1.0]),
    st.floats(0, 3, allow_nan=False),
    st.integers(0, 2).map(float),
)
# The documented tolerance, plus room for summing the same floats in another order.
TOLERANCE = EPSILON_USD + 1e-12


@st.composite
def attempts(draw, longest_s: float) -> list[tuple[timedelta | None, float | str]]:
    """(gap before the attempt, dollars asked).

    A None gap means 'come back when told to'; the amount "fill" asks for exactly what the
    fullest window has left, "over" for a hair more.
    """
    edges = [0, 1, 3599, 3600, longest_s / 2, longest_s - 1, longest_s]
    gap = st.one_of(
        st.integers(0, int(2 * longest_s)).map(lambda s: timedelta(seconds=s)),
        st.sampled_from([timedelta(seconds=s) for s in edges]),
        st.sampled_from([timedelta(seconds=3600), timedelta(seconds=longest_s)]).map(
            lambda edge: edge - MICROSECOND
        ),
        st.none(),
    )
    amount = AMOUNTS | st.sampled_from(["fill", "over"])
    return draw(st.lists(st.tuples(gap, amount), max_size=50))


@settings(max_examples=300)
@given(data=st.data(), hourly=CAPS | st.none(), daily=CAPS | st.none())
def test_spending_only_when_allowed_never_overfills_any_window(data, hourly, daily):
    """However spends fall, no stretch of a window's length ever holds more than its cap."""
    limits = Limits(cost_usd_per_hour=hourly, cost_usd_per_day=daily)
    caps = windows(limits)
    clock = FakeClock()
    budget = Budget()  # what the state file holds between runs
    admitted: list[Spend] = []
    for gap, asked in data.draw(attempts(LONGEST_WINDOW_S if daily is not None else 3600.0)):
        if gap is None:  # a run that comes back exactly when the gatekeeper said
            waits = [w.room_in_s(budget.spends, clock()) for w in caps]
            wait = max([w for w in waits if math.isfinite(w)], default=0.0)
            clock.advance(seconds=wait)
        else:
            clock.advance(seconds=gap.total_seconds())
        usd = asked
        if isinstance(asked, str):  # probe the cap
            left = min((w.cap_usd - w.spent(budget.spends, clock()) for w in caps), default=1.0)
            usd = max(0.0, left) + (1e-6 if asked == "over" else 0.0)
        if all(w.allows(budget.spends, clock(), usd) for w in caps):
            budget.record(at=clock(), run_id="r", usd=usd, tokens=0)
            admitted.append(budget.spends[-1])
    # The fullest windows end at a spend, or start at one.
    for window in caps:
        length = timedelta(seconds=window.seconds)
        for edge in {s.at for s in admitted}:
            ending = [s.usd for s in admitted if edge - length < s.at <= edge]
            starting = [s.usd for s in admitted if edge <= s.at < edge + length]
            assert math.fsum(ending) <= window.cap_usd + TOLERANCE
            assert math.fsum(starting) <= window.cap_usd + TOLERANCE


@given(
    seconds=SECONDS,
    cap=CAPS,
    spent=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), AMOUNTS), min_size=1, max_size=12),
)
def test_room_in_s_is_exact(seconds, cap, spent):
    """After room_in_s seconds a tiny spend fits; a microsecond earlier the window is still full."""
    window = Window("w", seconds, cap)
    spends = [
        Spend(at=NOW - timedelta(seconds=age * seconds), run_id="r", usd=usd) for age, usd in spent
    ]
    room = window.room_in_s(spends, NOW)
    if room == 0:
        assert window.spent(spends, NOW) < cap
        assert window.allows(spends, NOW, EPSILON_USD)
        return
    if math.isinf(room):
        assert cap == 0
        return
    later = NOW + timedelta(seconds=room)
    assert window.spent(spends, later) < cap
    assert window.allows(spends, later, EPSILON_USD)
    assert window.room_in_s(spends, later) == 0
    before = later - MICROSECOND
    assert window.spent(spends, before) >= cap - TOLERANCE
    assert window.room_in_s(spends, before) > 0


@given(
    times=st.lists(st.integers(0, 3 * 86400), max_size=30).map(sorted),
)
def test_budget_record_keeps_exactly_the_spends_a_day_window_can_see(times):
    """After each record, the kept spends are those younger than one day, oldest first."""
    budget = Budget()
    recorded = []
    for i, offset in enumerate(times):
        at = NOW + timedelta(seconds=offset)
        budget.record(at=at, run_id=f"r{i}", usd=0.5, tokens=1)
        recorded.append((at, f"r{i}"))
        visible = [run for when, run in recorded if when > at - timedelta(days=1)]
        assert [s.run_id for s in budget.spends] == visible
