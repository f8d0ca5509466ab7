"""The ledger: guarded actions by name and key, pruned by age, never forgetting the unresolved."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from agentops.journal import apply
from agentops.ledger import Entry, iso_second, prune, unresolved
from agentops.state import AgentState

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
OP_OF = {"unresolved": "intent", "committed": "commit", "failed": "abort", "undone": "undone"}


def ledger_with(*entries: tuple[str, str, str, float]) -> AgentState:
    """A state whose ledger holds (action, key, status, days before T0) entries, made by apply()."""
    state = AgentState(agent="pub")
    for action, key, status, days in entries:
        when = T0 - timedelta(days=days)
        record = {"op": OP_OF[status], "run_id": "r", "at": when.isoformat()}
        apply(state, {**record, "action": action, "key": key})
    return state


def keys(state: AgentState) -> dict[str, set[str]]:
    """action -> the keys it still has."""
    return {action: set(entries) for action, entries in state.ledger.items()}


def cutoff(days: float) -> str:
    """The prune cutoff that many days before T0, as the runner passes it."""
    return iso_second(T0 - timedelta(days=days))


# prune


def test_prune_drops_settled_entries_older_than_the_cutoff():
    """Committed, undone and failed entries older than the cutoff go; newer ones stay."""
    state = ledger_with(
        ("publish", "old-c", "committed", 40),
        ("publish", "old-u", "undone", 31),
        ("publish", "old-f", "failed", 90),
        ("publish", "new-c", "committed", 29),
        ("publish", "new-f", "failed", 0),
    )
    assert prune(state.ledger, before=cutoff(30)) == 3
    assert keys(state) == {"publish": {"new-c", "new-f"}}


def test_prune_keeps_unresolved_entries_whatever_their_age():
    """An action whose effect is unknown is never forgotten, however old."""
    state = ledger_with(
        ("publish", "ancient", "unresolved", 3650),
        ("publish", "old", "committed", 3650),
    )
    assert prune(state.ledger, before=cutoff(30)) == 1
    assert keys(state) == {"publish": {"ancient"}}
    assert Entry.parse(state.ledger["publish"]["ancient"]).status == "unresolved"


def test_prune_keeps_an_entry_exactly_at_the_cutoff():
    """The cutoff is exclusive: an entry changed at that very second stays."""
    state = ledger_with(("publish", "edge", "committed", 30))
    assert prune(state.ledger, before=cutoff(30)) == 0
    assert keys(state) == {"publish": {"edge"}}
    assert prune(state.ledger, before=iso_second(T0 - timedelta(days=30) + timedelta(seconds=1)))
    assert state.ledger == {}


def test_prune_removes_actions_left_empty():
    """An action whose every entry was pruned disappears from the ledger."""
    state = ledger_with(
        ("publish", "a", "committed", 60),
        ("notify", "b", "committed", 60),
        ("notify", "c", "committed", 1),
    )
    prune(state.ledger, before=cutoff(30))
    assert keys(state) == {"notify": {"c"}}


def test_prune_of_an_empty_ledger_drops_nothing():
    """Nothing to prune, nothing dropped."""
    state = AgentState(agent="pub")
    assert prune(state.ledger, before=cutoff(30)) == 0
    assert state.ledger == {}


def test_a_pruned_ledger_is_still_a_valid_state():
    """After pruning, the state still validates and round-trips through JSON."""
    state = ledger_with(("publish", "a", "committed", 60), ("publish", "b", "unresolved", 60))
    prune(state.ledger, before=cutoff(30))
    assert AgentState.model_validate_json(state.model_dump_json()) == state


STATUSES = st.sampled_from(list(OP_OF))


@given(
    entries=st.lists(
        st.tuples(
            st.sampled_from(["publish", "notify", "tweet"]),
            st.text(min_size=1, max_size=4),
            STATUSES,
            st.floats(0, 400, allow_nan=False),
        ),
        max_size=40,
    ),
    keep_days=st.floats(0, 365, allow_nan=False),
)
def test_prune_keeps_exactly_the_recent_and_the_unresolved(entries, keep_days):
    """After prune: every recent or unresolved entry is there, every old settled one is gone."""
    state = ledger_with(*entries)
    before_prune = {
        (action, key): (Entry.parse(line).status, Entry.parse(line).at)
        for action, found in state.ledger.items()
        for key, line in found.items()
    }
    limit = cutoff(keep_days)
    dropped = prune(state.ledger, before=limit)
    expected = {
        where
        for where, (status, at) in before_prune.items()
        if status == "unresolved" or at >= limit
    }
    after = {(action, key) for action, found in state.ledger.items() for key in found}
    assert after == expected
    assert dropped == len(before_prune) - len(expected)
    assert all(state.ledger.values())  # no empty action left behind


# unresolved


def test_unresolved_lists_every_action_whose_effect_is_unknown():
    """(action, key) of each unresolved entry, across actions; settled ones are left out."""
    state = ledger_with(
        ("publish", "a", "unresolved", 0),
        ("publish", "b", "committed", 0),
        ("notify", "c", "unresolved", 0),
        ("notify", "d", "failed", 0),
        ("notify", "e", "undone", 0),
    )
    assert sorted(unresolved(state.ledger)) == [("notify", "c"), ("publish", "a")]
    assert unresolved({}) == []


def test_a_commit_after_an_intent_resolves_it():
    """Once the commit is recorded, the action is no longer unresolved."""
    state = ledger_with(("publish", "a", "unresolved", 1), ("publish", "a", "committed", 0))
    assert unresolved(state.ledger) == []


# iso_second


def test_iso_second_drops_the_fraction_and_ends_in_z():
    """Seconds precision, UTC 'Z' suffix."""
    assert iso_second(datetime(2026, 11, 22, 3, 10, 0, 999_999, tzinfo=UTC)) == (
        "2026-11-22T03:10:00Z"
    )
    assert iso_second(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05Z"


MOMENTS = st.datetimes(
    min_value=datetime(1970, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
    max_value=datetime(9999, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@given(MOMENTS)
def test_iso_second_is_fixed_width(moment):
    """Every timestamp has the same 20 characters shape the ledger's schema requires."""
    text = iso_second(moment)
    assert len(text) == 20
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text)
    assert datetime.fromisoformat(text) == moment.replace(microsecond=0)


@given(MOMENTS, MOMENTS)
def test_iso_second_sorts_as_time(first, second):
    """Comparing the texts gives the same answer as comparing the times, to the second."""
    a, b = first.replace(microsecond=0), second.replace(microsecond=0)
    assert (iso_second(first) < iso_second(second)) == (a < b)
    assert (iso_second(first) == iso_second(second)) == (a == b)


# validation of entries in the state file


def valid_entry() -> Entry:
    """A ledger entry as the state file holds it, made by folding a commit."""
    state = ledger_with(("publish", "k", "committed", 0))
    return Entry.parse(state.model_dump(mode="json")["ledger"]["publish"]["k"])


def state_with(entry: Entry | str) -> dict:
    """A state document holding ``entry`` as ledger.publish.k."""
    line = entry.line if isinstance(entry, Entry) else entry
    return {"agent": "pub", "ledger": {"publish": {"k": line}}}


@pytest.mark.parametrize("status", ["committed", "undone", "failed", "unresolved"])
def test_every_status_is_accepted(status):
    """The four statuses validate."""
    state = AgentState.model_validate(state_with(valid_entry()._replace(status=status)))
    assert Entry.parse(state.ledger["publish"]["k"]).status == status


@pytest.mark.parametrize("status", ["done", "COMMITTED", "", None, 1])
def test_a_bad_status_is_refused(status):
    """A status outside the four is a validation error, not a silently odd ledger."""
    with pytest.raises(ValidationError, match="should match pattern"):
        AgentState.model_validate(state_with(valid_entry()._replace(status=status)))


@pytest.mark.parametrize(
    "at",
    [
        "2026-11-22T03:10:00",  # no zone
        "2026-11-22T03:10:00+00:00",  # not Z
        "2026-11-22T03:10:00.5Z",  # fraction: no longer fixed width
        "2026-11-22 03:10:00Z",  # space
        "2026-11-2T03:10:00Z",  # not zero-padded
        "22/11/2026",
        "",
    ],
)
def test_a_badly_formatted_at_is_refused(at):
    """Only the fixed-width UTC second form is accepted, so entries keep sorting as text."""
    with pytest.raises(ValidationError, match="should match pattern"):
        AgentState.model_validate(state_with(valid_entry()._replace(at=at)))


def test_a_missing_field_is_refused():
    """An entry without its run_id does not validate."""
    entry = valid_entry()
    with pytest.raises(ValidationError, match="should match pattern"):
        AgentState.model_validate(state_with(f"{entry.at} {entry.status} {entry.result_json}"))


def test_an_entry_is_one_line_time_first():
    """People read an entry as one line: time, status, run, result."""
    line = valid_entry().line
    assert line.startswith(iso_second(T0))
    assert line.split(" ")[1] == "committed"
    assert "\n" not in line
