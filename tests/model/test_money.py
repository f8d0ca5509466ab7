"""Money and tokens kept in the state: spends recorded, reserved and settled, pruned past a day.

What the spends are checked against (the windows) is in tests/guards/test_costs.py;
those are used here only to read the totals a budget holds.
"""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from agentops.guards.costs import Window
from agentops.model.money import LONGEST_WINDOW_S, Budget, BudgetEntry
from suite import T0, budget_of, spend

HOURLY = Window("cost_usd_per_hour", 3600.0, 1.0)
MICROSECOND = timedelta(microseconds=1)
NOW = T0


def test_record_after_the_clock_went_back_stamps_later_spends_with_its_time():
    """A spend recorded at an earlier time pulls the spends ahead of it back to that time."""
    budget = Budget()
    budget.record(at=NOW - timedelta(minutes=30), run_id="a", usd=0.25, tokens=0)
    budget.record(at=NOW + timedelta(minutes=30), run_id="b", usd=0.25, tokens=0)
    budget.record(at=NOW, run_id="c", usd=0.25, tokens=0)  # the clock stepped back
    assert [(s.run_id, s.at) for s in budget.spends] == [
        ("a", NOW - timedelta(minutes=30)),
        ("b", NOW),
        ("c", NOW),
    ]
    assert HOURLY.spent(budget, NOW) == 0.75


def test_record_keeps_what_was_spent():
    """A recorded spend holds its time, run, dollars and tokens, and is no reservation."""
    budget = Budget()
    budget.record(at=NOW, run_id="r1", usd=0.5, tokens=5)
    assert budget.spends == [BudgetEntry(at=NOW, run_id="r1", usd=0.5, tokens=5)]
    assert budget.pending() == []


def test_a_reservation_counts_against_the_caps_until_settled():
    """The worst case of a model call is held in every window before the call is made."""
    budget = budget_of(spend(30, 0.25))
    budget.reserve("call-1", at=NOW, run_id="r", usd=0.5, tokens=1000)
    assert HOURLY.spent(budget, NOW) == 0.75
    assert [s.id for s in budget.pending()] == ["call-1"]


def test_settle_replaces_the_reservation_by_what_it_cost():
    """Settling returns what was reserved; the window then holds the real cost, not pending."""
    budget = budget_of(spend(30, 0.25))
    budget.reserve("call-1", at=NOW, run_id="r", usd=0.5, tokens=1000)
    assert HOURLY.spent(budget, NOW) == 0.75  # checked before settling, on purpose
    was = budget.settle("call-1", usd=0.125, tokens=300)
    assert was is not None
    assert (was.id, was.usd, was.tokens) == ("call-1", 0.5, 1000)
    assert HOURLY.spent(budget, NOW) == 0.375
    assert budget.pending() == []
    assert budget.spends[-1] == BudgetEntry(at=NOW, run_id="r", usd=0.125, tokens=300)


def test_settling_an_older_reservation_updates_every_window_total():
    """A reservation settled after later spends changes the totals those spends are part of."""
    budget = Budget()
    budget.reserve("a", at=NOW - timedelta(minutes=20), run_id="r", usd=0.5, tokens=0)
    budget.record(at=NOW - timedelta(minutes=10), run_id="r", usd=0.25, tokens=0)
    assert HOURLY.spent(budget, NOW) == 0.75
    budget.settle("a", usd=0.0, tokens=0)
    assert HOURLY.spent(budget, NOW) == 0.25
    assert HOURLY.room_in_s(budget, NOW) == 0


def test_settle_of_an_unknown_or_settled_reservation_changes_nothing():
    """A settle without its reservation (or a second settle) returns None and spends nothing."""
    budget = Budget()
    assert budget.settle("nope", usd=1.0, tokens=1) is None
    budget.reserve("a", at=NOW, run_id="r", usd=0.5, tokens=0)
    assert budget.settle("a", usd=0.25, tokens=0) is not None
    assert budget.settle("a", usd=0.75, tokens=0) is None
    assert HOURLY.spent(budget, NOW) == 0.25


def test_a_reservation_left_by_a_dead_run_is_still_pending_after_a_reload():
    """Saved and read back, an unsettled reservation is still held against the caps."""
    budget = Budget()
    budget.reserve("call-1", at=NOW, run_id="r", usd=0.5, tokens=1000)
    loaded = Budget.model_validate_json(budget.model_dump_json())
    assert [s.id for s in loaded.pending()] == ["call-1"]
    assert HOURLY.spent(loaded, NOW) == 0.5


def test_prune_forgets_spends_a_day_old_or_older():
    """Pruning keeps the spends younger than a day, oldest first; the rest are dropped."""
    budget = Budget()
    start = NOW - timedelta(days=2)
    for hours in (0, 10, 30, 40, 47):
        budget.record(at=start + timedelta(hours=hours), run_id=f"r{hours}", usd=1.0, tokens=10)
    budget.prune(start + timedelta(hours=47))
    assert [s.run_id for s in budget.spends] == ["r30", "r40", "r47"]
    budget.record(at=start + timedelta(hours=54), run_id="r54", usd=0.5, tokens=5)
    budget.prune(start + timedelta(hours=54))
    assert [s.run_id for s in budget.spends] == ["r40", "r47", "r54"]
    assert budget.spends[-1] == BudgetEntry(
        at=start + timedelta(hours=54), run_id="r54", usd=0.5, tokens=5
    )


def test_prune_drops_a_spend_exactly_one_day_old():
    """The daily window is half-open, and so is what the state file keeps."""
    budget = budget_of(BudgetEntry(at=NOW, run_id="old", usd=1.0))
    budget.record(at=NOW + timedelta(days=1), run_id="new", usd=1.0, tokens=0)
    budget.prune(NOW + timedelta(days=1))
    assert [s.run_id for s in budget.spends] == ["new"]
    budget.record(at=NOW + timedelta(days=2) - MICROSECOND, run_id="newer", usd=1.0, tokens=0)
    budget.prune(NOW + timedelta(days=2) - MICROSECOND)
    assert [s.run_id for s in budget.spends] == ["new", "newer"]


def test_windows_are_right_after_pruning():
    """The totals a window reports after pruning are those it reported before."""
    budget = budget_of(spend(25 * 60, 3.0), spend(90, 2.0), spend(30, 0.5))
    daily = Window("cost_usd_per_day", LONGEST_WINDOW_S, 10.0)
    before = (HOURLY.spent(budget, NOW), daily.spent(budget, NOW))
    budget.prune(NOW)
    assert len(budget.spends) == 2
    assert (HOURLY.spent(budget, NOW), daily.spent(budget, NOW)) == before == (0.5, 2.5)


def test_spends_read_out_of_order_are_sorted():
    """A hand-edited list of spends is put back in time order when it is read."""
    budget = budget_of(spend(10, 0.1), spend(50, 0.2), spend(30, 0.3))
    assert [s.usd for s in budget.spends] == [0.2, 0.3, 0.1]


@pytest.mark.parametrize(
    "bad",
    [{"usd": -1.0}, {"usd": math.nan}, {"usd": math.inf}, {"usd": 2e9}, {"tokens": -1}, {"x": 1}],
)
def test_a_spend_that_could_not_be_saved_again_is_refused(bad):
    """Negative, non-finite or absurd amounts and unknown keys are refused when read."""
    with pytest.raises(ValidationError):
        BudgetEntry.model_validate({"at": NOW, "run_id": "r", **bad})


def test_budgets_holding_the_same_spends_are_equal():
    """Two budgets with the same spends are equal whether or not a window was checked."""
    checked, unchecked = budget_of(spend(10, 0.5)), budget_of(spend(10, 0.5))
    HOURLY.spent(checked, NOW)
    assert checked == unchecked


@given(times=st.lists(st.integers(0, 3 * 86400), max_size=30).map(sorted))
def test_prune_keeps_exactly_the_spends_a_day_window_can_see(times):
    """After each record and prune, the kept spends are those younger than one day, oldest first."""
    budget = Budget()
    recorded = []
    for i, offset in enumerate(times):
        at = NOW + timedelta(seconds=offset)
        budget.record(at=at, run_id=f"r{i}", usd=0.5, tokens=1)
        budget.prune(at)
        recorded.append((at, f"r{i}"))
        visible = [run for when, run in recorded if when > at - timedelta(days=1)]
        assert [s.run_id for s in budget.spends] == visible
        assert Window("d", LONGEST_WINDOW_S, 1e9).spent(budget, at) == 0.5 * len(visible)
