"""The ledger: guarded actions by name and key, pruned by age, never forgetting the unresolved."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from agentops._infra.timestamps import iso_second
from agentops.model.ledger import Entry, Ledger, LedgerMap, unresolved_of

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
STATUSES = ("committed", "undone", "failed", "unresolved")
LEDGER_MAP = TypeAdapter(LedgerMap)


def ledger_with(*entries: tuple[str, str, str, float]) -> Ledger:
    """A ledger holding (action, key, status, days before T0) entries, put in that order."""
    ledger = Ledger()
    for action, key, status, days in entries:
        when = iso_second(T0 - timedelta(days=days))
        ledger.put(action, key, Entry(when, status, "r", "null"))  # type: ignore[arg-type]
    return ledger


def keys(ledger: Ledger) -> dict[str, set[str]]:
    """action -> the keys it still has."""
    return {action: set(entries) for action, entries in ledger.entries.items()}


def cutoff(days: float) -> str:
    """The prune cutoff that many days before T0, as the runner passes it."""
    return iso_second(T0 - timedelta(days=days))


# get and put


def test_put_then_get_returns_the_entry():
    """An entry put under (action, key) is what get returns; other keys have none."""
    ledger = Ledger()
    entry = Entry(iso_second(T0), "committed", "run-1", '{"url":"u1"}')
    ledger.put("publish", "post-1", entry)
    assert ledger.get("publish", "post-1") == entry
    assert ledger.get("publish", "post-1").result == {"url": "u1"}
    assert ledger.get("publish", "post-2") is None
    assert ledger.get("notify", "post-1") is None


def test_put_replaces_the_previous_state_of_the_same_key():
    """One entry per (action, key): the latest put wins."""
    ledger = ledger_with(("publish", "k", "unresolved", 1), ("publish", "k", "committed", 0))
    assert len(ledger) == 1
    assert ledger.get("publish", "k").status == "committed"


def test_len_counts_entries_across_actions():
    """len() is the number of (action, key) entries, not of actions."""
    assert len(Ledger()) == 0
    ledger = ledger_with(("publish", "a", "committed", 0), ("publish", "b", "failed", 0))
    ledger.put("notify", "a", Entry(iso_second(T0), "committed", "r", "null"))
    assert len(ledger) == 3


def test_a_ledger_is_changed_once_something_is_put():
    """A ledger as loaded is unchanged (nothing to save); a put changes it."""
    ledger = Ledger({"publish": {"k": f"{iso_second(T0)} committed r null"}}, folded="run-1")
    assert not ledger.changed
    assert ledger.folded == "run-1"
    ledger.put("publish", "j", Entry(iso_second(T0), "failed", "r", "null"))
    assert ledger.changed


def test_an_entry_result_garbled_by_hand_reads_as_text():
    """A result that is not JSON any more is shown as the text it is, not an error."""
    entry = Entry.parse(f"{iso_second(T0)} committed r {{not json")
    assert entry.result == "{not json"


# prune


def test_prune_drops_settled_entries_older_than_the_cutoff():
    """Committed, undone and failed entries older than the cutoff go; newer ones stay."""
    ledger = ledger_with(
        ("publish", "old-c", "committed", 40),
        ("publish", "old-u", "undone", 31),
        ("publish", "old-f", "failed", 90),
        ("publish", "new-c", "committed", 29),
        ("publish", "new-f", "failed", 0),
    )
    assert ledger.prune(before=cutoff(30)) == 3
    assert keys(ledger) == {"publish": {"new-c", "new-f"}}


def test_prune_keeps_unresolved_entries_whatever_their_age():
    """An action whose effect is unknown is never forgotten, however old."""
    ledger = ledger_with(
        ("publish", "ancient", "unresolved", 3650),
        ("publish", "old", "committed", 3650),
    )
    assert ledger.prune(before=cutoff(30)) == 1
    assert keys(ledger) == {"publish": {"ancient"}}
    assert ledger.get("publish", "ancient").status == "unresolved"


def test_prune_keeps_an_entry_exactly_at_the_cutoff():
    """The cutoff is exclusive: an entry changed at that very second stays."""
    ledger = ledger_with(("publish", "edge", "committed", 30))
    assert ledger.prune(before=cutoff(30)) == 0
    assert keys(ledger) == {"publish": {"edge"}}
    assert ledger.prune(before=iso_second(T0 - timedelta(days=30) + timedelta(seconds=1)))
    assert ledger.entries == {}


def test_prune_removes_actions_left_empty():
    """An action whose every entry was pruned disappears from the ledger."""
    ledger = ledger_with(
        ("publish", "a", "committed", 60),
        ("notify", "b", "committed", 60),
        ("notify", "c", "committed", 1),
    )
    ledger.prune(before=cutoff(30))
    assert keys(ledger) == {"notify": {"c"}}


def test_prune_of_an_empty_ledger_drops_nothing():
    """Nothing to prune, nothing dropped, nothing to save."""
    ledger = Ledger()
    assert ledger.prune(before=cutoff(30)) == 0
    assert ledger.entries == {}
    assert not ledger.changed


def test_prune_marks_the_ledger_changed_only_when_it_dropped_something():
    """A prune that keeps everything leaves a loaded ledger unchanged, so it is not rewritten."""
    loaded = Ledger(ledger_with(("publish", "a", "committed", 1)).entries)
    loaded.prune(before=cutoff(30))
    assert not loaded.changed
    loaded.prune(before=cutoff(0))
    assert loaded.changed
    assert loaded.entries == {}


def test_a_pruned_ledger_still_validates():
    """After pruning, the entries still validate as the ledger file's entries."""
    ledger = ledger_with(("publish", "a", "committed", 60), ("publish", "b", "unresolved", 60))
    ledger.prune(before=cutoff(30))
    assert LEDGER_MAP.validate_python(ledger.entries) == ledger.entries


@given(
    entries=st.lists(
        st.tuples(
            st.sampled_from(["publish", "notify", "tweet"]),
            st.text(min_size=1, max_size=4),
            st.sampled_from(STATUSES),
            st.floats(0, 400, allow_nan=False),
        ),
        max_size=40,
    ),
    keep_days=st.floats(0, 365, allow_nan=False),
)
def test_prune_keeps_exactly_the_recent_and_the_unresolved(entries, keep_days):
    """After prune: every recent or unresolved entry is there, every old settled one is gone."""
    ledger = ledger_with(*entries)
    before_prune = {
        (action, key): (Entry.parse(line).status, Entry.parse(line).at)
        for action, found in ledger.entries.items()
        for key, line in found.items()
    }
    limit = cutoff(keep_days)
    dropped = ledger.prune(before=limit)
    expected = {
        where
        for where, (status, at) in before_prune.items()
        if status == "unresolved" or at >= limit
    }
    after = {(action, key) for action, found in ledger.entries.items() for key in found}
    assert after == expected
    assert dropped == len(before_prune) - len(expected)
    assert all(ledger.entries.values())  # no empty action left behind


# unresolved


def test_unresolved_lists_every_action_whose_effect_is_unknown():
    """(action, key) of each unresolved entry, across actions; settled ones are left out."""
    ledger = ledger_with(
        ("publish", "a", "unresolved", 0),
        ("publish", "b", "committed", 0),
        ("notify", "c", "unresolved", 0),
        ("notify", "d", "failed", 0),
        ("notify", "e", "undone", 0),
    )
    assert sorted(ledger.unresolved()) == [("notify", "c"), ("publish", "a")]
    assert sorted(unresolved_of(ledger.entries)) == sorted(ledger.unresolved())
    assert Ledger().unresolved() == []
    assert unresolved_of({}) == []


def test_a_commit_after_an_intent_resolves_it():
    """Once the commit is recorded, the action is no longer unresolved."""
    ledger = ledger_with(("publish", "a", "unresolved", 1), ("publish", "a", "committed", 0))
    assert ledger.unresolved() == []


def test_unresolved_of_skips_entries_that_are_not_lines():
    """A migrated document not yet validated does not crash the summary."""
    entries = {"publish": {"a": f"{iso_second(T0)} unresolved r null", "b": 7}}
    assert unresolved_of(entries) == [("publish", "a")]  # type: ignore[arg-type]


# rows


def test_rows_list_the_unresolved_or_every_entry_newest_first():
    """`agentops ledger` shows unresolved entries, or all of them, the newest on top."""
    ledger = ledger_with(
        ("publish", "old", "committed", 3),
        ("publish", "stuck", "unresolved", 2),
        ("notify", "new", "failed", 1),
    )
    ledger.put("publish", "done", Entry(iso_second(T0), "committed", "run-9", '{"url":"u"}'))
    assert [row["key"] for row in ledger.rows(every=True)] == ["done", "new", "stuck", "old"]
    assert ledger.rows(every=True)[0] == {
        "action": "publish",
        "key": "done",
        "status": "committed",
        "at": "2026-11-22T12:00:00Z",
        "run_id": "run-9",
        "result": {"url": "u"},
    }
    assert [(r["action"], r["key"]) for r in ledger.rows(every=False)] == [("publish", "stuck")]


# timestamps of entries (iso_second lives in agentops._infra.timestamps; the ledger relies on it)


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
    """Every timestamp has the same 20 characters shape the ledger's entries require."""
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


# validation of entries, as the ledger file is read


def valid_entry() -> Entry:
    """A ledger entry as the ledger file holds it."""
    return ledger_with(("publish", "k", "committed", 0)).get("publish", "k")


def entries_with(entry: Entry | str) -> dict:
    """A ledger document's entries holding ``entry`` as publish.k."""
    line = entry.line if isinstance(entry, Entry) else entry
    return {"publish": {"k": line}}


@pytest.mark.parametrize("status", STATUSES)
def test_every_status_is_accepted(status):
    """The four statuses validate."""
    entries = LEDGER_MAP.validate_python(entries_with(valid_entry()._replace(status=status)))
    assert Entry.parse(entries["publish"]["k"]).status == status


@pytest.mark.parametrize("status", ["done", "COMMITTED", "", None, 1])
def test_a_bad_status_is_refused(status):
    """A status outside the four is a validation error, not a silently odd ledger."""
    with pytest.raises(ValidationError, match="should match pattern"):
        LEDGER_MAP.validate_python(entries_with(valid_entry()._replace(status=status)))


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
        LEDGER_MAP.validate_python(entries_with(valid_entry()._replace(at=at)))


def test_a_missing_field_is_refused():
    """An entry without its run_id does not validate."""
    entry = valid_entry()
    with pytest.raises(ValidationError, match="should match pattern"):
        LEDGER_MAP.validate_python(entries_with(f"{entry.at} {entry.status} {entry.result_json}"))


def test_an_entry_is_one_line_time_first():
    """People read an entry as one line: time, status, run, result."""
    line = valid_entry().line
    assert line.startswith(iso_second(T0))
    assert line.split(" ")[1] == "committed"
    assert "\n" not in line
