"""Cost windows are sliding and half-open: a spend exactly one window old has left it."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentops.guards.costs import Window, full_window, windows
from agentops.model.money import EPSILON_USD, LONGEST_WINDOW_S, Budget, BudgetEntry
from agentops.project.config import Limits
from suite import SPENDING_AGENT, T0, FakeClock, agent_source, budget_of, logged, spend

HOURLY = Window("cost_usd_per_hour", 3600.0, 1.0)
MICROSECOND = timedelta(microseconds=1)
NOW = FakeClock(T0)()


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


def test_the_full_window_is_the_first_without_room_for_what_a_run_was_refused():
    """The hourly window has room for a cent, not for the 0.5 refused: it is full for 10 min."""
    limits = Limits(cost_usd_per_hour=1.0, cost_usd_per_day=5.0)
    budget = budget_of(spend(50, 0.5), spend(40, 0.4))
    assert full_window(limits, budget, NOW) is None
    budget.waiting_usd = 0.5
    assert full_window(limits, budget, NOW) == (Window("cost_usd_per_hour", 3600.0, 1.0), 600)
    assert full_window(Limits(cost_usd_per_day=5.0), budget, NOW) is None


# spent


def test_spent_sums_only_the_spends_inside_the_window():
    """Spends in the last hour count; older ones do not."""
    budget = budget_of(spend(90, 5.0), spend(59, 0.25), spend(1, 0.5), spend(0, 0.125))
    assert HOURLY.spent(budget, NOW) == 0.875


def test_spent_drops_a_spend_exactly_one_window_old():
    """A spend exactly an hour ago has left the window; a microsecond younger one has not."""
    exactly = BudgetEntry(at=NOW - timedelta(hours=1), run_id="r", usd=1.0)
    younger = BudgetEntry(at=exactly.at + MICROSECOND, run_id="r", usd=1.0)
    assert HOURLY.spent(budget_of(exactly), NOW) == 0
    assert HOURLY.spent(budget_of(younger), NOW) == 1.0


def test_spent_follows_spends_recorded_after_a_window_was_checked():
    """Checking a window, then spending, then checking again sees the new spend."""
    budget = budget_of(spend(30, 0.25))
    assert HOURLY.spent(budget, NOW) == 0.25
    budget.record(at=NOW, run_id="r", usd=0.5, tokens=0)
    assert HOURLY.spent(budget, NOW) == 0.75


# allows


def test_allows_up_to_the_cap_inclusive():
    """A spend landing exactly on the cap is allowed; one cent more is not."""
    budget = budget_of(spend(30, 0.75))
    assert HOURLY.allows(budget, NOW, 0.25)
    assert not HOURLY.allows(budget, NOW, 0.26)
    assert not HOURLY.allows(budget, NOW, 0.250001)


def test_allows_a_float_sum_that_lands_on_the_cap():
    """0.1 + 0.2 is 0.30000000000000004 in floats, but it is within a 0.3 cap."""
    window = Window("cost_usd_per_hour", 3600.0, 0.3)
    assert window.allows(budget_of(spend(10, 0.1)), NOW, 0.2)


def test_a_zero_cap_allows_only_free_spends():
    """A cap of 0 refuses any cost, but a zero-cost spend goes ahead."""
    window = Window("cost_usd_per_day", 86400.0, 0.0)
    assert not window.allows(Budget(), NOW, 0.01)
    assert window.allows(Budget(), NOW, 0.0)


# room_in_s


def test_room_in_s_is_zero_below_the_cap():
    """A window with room left reports no wait."""
    assert HOURLY.room_in_s(Budget(), NOW) == 0
    assert HOURLY.room_in_s(budget_of(spend(10, 0.5)), NOW) == 0


def test_room_in_s_waits_for_the_oldest_spend_to_leave():
    """A full window has room when enough of its oldest spends are one hour old."""
    budget = budget_of(spend(50, 0.5), spend(40, 0.5))
    assert HOURLY.room_in_s(budget, NOW) == 10 * 60


def test_room_in_s_waits_for_as_many_spends_as_needed_after_the_cap_was_lowered():
    """With a cap lowered below the spent total, spends leave until the total is below it."""
    budget = budget_of(spend(10, 1.0), spend(50, 1.0), spend(30, 1.0))  # unsorted on purpose
    lowered = Window("cost_usd_per_hour", 3600.0, 1.5)
    assert lowered.room_in_s(budget, NOW) == 30 * 60


def test_room_in_s_waits_for_room_for_the_spend_a_run_was_refused():
    """With need_usd, the wait lasts until that much fits, not merely until under the cap."""
    budget = budget_of(spend(50, 0.5), spend(40, 0.4))
    assert HOURLY.room_in_s(budget, NOW) == 0
    assert HOURLY.room_in_s(budget, NOW, need_usd=0.5) == 10 * 60
    assert HOURLY.room_in_s(budget, NOW, need_usd=1.0) == 20 * 60


def test_room_in_s_for_more_than_the_cap_is_forever():
    """A need larger than the whole cap never fits."""
    assert HOURLY.room_in_s(Budget(), NOW, need_usd=1.5) == math.inf


def test_room_in_s_of_a_zero_cap_is_forever():
    """A cap of 0 never has room, even with nothing spent."""
    window = Window("cost_usd_per_hour", 3600.0, 0.0)
    assert window.room_in_s(Budget(), NOW) == math.inf


def test_room_in_s_of_a_tiny_cap_is_not_zero_when_overspent():
    """A cap at or under EPSILON_USD, with a dollar spent in the window, has no room now."""
    # room_in_s promises 0 only when spent is below the cap: here 1.0 against 5e-10.
    window = Window("cost_usd_per_hour", 3600.0, EPSILON_USD / 2)
    budget = budget_of(spend(10, 1.0))
    assert window.spent(budget, NOW) > window.cap_usd
    assert window.room_in_s(budget, NOW) > 0


# spends from the future (the clock was stepped back)


def test_a_spend_from_the_future_counts_as_spent_now():
    """After the clock went back an hour, a spend stamped ahead of it still fills the window."""
    budget = budget_of(spend(-60, 1.0))
    assert HOURLY.spent(budget, NOW) == 1.0
    assert not HOURLY.allows(budget, NOW, 0.01)


def test_a_spend_from_the_future_blocks_no_longer_than_the_window():
    """A spend stamped a day ahead blocks an hourly window for an hour, not a day and an hour."""
    budget = budget_of(spend(-24 * 60, 1.0))
    assert HOURLY.room_in_s(budget, NOW) == 3600.0


def test_prune_brings_spends_from_the_future_back_to_now():
    """Saved after pruning, a spend from the future is stamped now and leaves an hour later."""
    budget = budget_of(spend(10, 0.25), spend(-120, 1.0))
    budget.prune(NOW)
    assert [s.at for s in budget.spends] == [NOW - timedelta(minutes=10), NOW]
    later = NOW + timedelta(hours=1)
    assert HOURLY.spent(budget, later) == 0
    assert HOURLY.room_in_s(budget, later) == 0


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
    clock = FakeClock(T0)
    budget = Budget()  # what the state file holds between runs
    admitted: list[BudgetEntry] = []
    for gap, asked in data.draw(attempts(LONGEST_WINDOW_S if daily is not None else 3600.0)):
        if gap is None:  # a run that comes back exactly when the gatekeeper said
            waits = [w.room_in_s(budget, clock()) for w in caps]
            wait = max([w for w in waits if math.isfinite(w)], default=0.0)
            clock.advance(seconds=wait)
        else:
            clock.advance(seconds=gap.total_seconds())
        usd = asked
        if isinstance(asked, str):  # probe the cap
            left = min((w.cap_usd - w.spent(budget, clock()) for w in caps), default=1.0)
            usd = max(0.0, left) + (1e-6 if asked == "over" else 0.0)
        if all(w.allows(budget, clock(), usd) for w in caps):
            budget.record(at=clock(), run_id="r", usd=usd, tokens=0)
            admitted.append(budget.spends[-1])
        budget.prune(clock())  # each run prunes as it commits
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
    budget = budget_of(
        *(
            BudgetEntry(at=NOW - timedelta(seconds=age * seconds), run_id="r", usd=usd)
            for age, usd in spent
        )
    )
    room = window.room_in_s(budget, NOW)
    if room == 0:
        assert window.spent(budget, NOW) < cap
        assert window.allows(budget, NOW, EPSILON_USD)
        return
    if math.isinf(room):
        assert cap == 0
        return
    later = NOW + timedelta(seconds=room)
    assert window.spent(budget, later) < cap
    assert window.allows(budget, later, EPSILON_USD)
    assert window.room_in_s(budget, later) == 0
    before = later - MICROSECOND
    assert window.spent(budget, before) >= cap - TOLERANCE
    assert window.room_in_s(budget, before) > 0


@given(
    seconds=SECONDS,
    cap=CAPS.filter(lambda cap: cap > 0),
    spent=st.lists(st.tuples(st.floats(-3, 1, exclude_max=True), AMOUNTS), min_size=1, max_size=12),
    need=st.floats(0, 1),
)
def test_a_window_never_blocks_for_longer_than_itself(seconds, cap, spent, need):
    """Spends from the future included, a need that fits the cap waits at most one window."""
    window = Window("w", seconds, cap)
    budget = budget_of(
        *(
            BudgetEntry(at=NOW - timedelta(seconds=age * seconds), run_id="r", usd=usd)
            for age, usd in spent
        )
    )
    assert window.room_in_s(budget, NOW, need_usd=min(need, cap)) <= seconds


# -- real runs ---------------------------------------------------------------------------


def spent(state: dict) -> float:
    return sum(spend["usd"] for spend in state["budget"]["spends"])


def test_daily_budget_stops_the_run_then_skips_the_next(project, invoke):
    """Spends of 0.3 under a 1.0 daily cap: stop at 0.9 (75, one line); the next skips quietly."""
    project.add_agent("spender", SPENDING_AGENT, "[limits]\ncost_usd_per_day = 1.0\n")
    first = invoke("run", "spender")
    assert (first.exit_code, first.stdout) == (75, "")
    assert first.stderr.count("\n") == 1
    assert "cost_usd_per_day 1 reached (0.9000 spent, 0.3 more asked)" in first.stderr
    state = project.state("spender")
    assert state["last_run"]["status"] == "budget_exceeded"
    assert spent(state) == pytest.approx(0.9)
    assert state["metrics"]["cost_usd"] == pytest.approx(0.9)
    assert len(logged(project, "spender", "budget.spent")) == 3

    second = invoke("run", "spender")
    assert (second.exit_code, second.stdout, second.stderr) == (75, "", "")
    assert spent(project.state("spender")) <= 1.0
    assert logged(project, "spender", "run.skipped")[-1]["reason"] == "budget"
    assert len(logged(project, "spender", "run.started")) == 1, "the second run never started"


def test_daily_budget_spent_to_the_cent_skips_the_next_run(project, invoke):
    """Spends of 0.25 fill cost_usd_per_day = 1.0 exactly: the next run is skipped (budget)."""
    project.add_agent("spender", SPENDING_AGENT, "[limits]\ncost_usd_per_day = 1.0\n")
    first = invoke("run", "spender", "-p", "usd=0.25")
    assert first.exit_code == 75
    assert spent(project.state("spender")) == pytest.approx(1.0)
    second = invoke("run", "spender", "-p", "usd=0.25")
    assert (second.exit_code, second.stdout, second.stderr) == (75, "", "")
    assert logged(project, "spender", "run.skipped")[-1]["reason"] == "budget"
    assert spent(project.state("spender")) == pytest.approx(1.0)


def test_a_cap_filled_exactly_is_announced_once(project, invoke):
    """Four spends of 0.25 fill cost_usd_per_day = 1.0 and succeed: that run says so, once.

    The run exits 0 with one line naming the cap (a cap reached exactly stops
    nothing, but every run after it is skipped); the skips that follow are quiet.
    """
    project.add_agent("spender", SPENDING_AGENT, "[limits]\ncost_usd_per_day = 1.0\n")
    first = invoke("run", "spender", "-p", "usd=0.25", "-p", "calls=4")
    assert (first.exit_code, first.stdout) == (0, "")
    assert first.stderr.count("\n") == 1
    assert "spender: succeeded; cost_usd_per_day 1 now spent: the next runs are skipped" in (
        first.stderr
    )
    assert project.state("spender")["last_run"]["status"] == "succeeded"
    (filled,) = logged(project, "spender", "budget.filled")
    assert (filled["window"], filled["cap_usd"]) == ("cost_usd_per_day", 1.0)
    for _ in range(2):
        skipped = invoke("run", "spender", "-p", "usd=0.25", "-p", "calls=4")
        assert (skipped.exit_code, skipped.stdout, skipped.stderr) == (75, "", "")
    assert len(logged(project, "spender", "budget.filled")) == 1
    assert spent(project.state("spender")) == pytest.approx(1.0)


def test_a_cap_left_with_room_says_nothing(project, invoke):
    """Three spends of 0.25 under 1.0: a quiet success, no budget.filled."""
    project.add_agent("spender", SPENDING_AGENT, "[limits]\ncost_usd_per_day = 1.0\n")
    run = invoke("run", "spender", "-p", "usd=0.25", "-p", "calls=3")
    assert (run.exit_code, run.stdout, run.stderr) == (0, "", "")
    assert logged(project, "spender", "budget.filled") == []


def test_tokens_per_run_caps_one_run_only(project, invoke):
    """tokens_per_run = 100: a run stops at its third spend of 40; the next run may spend again."""
    project.add_agent("tokens", SPENDING_AGENT, "[limits]\ntokens_per_run = 100\n")
    first = invoke("run", "tokens", "-p", "usd=0", "-p", "tokens=40", "-p", "calls=3")
    assert first.exit_code == 75
    assert "tokens_per_run 100 reached (80 used, 40 more asked)" in first.stderr
    state = project.state("tokens")
    assert state["last_run"]["status"] == "budget_exceeded"
    assert state["metrics"]["tokens"] == 80

    second = invoke("run", "tokens", "-p", "usd=0", "-p", "tokens=40", "-p", "calls=2")
    assert (second.exit_code, second.stderr) == (0, "")
    state = project.state("tokens")
    assert state["last_run"]["status"] == "succeeded"
    assert state["metrics"]["tokens"] == 160
    assert [s["tokens"] for s in state["budget"]["spends"]] == [40, 40, 40, 40]


# -- spends that are not amounts -----------------------------------------------------------


SPENDER = agent_source(
    """
    ctx.spend(usd=params.usd)
    return Result(ok=True)
    """,
    params="usd: float",
    result="ok: bool",
)


def test_a_spend_larger_than_the_cap_fails_loudly_and_does_not_block(project, clock):
    """One spend above the whole cap: exit 1 saying so; smaller spends still run."""
    project.add_agent("agent", SPENDER, "[limits]\ncost_usd_per_hour = 1.0\n")
    outcome = project.run(clock=clock, overrides={"usd": "2"})
    assert outcome.exit_code == 1
    assert "a single spend of 2 is more than cost_usd_per_hour 1" in outcome.message
    assert project.state("agent")["budget"]["waiting_usd"] == 0.0
    assert project.run(clock=clock, overrides={"usd": "0.1"}).exit_code == 0


@pytest.mark.parametrize("usd", ["1e10", "1e308"])
def test_implausible_spends_are_refused(project, clock, usd):
    """Amounts that would overflow the totals fail the run; the state stays loadable."""
    project.add_agent("agent", SPENDER)
    assert project.run(clock=clock, overrides={"usd": usd}).exit_code == 1
    assert project.run(clock=clock, overrides={"usd": "0.5"}).exit_code == 0
