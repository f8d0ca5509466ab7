"""The journal: records of side effects and costs, read back strictly, folded in exactly once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter

from agentops.model.journal import (
    Abort,
    Begin,
    Commit,
    Intent,
    Recovered,
    Reserve,
    Settle,
    Spend,
    Undo,
    UndoFailed,
    Undone,
    apply,
    encode,
    needs_ledger,
    parse_line,
    parse_lines,
    recover,
)
from agentops.model.ledger import Entry, Ledger, LedgerMap
from agentops.model.money import BudgetEntry
from agentops.model.state import AgentState

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """T0 plus that many seconds."""
    return T0 + timedelta(seconds=seconds)


def begin(seconds: float = 0, run_id: str = "run-1", kind: str = "run") -> Begin:
    """The begin record of agent pub's run."""
    return Begin(run_id=run_id, at=at(seconds), agent="pub", kind=kind)


def rec(model: type[BaseModel], seconds: float, run_id: str = "run-1", **fields) -> BaseModel:
    """A record of ``model`` at T0 + seconds."""
    return model(run_id=run_id, at=at(seconds), **fields)


def journal_bytes(*records: BaseModel) -> bytes:
    """The journal file holding ``records``, as a run writes it."""
    return b"".join(encode(r) for r in records)


def entry(ledger: Ledger, action: str, key: str) -> dict:
    """The ledger entry of ``(action, key)`` as an operator reads it, its result decoded."""
    found = ledger.get(action, key)
    assert found is not None
    return {"status": found.status, "at": found.at, "run_id": found.run_id, "result": found.result}


def folded(*records: BaseModel) -> tuple[AgentState, Ledger]:
    """A fresh state and ledger with ``records`` applied in order."""
    state, ledger = AgentState(agent="pub"), Ledger()
    for one in records:
        apply(state, ledger, one)
    return state, ledger


def crashed_run() -> list[BaseModel]:
    """The records of a run killed in the middle of its second publish."""
    return [
        begin(0),
        rec(Intent, 1, action="publish", key="post-1"),
        rec(Commit, 2, action="publish", key="post-1", result={"url": "u1"}),
        rec(Spend, 3, usd=0.25, tokens=1200),
        rec(Intent, 4, action="publish", key="post-2"),
    ]  # the process died here: no commit for post-2, the journal never dropped


# encode and parse_line


def test_encode_writes_one_json_line_per_record():
    """Each record is one compact JSON line with op, run_id, a UTC 'Z' time and its fields."""
    line = encode(rec(Commit, 1.5, action="publish", key="k", result={"n": 1}))
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert json.loads(line) == {
        "op": "commit",
        "run_id": "run-1",
        "at": "2026-11-22T12:00:01.500000Z",
        "action": "publish",
        "key": "k",
        "result": {"n": 1},
    }
    assert json.loads(encode(begin()))["at"] == "2026-11-22T12:00:00Z"


@pytest.mark.parametrize(
    "record",
    [
        begin(),
        begin(kind="approve"),
        rec(Intent, 1, action="publish", key="k"),
        rec(Commit, 1, action="publish", key="k", result=[1, "two", None, {"x": 0.5}]),
        rec(Abort, 1, action="publish", key="k", error="HTTPError: 500"),
        rec(Undo, 1, action="publish", key="k"),
        rec(Undone, 1, action="publish", key="k"),
        rec(UndoFailed, 1, action="publish", key="k", error="gone"),
        rec(Spend, 1, usd=0.1, tokens=7),
        rec(Reserve, 1, id="call-1", usd=0.5, tokens=1000),
        rec(Settle, 1, id="call-1", usd=0.25, tokens=400),
    ],
    ids=lambda record: record.op,
)
def test_every_record_reads_back_as_written(record):
    """parse_line gives back an equal record of the same kind."""
    assert parse_line(encode(record)) == record


def test_a_time_in_another_zone_is_read_as_utc():
    """A record stamped with an offset is the same instant, in UTC."""
    record = parse_line(b'{"op":"spend","run_id":"r","at":"2026-11-22T14:00:00+02:00","usd":1}')
    assert record.at == T0
    assert record.at.utcoffset() == timedelta(0)


def line_of(**fields) -> bytes:
    """A spend record's line with ``fields`` changed (None: left out)."""
    record = {"op": "spend", "run_id": "run-1", "at": "2026-11-22T12:00:00Z", "usd": 0.5}
    record.update(fields)
    return json.dumps({k: v for k, v in record.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"garbage", "not JSON"),
        (b"", "not JSON"),
        (b"[]", "record"),
        (line_of(op="note"), "does not match any of the expected tags"),
        (line_of(run_id=""), "run_id"),
        (line_of(run_id="run 1"), "run_id"),
        (line_of(at=None), "at: Field required"),
        (line_of(at="2026-11-22T12:00:00"), "must carry its zone"),
        (line_of(at="1969-12-31T23:59:59Z"), "between 1970 and 2200"),
        (line_of(at="2201-01-01T00:00:00Z"), "between 1970 and 2200"),
        (line_of(usd=-1), "usd"),
        (line_of(usd=2e9), "usd"),
        (line_of(tokens=10**13), "tokens"),
        (line_of(colour="blue"), "colour: Extra inputs are not permitted"),
        (b'{"op":"spend","run_id":"r","at":"2026-11-22T12:00:00Z","usd":NaN}', "usd"),
        (b'{"op":"spend","run_id":"r","at":"2026-11-22T12:00:00Z","usd":Infinity}', "usd"),
        (b'{"op":"spend","run_id":"r","at":"2026-11-22T12:00:00Z","usd":1e400}', "usd"),
        (b'{"op":"reserve","run_id":"r","at":"2026-11-22T12:00:00Z","id":""}', "id"),
        (b'{"op":"commit","run_id":"r","at":"2026-11-22T12:00:00Z","key":"k"}', "action"),
    ],
)
def test_parse_line_refuses_a_record_agentops_would_not_write(line, why):
    """Damaged or hand-made records are refused, saying what is wrong."""
    with pytest.raises(ValueError, match=why):
        parse_line(line)


@pytest.mark.parametrize("value", [b"NaN", b"Infinity", b"1e400"])
def test_parse_line_refuses_a_result_that_is_not_finite(value):
    """A commit whose result holds NaN or infinity is refused: JSON has neither."""
    with pytest.raises(ValueError, match="result"):
        parse_line(
            b'{"op":"commit","run_id":"r","at":"2026-11-22T12:00:00Z","action":"a","key":"k",'
            b'"result":{"x":' + value + b"}}"
        )


def test_parse_line_refuses_a_time_that_is_out_of_range_in_utc():
    """A time whose UTC instant falls after 2200 is refused, whatever zone it was written in."""
    with pytest.raises(ValueError, match="between 1970 and 2200"):
        parse_line(line_of(at="2200-12-31T23:00:00-05:00"))


# parse_lines


def test_parse_lines_reads_every_record_in_order():
    """A whole journal reads back as the records written, in order."""
    records = crashed_run()
    assert parse_lines(journal_bytes(*records), agent="pub") == records


def test_parse_lines_ignores_a_torn_last_line():
    """A record cut short by a crash is ignored; the ones before it are kept."""
    records = crashed_run()
    torn = b'{"op":"commit","run_id":"run-1","at":"2026-11-22T12:00:05Z","act'
    assert parse_lines(journal_bytes(*records) + torn, agent="pub") == records


def test_parse_lines_ignores_a_torn_multibyte_character():
    """A last line cut inside a UTF-8 character is ignored too."""
    records = crashed_run()
    line = encode(rec(Commit, 5, action="publish", key="post-2", result="café"))
    cut = line[: line.index("é".encode()) + 1]
    assert parse_lines(journal_bytes(*records) + cut, agent="pub") == records


def test_parse_lines_keeps_a_last_record_whole_but_for_its_newline():
    """A record written in full, killed before its newline, still counts."""
    records = crashed_run()
    last = rec(Commit, 5, action="publish", key="post-2", result=None)
    data = journal_bytes(*records) + encode(last).rstrip(b"\n")
    assert parse_lines(data, agent="pub") == [*records, last]


def test_parse_lines_of_an_empty_journal_is_empty():
    """An empty file (died before the first write), or one torn first line, holds no records."""
    assert parse_lines(b"", agent="pub") == []
    assert parse_lines(b'{"op":"begin","run_id":"run-1","at":"2026-11', agent="pub") == []


def test_parse_lines_refuses_a_bad_line_before_the_last():
    """Only the last line may be torn: damage anywhere else names the line."""
    good = journal_bytes(*crashed_run()).split(b"\n")
    good[2] = b'{"op":"commit","run_id":"run-1"'
    with pytest.raises(ValueError, match="line 3 is not a journal record"):
        parse_lines(b"\n".join(good), agent="pub")


def test_parse_lines_refuses_a_blank_line_in_the_middle():
    """An empty line between records is damage, not a torn tail."""
    data = journal_bytes(begin()) + b"\n" + journal_bytes(rec(Spend, 1, usd=0.1))
    with pytest.raises(ValueError, match="line 2"):
        parse_lines(data, agent="pub")


def test_parse_lines_refuses_a_journal_without_its_begin():
    """The first record names the run and the agent: without it nothing is folded."""
    with pytest.raises(ValueError, match="must start with a begin record"):
        parse_lines(journal_bytes(*crashed_run()[1:]), agent="pub")


def test_parse_lines_refuses_another_agents_journal():
    """A journal copied from another agent is refused, naming whose it is."""
    other = Begin(run_id="run-1", at=T0, agent="digest")
    with pytest.raises(ValueError, match="journal of agent 'digest'"):
        parse_lines(journal_bytes(other, *crashed_run()[1:]), agent="pub")


@pytest.mark.parametrize(
    "intruder",
    [rec(Spend, 5, run_id="run-2", usd=0.1), begin(5, run_id="run-2"), begin(5)],
    ids=["other-run-id", "second-begin", "repeated-begin"],
)
def test_parse_lines_refuses_the_records_of_several_runs(intruder):
    """Records of another run, or a second begin, are damage: nothing is folded."""
    with pytest.raises(ValueError, match="mixes the records of several runs"):
        parse_lines(journal_bytes(*crashed_run(), intruder), agent="pub")


# apply


def test_apply_intent_marks_the_action_unresolved():
    """An intent alone means the effect may or may not have happened."""
    state, ledger = folded(rec(Intent, 0, action="publish", key="post-1"))
    assert ledger.entries.keys() == {"publish"}
    assert ledger.entries["publish"].keys() == {"post-1"}
    assert entry(ledger, "publish", "post-1") == {
        "status": "unresolved",
        "at": "2026-11-22T12:00:00Z",
        "run_id": "run-1",
        "result": None,
    }
    assert "action:publish" not in state.rate_limits


def test_apply_commit_records_the_result_and_counts_the_action():
    """A commit stores the result and adds its time to the action's rate-limit window."""
    state, ledger = folded(
        rec(Intent, 0, action="publish", key="post-1"),
        rec(Commit, 1.7, action="publish", key="post-1", result={"url": "u1"}),
        rec(Intent, 2, action="publish", key="post-2"),
        rec(Commit, 3, action="publish", key="post-2", result={"url": "u2"}),
    )
    assert entry(ledger, "publish", "post-1") == {
        "status": "committed",
        "at": "2026-11-22T12:00:01Z",
        "run_id": "run-1",
        "result": {"url": "u1"},
    }
    assert entry(ledger, "publish", "post-2")["result"] == {"url": "u2"}
    assert state.rate_limits["action:publish"] == [at(1.7), at(3)]


def test_apply_abort_marks_the_action_failed():
    """A do() that raised leaves the action failed, free to run again."""
    state, ledger = folded(
        rec(Intent, 0, action="publish", key="post-1"),
        rec(Abort, 1, action="publish", key="post-1", error="HTTPError: 500"),
    )
    assert entry(ledger, "publish", "post-1")["status"] == "failed"
    assert "action:publish" not in state.rate_limits


def test_apply_undone_keeps_the_result():
    """An undone action keeps the result it had when committed."""
    _, ledger = folded(
        rec(Intent, 0, action="publish", key="post-1"),
        rec(Commit, 1, action="publish", key="post-1", result={"url": "u1"}),
        rec(Undone, 2, run_id="run-2", action="publish", key="post-1"),
    )
    assert entry(ledger, "publish", "post-1") == {
        "status": "undone",
        "at": "2026-11-22T12:00:02Z",
        "run_id": "run-2",
        "result": {"url": "u1"},
    }


def test_apply_undo_leaves_the_action_unresolved_until_it_is_undone():
    """Between undo and undone the effect may or may not be gone: it is unresolved."""
    _, ledger = folded(
        rec(Commit, 1, action="publish", key="post-1", result="u1"),
        rec(Undo, 2, action="publish", key="post-1"),
    )
    assert entry(ledger, "publish", "post-1")["status"] == "unresolved"
    assert entry(ledger, "publish", "post-1")["result"] == "u1"
    assert ledger.unresolved() == [("publish", "post-1")]


def test_apply_undo_failed_leaves_the_action_committed_with_its_result():
    """An undo() that raised leaves the effect standing: committed, as before."""
    state, ledger = folded(
        rec(Commit, 1, action="publish", key="post-1", result="u1"),
        rec(Undo, 2, action="publish", key="post-1"),
        rec(UndoFailed, 3, action="publish", key="post-1", error="gone"),
    )
    assert entry(ledger, "publish", "post-1")["status"] == "committed"
    assert entry(ledger, "publish", "post-1")["result"] == "u1"
    assert state.rate_limits["action:publish"] == [at(1)]  # counted once, when it was done


def test_apply_redo_after_undo_replaces_the_result():
    """Undone, then committed again: the new result wins and the action counts twice."""
    state, ledger = folded(
        rec(Commit, 1, action="publish", key="post-1", result="first"),
        rec(Undone, 2, action="publish", key="post-1"),
        rec(Intent, 3, action="publish", key="post-1"),
        rec(Commit, 4, action="publish", key="post-1", result="second"),
    )
    assert entry(ledger, "publish", "post-1")["status"] == "committed"
    assert entry(ledger, "publish", "post-1")["result"] == "second"
    assert state.rate_limits["action:publish"] == [at(1), at(4)]


def test_apply_keeps_actions_and_keys_apart():
    """The same key under two actions, and two keys under one, are separate entries."""
    _, ledger = folded(
        rec(Commit, 0, action="publish", key="k", result=1),
        rec(Intent, 1, action="notify", key="k"),
        rec(Abort, 2, action="publish", key="other"),
    )
    assert {
        a: {k: Entry.parse(e).status for k, e in entries.items()}
        for a, entries in ledger.entries.items()
    } == {
        "publish": {"k": "committed", "other": "failed"},
        "notify": {"k": "unresolved"},
    }


def test_apply_spend_records_the_budget_and_the_metrics():
    """Spends go into the budget window and add up in metrics.tokens and metrics.cost_usd."""
    state, ledger = folded(
        rec(Spend, 0, usd=0.1, tokens=100),
        rec(Spend, 1, usd=0.2, tokens=250),
    )
    assert state.budget.spends == [
        BudgetEntry(at=at(0), run_id="run-1", usd=0.1, tokens=100),
        BudgetEntry(at=at(1), run_id="run-1", usd=0.2, tokens=250),
    ]
    assert state.metrics.tokens == 350
    assert state.metrics.cost_usd == 0.3
    assert not ledger.changed  # costs never touch the ledger


def test_apply_reserve_holds_the_worst_case_until_settled():
    """A reservation counts its worst case in the budget and metrics; settling corrects both."""
    state, _ = folded(rec(Reserve, 0, id="call-1", usd=0.5, tokens=1000))
    assert [s.id for s in state.budget.pending()] == ["call-1"]
    assert (state.metrics.cost_usd, state.metrics.tokens) == (0.5, 1000)
    apply(state, None, rec(Settle, 1, id="call-1", usd=0.125, tokens=300))
    assert state.budget.pending() == []
    assert state.budget.spends[-1].usd == 0.125
    assert (state.metrics.cost_usd, state.metrics.tokens) == (0.125, 300)


def test_apply_settle_of_an_unknown_reservation_changes_nothing():
    """A settle whose reservation is not in the budget adds no cost anywhere."""
    state, _ = folded(rec(Settle, 1, id="nope", usd=0.5, tokens=10))
    assert state == AgentState(agent="pub")


def test_apply_begin_leaves_the_state_as_it_was():
    """The begin record names the run; it changes nothing."""
    state, ledger = folded(begin())
    assert state == AgentState(agent="pub")
    assert ledger.entries == {}


def test_needs_ledger_only_for_guarded_actions():
    """A journal of costs is folded without loading the ledger; one action record needs it."""
    assert not needs_ledger([begin(), rec(Spend, 1, usd=0.1), rec(Reserve, 2, id="c", usd=1)])
    assert needs_ledger([begin(), rec(Undone, 1, action="publish", key="k")])
    assert not needs_ledger([])


# recover


def test_recover_folds_a_crashed_run_into_the_state_and_the_ledger():
    """The crashed run's records are applied, and both remember the journal was folded."""
    state, ledger = AgentState(agent="pub"), Ledger()
    recovered = recover(state, ledger, crashed_run())
    assert recovered == Recovered(
        run_id="run-1", kind="run", records=4, new=True, started_at=at(0), last_at=at(4)
    )
    assert ledger.unresolved() == [("publish", "post-2")]
    assert entry(ledger, "publish", "post-1")["status"] == "committed"
    assert entry(ledger, "publish", "post-1")["result"] == {"url": "u1"}
    assert state.rate_limits["action:publish"] == [at(2)]
    assert (state.metrics.tokens, state.metrics.cost_usd) == (1200, 0.25)
    assert state.journal_folded == ledger.folded == "run-1"
    assert ledger.changed  # so the store writes it


def test_recover_tells_an_approval_journal_from_a_run():
    """A journal begun by `review approve` says so: the caller records no crashed run for it."""
    records = [begin(0, run_id="approve-1", kind="approve")]
    records.append(rec(Commit, 1, run_id="approve-1", action="publish", key="held-1", result="ok"))
    state, ledger = AgentState(agent="pub"), Ledger()
    recovered = recover(state, ledger, records)
    assert (recovered.kind, recovered.records, recovered.new) == ("approve", 1, True)
    assert entry(ledger, "publish", "held-1")["status"] == "committed"
    assert state.last_run is None
    assert state.journal_folded == "approve-1"


def test_recover_of_a_run_that_died_right_after_it_began():
    """A journal holding only its begin is a new crash that lasted no time and did nothing."""
    state = AgentState(agent="pub")
    recovered = recover(state, None, [begin(7)])
    assert recovered == Recovered(
        run_id="run-1", kind="run", records=0, new=True, started_at=at(7), last_at=at(7)
    )
    assert state == AgentState(agent="pub", journal_folded="run-1")


def test_recover_ignores_a_torn_last_record():
    """A commit cut short by the crash is not applied: post-2 stays unresolved."""
    data = journal_bytes(*crashed_run())
    whole_state, whole_ledger = AgentState(agent="pub"), Ledger()
    recover(whole_state, whole_ledger, parse_lines(data, agent="pub"))
    torn = data + b'{"op":"commit","run_id":"run-1","at":"2026-11-22T12:00:05Z","action":"pub'
    torn_state, torn_ledger = AgentState(agent="pub"), Ledger()
    recover(torn_state, torn_ledger, parse_lines(torn, agent="pub"))
    assert torn_state == whole_state
    assert torn_ledger.entries == whole_ledger.entries
    assert entry(torn_ledger, "publish", "post-2")["status"] == "unresolved"


def test_recovering_the_same_journal_twice_changes_nothing_the_second_time():
    """The second recover of a journal already folded is a no-op, and says it is not new."""
    state, ledger = AgentState(agent="pub"), Ledger()
    recover(state, ledger, crashed_run())
    state_once, entries_once = state.model_copy(deep=True), json.dumps(ledger.entries)
    again = recover(state, ledger, crashed_run())
    assert not again.new
    assert state == state_once
    assert json.dumps(ledger.entries) == entries_once


def test_recovering_after_a_save_round_trip_changes_nothing():
    """Folded, saved, loaded, and found again (the journal not yet dropped): still a no-op."""
    state, ledger = AgentState(agent="pub"), Ledger()
    recover(state, ledger, crashed_run())
    loaded_state = AgentState.model_validate_json(state.model_dump_json())
    loaded_ledger = Ledger(json.loads(json.dumps(ledger.entries)), folded=ledger.folded)
    again = recover(loaded_state, loaded_ledger, crashed_run())
    assert not again.new
    assert loaded_state == state
    assert loaded_ledger.entries == ledger.entries
    assert not loaded_ledger.changed  # nothing to write


def test_a_ledger_committed_before_a_lost_state_is_not_folded_twice():
    """Died between writing the ledger and the state: the state is folded, the ledger is not."""
    state, ledger = AgentState(agent="pub"), Ledger()
    recover(state, ledger, crashed_run())
    saved_ledger = Ledger(json.loads(json.dumps(ledger.entries)), folded="run-1")
    old_state = AgentState(agent="pub")  # the state commit never happened
    recovered = recover(old_state, saved_ledger, crashed_run())
    assert recovered.new  # the caller records the crash, once
    assert old_state == state
    assert not saved_ledger.changed
    assert saved_ledger.entries == ledger.entries


def test_a_state_that_folded_the_journal_still_gets_it_into_a_ledger_that_did_not():
    """Each file remembers its own last journal: a stale ledger is brought up to date."""
    state = AgentState(agent="pub", journal_folded="run-1")
    stale = Ledger()
    recovered = recover(state, stale, crashed_run())
    assert not recovered.new
    assert state == AgentState(agent="pub", journal_folded="run-1")
    assert stale.unresolved() == [("publish", "post-2")]
    assert stale.folded == "run-1"


# properties

ACTIONS = st.sampled_from(["publish", "notify"])
KEYS = st.sampled_from(["a", "b", "c", "post 1"])
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
ACTION_RECORDS = {"intent": Intent, "abort": Abort, "undo": Undo, "undone": Undone}
AMOUNT = st.floats(0, 5, allow_nan=False) | st.sampled_from([0.1, 0.2, 1 / 3])
TOKENS = st.integers(0, 10**6)


@st.composite
def records(draw) -> list[tuple[float, type[BaseModel], dict]]:
    """(seconds after the previous record, record type, fields) for a random run."""
    action_record = st.tuples(
        st.sampled_from([*ACTION_RECORDS.values(), UndoFailed]), ACTIONS, KEYS
    ).map(lambda t: (t[0], {"action": t[1], "key": t[2]}))
    commit_record = st.tuples(ACTIONS, KEYS, JSON).map(
        lambda t: (Commit, {"action": t[0], "key": t[1], "result": t[2]})
    )
    spend_record = st.tuples(AMOUNT, TOKENS).map(lambda t: (Spend, {"usd": t[0], "tokens": t[1]}))
    reservations = st.sampled_from(["c1", "c2", "c3"])
    reserve_record = st.tuples(reservations, AMOUNT, TOKENS).map(
        lambda t: (Reserve, {"id": t[0], "usd": t[1], "tokens": t[2]})
    )
    settle_record = st.tuples(reservations, AMOUNT, TOKENS).map(
        lambda t: (Settle, {"id": t[0], "usd": t[1], "tokens": t[2]})
    )
    one = st.tuples(
        st.floats(0, 7200, allow_nan=False) | st.sampled_from([0.0, 86400.0]),
        st.one_of(action_record, commit_record, spend_record, reserve_record, settle_record),
    )
    return [(gap, model, fields) for gap, (model, fields) in draw(st.lists(one, max_size=30))]


def written(sequence: list[tuple[float, type[BaseModel], dict]]) -> list[BaseModel]:
    """The records of ``sequence``, as a run writes them after its begin."""
    moment, out = T0, []
    for gap, model, fields in sequence:
        moment += timedelta(seconds=gap)
        out.append(model(run_id="run-1", at=moment, **fields))
    return out


def in_memory(sequence: list[tuple[float, type[BaseModel], dict]]) -> tuple[AgentState, Ledger]:
    """The state and ledger a run builds by applying its records as it writes them."""
    return folded(*written(sequence))


@given(sequence=records())
def test_applied_records_survive_a_json_round_trip(sequence):
    """Whatever records were folded in, the state reads back from JSON unchanged."""
    state, ledger = in_memory(sequence)
    assert AgentState.model_validate_json(state.model_dump_json()) == state
    entries = TypeAdapter(LedgerMap).validate_json(json.dumps(ledger.entries))
    assert entries == ledger.entries


@given(sequence=records())
def test_the_ledger_holds_the_last_status_and_the_last_committed_result(sequence):
    """Each entry has the status of its latest record and the result of its latest commit."""
    _, ledger = in_memory(sequence)
    status = {
        "intent": "unresolved",
        "commit": "committed",
        "abort": "failed",
        "undo": "unresolved",
        "undone": "undone",
        "undo_failed": "committed",
    }
    expected: dict[tuple[str, str], tuple[str, object]] = {}
    for one in written(sequence):
        if one.op in status:
            where = (one.action, one.key)
            result = one.result if one.op == "commit" else expected.get(where, ("", None))[1]
            expected[where] = (status[one.op], result)
    found = {
        (action, key): (Entry.parse(e).status, Entry.parse(e).result)
        for action, entries in ledger.entries.items()
        for key, e in entries.items()
    }
    assert found == expected


@given(sequence=records())
def test_applied_records_add_up_in_the_metrics(sequence):
    """metrics count what was spent: spends, and reservations at what they settled for."""
    state, _ = in_memory(sequence)
    usd, tokens, commits = 0.0, 0, 0
    reserved: dict[str, list[BaseModel]] = {}  # by id, the latest reservation settled first
    for one in written(sequence):
        if one.op == "spend":
            usd, tokens = usd + one.usd, tokens + one.tokens
        elif one.op == "reserve":
            reserved.setdefault(one.id, []).append(one)
            usd, tokens = usd + one.usd, tokens + one.tokens
        elif one.op == "settle" and reserved.get(one.id):
            was = reserved[one.id].pop()
            usd, tokens = usd + one.usd - was.usd, tokens + one.tokens - was.tokens
        commits += one.op == "commit"
    assert state.metrics.tokens == tokens
    assert state.metrics.cost_usd == pytest.approx(usd, abs=1e-6)
    counted = sum(len(v) for k, v in state.rate_limits.items() if k.startswith("action:"))
    assert counted == commits


@settings(deadline=None, max_examples=50)
@given(sequence=records())
def test_recovering_a_journal_gives_the_state_the_run_built(sequence):
    """Records encoded, read back and recovered fold to what the run built in memory, once."""
    expected_state, expected_ledger = in_memory(sequence)
    data = journal_bytes(Begin(run_id="run-1", at=T0, agent="pub"), *written(sequence))
    state, ledger = AgentState(agent="pub"), Ledger()
    recovered = recover(state, ledger, parse_lines(data, agent="pub"))
    assert recovered.records == len(sequence)
    expected_state.journal_folded = "run-1"
    assert state == expected_state
    assert ledger.entries == expected_ledger.entries
    once, entries_once = state.model_copy(deep=True), json.dumps(ledger.entries)
    recover(state, ledger, parse_lines(data, agent="pub"))
    assert state == once
    assert json.dumps(ledger.entries) == entries_once
