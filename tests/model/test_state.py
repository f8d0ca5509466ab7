"""The agent's state model: what it holds, what it refuses, how a version-1 file moves forward."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from agentops.model.state import (
    MAX_ERRORS,
    MAX_REVIEW,
    SCHEMA_VERSION,
    AgentState,
    ErrorRecord,
    Held,
    LastRun,
    LedgerSummary,
    Metrics,
    migrate,
)
from agentops.model.status import RunStatus

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LEDGER = {
    "publish": {
        "post-1": "2026-11-22T12:00:00Z committed run-1 {}",
        "post-2": "2026-11-22T12:00:01Z unresolved run-1 null",
    },
    "notify": {"n-1": "2026-11-22T12:00:02Z unresolved run-1 null"},
}


def round_trip(state: AgentState) -> AgentState:
    """The state as it reads back from the JSON it is saved as."""
    return AgentState.model_validate_json(state.model_dump_json())


def held(n: int, *, escalated: bool = False) -> Held:
    """The n-th result held for review."""
    return Held(id=f"h{n}", run_id=f"run-{n}", at=T0, escalated=escalated, result={"n": n})


# the model


def test_a_fresh_state_is_version_2_with_nothing_in_it():
    """A new agent's state: the current schema, zero counters, an empty ledger summary."""
    state = AgentState(agent="pub")
    assert state.schema_version == SCHEMA_VERSION == 2
    assert state.metrics == Metrics()
    assert state.ledger_summary == LedgerSummary(entries=0, unresolved=[])
    assert (state.last_run, state.errors, state.review, state.data) == (None, [], [], {})


def test_statuses_are_the_run_statuses():
    """last_run.status and an error's category read as RunStatus, and are saved as their words."""
    state = AgentState.model_validate(
        {
            "agent": "pub",
            "last_run": {
                "run_id": "r",
                "started_at": T0,
                "finished_at": T0,
                "status": "crashed",
                "duration_s": 0,
            },
            "errors": [{"at": T0, "run_id": "r", "category": "timeout", "message": "slow"}],
        }
    )
    assert state.last_run.status is RunStatus.CRASHED
    assert state.errors[0].category is RunStatus.TIMEOUT
    saved = json.loads(state.model_dump_json())
    assert (saved["last_run"]["status"], saved["errors"][0]["category"]) == ("crashed", "timeout")


@pytest.mark.parametrize("word", ["lunch", "CRASHED", "", 1])
def test_a_status_that_is_not_a_run_status_is_refused(word):
    """A hand-edited status outside RunStatus is refused when read, not a crash at a run's end."""
    with pytest.raises(ValidationError, match="status"):
        LastRun(run_id="r", started_at=T0, finished_at=T0, status=word, duration_s=0)
    with pytest.raises(ValidationError, match="category"):
        ErrorRecord(at=T0, run_id="r", category=word, message="m")


def test_timestamps_are_saved_as_utc_ending_in_z():
    """Every timestamp is written as UTC ISO 8601 text ending in Z, whatever zone it came in."""
    plus_two = timezone(timedelta(hours=2))
    state = AgentState(agent="pub", last_success_at=datetime(2026, 11, 22, 14, tzinfo=plus_two))
    state.rate_limits["runs"] = [T0 + timedelta(microseconds=250_000)]
    saved = json.loads(state.model_dump_json())
    assert saved["last_success_at"] == "2026-11-22T12:00:00Z"
    assert saved["rate_limits"]["runs"] == ["2026-11-22T12:00:00.250000Z"]


def test_a_timestamp_without_a_zone_is_read_as_utc():
    """A hand-edited timestamp without a zone means UTC, like every one agentops writes."""
    state = AgentState.model_validate_json(
        '{"agent": "pub", "last_success_at": "2026-11-22T12:00"}'
    )
    assert state.last_success_at == T0
    assert state.last_success_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("moment", ["1969-12-31T23:59:59Z", "2201-01-01T00:00:00Z", "9999-12-31"])
def test_a_timestamp_outside_1970_to_2200_is_refused(moment):
    """A hand-edited year 9999 would overflow the first window added to it: refused when read."""
    with pytest.raises(ValidationError, match="between 1970 and 2200"):
        AgentState.model_validate({"agent": "pub", "last_success_at": moment})


@pytest.mark.parametrize("moment", ["1970-01-01T00:00:00+05:00", "2200-12-31T23:00:00-05:00"])
def test_a_timestamp_outside_the_years_in_utc_is_refused_whatever_its_zone(moment):
    """Whatever loads must save in a form that loads again: the UTC instant decides."""
    with pytest.raises(ValidationError, match="between 1970 and 2200"):
        AgentState.model_validate({"agent": "pub", "last_success_at": moment})


@pytest.mark.parametrize("moment", ["1969-12-31T20:00:00-05:00", "2201-01-01T03:00:00+05:00"])
def test_a_timestamp_inside_the_years_in_utc_is_accepted_whatever_its_zone(moment):
    """A time within 1970 to 2200 in UTC loads, even written in a zone where the year differs."""
    state = AgentState.model_validate({"agent": "pub", "last_success_at": moment})
    assert round_trip(state) == state


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_agent_data_holding_a_number_that_is_not_finite_is_refused(value):
    """NaN or infinity in data or a held result would save as a file the next run cannot read."""
    with pytest.raises(ValidationError, match="not finite"):
        AgentState(agent="pub", data={"deep": [{"x": value}]})
    with pytest.raises(ValidationError, match="not finite"):
        Held(id="h", run_id="r", at=T0, result={"x": value})
    state = AgentState(agent="pub")
    with pytest.raises(ValidationError, match="not finite"):
        state.data = {"x": value}
    assert state.data == {}


@pytest.mark.parametrize(
    "change",
    [
        {"metrics": {"runs": -1}},
        {"metrics": {"cost_usd": math.nan}},
        {"review": [{"id": "h", "run_id": "r", "at": T0, "confidence": 1.5, "result": {}}]},
        {"ledger_summary": {"entries": -1}},
        {"colour": "blue"},
    ],
    ids=["negative-count", "nan-cost", "confidence-above-1", "negative-entries", "unknown-key"],
)
def test_values_that_make_no_sense_are_refused(change):
    """Negative counters, NaN costs, confidences above 1 and unknown keys are refused."""
    with pytest.raises(ValidationError):
        AgentState.model_validate({"agent": "pub", **change})


def test_assignments_are_validated():
    """A wrong value fails where it is set, instead of in the file the next run reads."""
    state = AgentState(agent="pub")
    with pytest.raises(ValidationError):
        state.last_success_at = "yesterday"
    with pytest.raises(ValidationError):
        state.journal_folded = 7
    assert state == AgentState(agent="pub")


def test_a_full_state_round_trips_through_json():
    """Everything a state holds reads back identical from the JSON it is saved as."""
    state = AgentState(
        agent="pub",
        last_run=LastRun(
            run_id="run-7",
            started_at=T0,
            finished_at=T0 + timedelta(seconds=3.25),
            status=RunStatus.FAILED,
            duration_s=3.25,
            error="feed timed out",
            degraded=True,
        ),
        last_success_at=T0 - timedelta(hours=1),
        metrics=Metrics(runs=7, succeeded=5, failed=1, rejected=1, cost_usd=0.5, tokens=900),
        rate_limits={"runs": [T0], "action:publish": [T0, T0 + timedelta(minutes=5)]},
        review=[held(1), held(2, escalated=True)],
        ledger_summary=LedgerSummary.of(LEDGER),
        journal_folded="run-7",
        data={"seen": ["a", "b"], "cursor": 42, "nested": {"ok": True, "ratio": 0.5}},
    )
    state.budget.reserve("call-1", at=T0, run_id="run-7", usd=0.25, tokens=100)
    state.record_error(ErrorRecord(at=T0, run_id="run-7", category="timeout", message="slow"))
    assert round_trip(state) == state


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
COUNTS = st.integers(min_value=0)


@given(
    data=st.dictionaries(st.text(), JSON_VALUES, max_size=6),
    metrics=st.builds(
        Metrics, runs=COUNTS, succeeded=COUNTS, failed=COUNTS, rejected=COUNTS, skipped=COUNTS
    ),
)
def test_any_json_data_and_metrics_survive_a_round_trip(data, metrics):
    """Arbitrary JSON in data, and any metrics, come back exactly as saved."""
    loaded = round_trip(AgentState(agent="pub", data=data, metrics=metrics))
    assert loaded.data == data
    assert loaded.metrics == metrics


# record_error and hold


def test_record_error_keeps_only_the_most_recent():
    """Only the MAX_ERRORS most recent errors are kept, oldest first."""
    state = AgentState(agent="pub")
    for n in range(MAX_ERRORS + 5):
        state.record_error(
            ErrorRecord(at=T0, run_id=f"run-{n}", category="failed", message=f"error {n}")
        )
    expected = [f"run-{n}" for n in range(5, MAX_ERRORS + 5)]
    assert [error.run_id for error in state.errors] == expected
    assert [error.run_id for error in round_trip(state).errors] == expected


def test_hold_keeps_every_result_up_to_the_limit():
    """Below MAX_REVIEW nothing is dropped, and results wait in the order they came."""
    state = AgentState(agent="pub")
    for n in range(MAX_REVIEW):
        assert state.hold(held(n)) == []
    assert [h.id for h in state.review] == [f"h{n}" for n in range(MAX_REVIEW)]


def test_hold_drops_the_oldest_held_result_beyond_the_limit():
    """One more than MAX_REVIEW drops the oldest result held for review, and says which."""
    state = AgentState(agent="pub")
    for n in range(MAX_REVIEW):
        state.hold(held(n))
    dropped = state.hold(held(MAX_REVIEW))
    assert [h.id for h in dropped] == ["h0"]
    assert len(state.review) == MAX_REVIEW
    assert state.review[-1].id == f"h{MAX_REVIEW}"


def test_hold_keeps_escalated_results_while_others_can_go():
    """A person was told of each escalation: held results are dropped before escalated ones."""
    state = AgentState(agent="pub")
    state.hold(held(0, escalated=True))
    state.hold(held(1, escalated=True))
    for n in range(2, MAX_REVIEW):
        state.hold(held(n))
    dropped = state.hold(held(MAX_REVIEW, escalated=True))
    assert [h.id for h in dropped] == ["h2"]
    assert [h.id for h in state.review[:2]] == ["h0", "h1"]


def test_hold_drops_the_oldest_escalation_when_nothing_else_is_left():
    """With only escalated results waiting, the oldest one goes."""
    state = AgentState(agent="pub")
    for n in range(MAX_REVIEW + 1):
        dropped = state.hold(held(n, escalated=True))
    assert [h.id for h in dropped] == ["h0"]
    assert len(state.review) == MAX_REVIEW


# Metrics


@pytest.mark.parametrize(
    ("status", "counted"),
    [
        ("succeeded", {"runs": 1, "succeeded": 1}),
        ("held", {"runs": 1, "held": 1}),
        ("failed", {"runs": 1, "failed": 1}),
        ("timeout", {"runs": 1, "failed": 1}),
        ("interrupted", {"runs": 1, "failed": 1}),
        ("crashed", {"runs": 1, "failed": 1}),
        ("escalated", {"runs": 1, "escalated": 1}),
        ("rejected", {"runs": 1, "rejected": 1}),
        ("rate_limited", {"runs": 1, "stopped": 1}),
        ("budget_exceeded", {"runs": 1, "stopped": 1}),
        ("skipped", {"skipped": 1}),
        ("aborted", {}),
    ],
)
def test_count_adds_a_run_where_agentops_status_shows_it(status, counted):
    """Executed runs add to `runs` and their counter; a skip only to `skipped`; an abort nowhere."""
    metrics = Metrics()
    metrics.count(RunStatus(status))
    assert {name: value for name, value in metrics.model_dump().items() if value} == counted


def test_every_run_status_is_counted_somewhere_or_deliberately_nowhere():
    """No status is missing from the metrics: only an aborted run counts nowhere."""
    uncounted = []
    for status in RunStatus:
        metrics = Metrics()
        metrics.count(status)
        if metrics == Metrics():
            uncounted.append(status)
    assert uncounted == [RunStatus.ABORTED]


def test_add_cost_sums_money_and_tokens_without_float_noise():
    """0.1 + 0.2 dollars is 0.3 in the metrics, not 0.30000000000000004."""
    metrics = Metrics()
    metrics.add_cost(0.1, 100)
    metrics.add_cost(0.2, 50)
    assert (metrics.cost_usd, metrics.tokens) == (0.3, 150)


def test_add_cost_takes_back_a_reservation_settled_for_less_but_never_below_zero():
    """Settling subtracts the difference; a total never goes negative."""
    metrics = Metrics()
    metrics.add_cost(0.5, 1000)
    metrics.add_cost(-0.375, -700)
    assert (metrics.cost_usd, metrics.tokens) == (0.125, 300)
    metrics.add_cost(-1.0, -1000)
    assert (metrics.cost_usd, metrics.tokens) == (0.0, 0)


# the ledger summary


def test_ledger_summary_counts_entries_and_names_the_unresolved():
    """What `agentops status` shows without reading the ledger."""
    summary = LedgerSummary.of(LEDGER)
    assert summary.entries == 3
    assert sorted(summary.unresolved) == [("notify", "n-1"), ("publish", "post-2")]
    assert LedgerSummary.of({}) == LedgerSummary()


# migrate


def test_migrate_moves_a_v1_ledger_out_of_the_state():
    """A version-1 document becomes version 2 with a summary; its ledger is handed back."""
    v1 = {"schema_version": 1, "agent": "pub", "ledger": LEDGER, "data": {"k": 1}}
    document, entries = migrate(v1)
    assert entries == LEDGER
    assert document == {
        "schema_version": 2,
        "agent": "pub",
        "data": {"k": 1},
        "ledger_summary": {
            "entries": 3,
            "unresolved": [("publish", "post-2"), ("notify", "n-1")],
        },
    }
    state = AgentState.model_validate(document)
    assert state.ledger_summary.entries == 3


def test_migrate_leaves_the_callers_document_alone():
    """The document read from disk is not changed: the file's bytes are what they were."""
    v1 = {"agent": "pub", "ledger": LEDGER}
    migrate(v1)
    assert v1 == {"agent": "pub", "ledger": LEDGER}


def test_a_document_without_a_version_is_version_1():
    """Files made before versions were written are version 1, with or without a ledger."""
    document, entries = migrate({"agent": "pub"})
    assert document["schema_version"] == 2
    assert entries == {}
    assert AgentState.model_validate(document) == AgentState(agent="pub")


@pytest.mark.parametrize("version", [2, 3, 99])
def test_migrate_leaves_current_and_future_documents_as_they_are(version):
    """Version 2 needs nothing; a newer version is handed back for the caller to refuse."""
    document = {"schema_version": version, "agent": "pub", "shiny": []}
    assert migrate(document) == (document, None)
