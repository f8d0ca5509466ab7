"""The journal: durable records of side effects, folded into the state once, even after a crash."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentops.journal import CRASHED, Journal, Recovered, apply, read, recover
from agentops.ledger import Entry
from agentops.state import AgentState, FileStateStore, Spend

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """T0 plus that many seconds."""
    return T0 + timedelta(seconds=seconds)


def record(op: str, seconds: float, run_id: str = "run-1", **fields) -> dict:
    """A record as Journal.append writes it, without a file."""
    return {"op": op, "run_id": run_id, "at": at(seconds).isoformat(), **fields}


def entry(state: AgentState, action: str, key: str) -> dict:
    """The ledger entry of ``(action, key)`` as an operator reads it, its result decoded."""
    found = Entry.parse(state.ledger[action][key])
    return {"status": found.status, "at": found.at, "run_id": found.run_id, "result": found.result}


def folded(*records: dict) -> AgentState:
    """A fresh state with ``records`` applied in order."""
    state = AgentState(agent="pub")
    for one in records:
        apply(state, one)
    return state


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "pub.journal"


def crashed_run(path: Path) -> list[dict]:
    """Write the journal of a run killed in the middle of its second publish."""
    journal = Journal(path, run_id="run-1")
    records = [
        journal.append("begin", at(0), kind="run"),
        journal.append("intent", at(1), action="publish", key="post-1"),
        journal.append("commit", at(2), action="publish", key="post-1", result={"url": "u1"}),
        journal.append("spend", at(3), usd=0.25, tokens=1200),
        journal.append("intent", at(4), action="publish", key="post-2"),
    ]
    journal.close()  # the process died here: no commit for post-2, no discard
    return records


# Journal.append and read


def test_append_writes_one_json_line_per_record(path):
    """Each record is one compact JSON line with op, run_id, a UTC 'Z' time and its fields."""
    journal = Journal(path, run_id="run-1")
    first = journal.append("begin", at(0), kind="run")
    second = journal.append("commit", at(1.5), action="publish", key="k", result={"n": 1})
    journal.close()
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [first, second]
    assert first == {"op": "begin", "run_id": "run-1", "at": "2026-11-22T12:00:00Z", "kind": "run"}
    assert second["at"] == "2026-11-22T12:00:01.500000Z"
    assert read(path) == [first, second]


def test_append_is_readable_before_close(path):
    """A record is on disk when append returns, before the journal is closed."""
    journal = Journal(path, run_id="run-1")
    written = journal.append("intent", at(0), action="publish", key="k")
    assert read(path) == [written]
    journal.close()


def test_append_fsyncs_every_record(path, monkeypatch):
    """The journal file is fsynced after each record is written, before append returns."""
    journal = Journal(path, run_id="run-1")
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if path.exists() and os.fstat(fd).st_ino == path.stat().st_ino:
            synced.append(len(read(path)))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    for n in range(3):
        journal.append("spend", at(n), usd=0.1, tokens=1)
        assert synced[-1] == n + 1
    journal.close()


def test_append_creates_the_file_and_discard_removes_it(path):
    """No file until the first record; discard() removes it."""
    journal = Journal(path, run_id="run-1")
    assert not path.exists()
    journal.append("begin", at(0), kind="run")
    assert path.exists()
    journal.discard()
    assert not path.exists()


def test_read_ignores_a_torn_last_line(path):
    """A record cut short by a crash is ignored; the ones before it are kept."""
    records = crashed_run(path)
    with path.open("ab") as handle:
        handle.write(b'{"op":"commit","run_id":"run-1","at":"2026-11-22T12:00:05Z","act')
    assert read(path) == records


def test_read_ignores_a_torn_multibyte_character(path):
    """A last line cut inside a UTF-8 character is ignored too."""
    records = crashed_run(path)
    line = json.dumps({"op": "commit", "result": "café"}, ensure_ascii=False).encode()
    with path.open("ab") as handle:
        handle.write(line[: line.index("é".encode()) + 1])
    assert read(path) == records


def test_read_of_an_empty_journal_is_empty(path):
    """An empty file (died before the first write) holds no records."""
    path.write_bytes(b"")
    assert read(path) == []


# apply


def test_apply_intent_marks_the_action_unresolved():
    """An intent alone means the effect may or may not have happened."""
    state = folded(record("intent", 0, action="publish", key="post-1"))
    assert list(state.ledger) == ["publish"]
    assert list(state.ledger["publish"]) == ["post-1"]
    assert entry(state, "publish", "post-1") == {
        "status": "unresolved",
        "at": "2026-11-22T12:00:00Z",
        "run_id": "run-1",
        "result": None,
    }
    assert "action:publish" not in state.rate_limits


def test_apply_commit_records_the_result_and_counts_the_action():
    """A commit stores the result and adds its time to the action's rate-limit window."""
    state = folded(
        record("intent", 0, action="publish", key="post-1"),
        record("commit", 1.7, action="publish", key="post-1", result={"url": "u1"}),
        record("intent", 2, action="publish", key="post-2"),
        record("commit", 3, action="publish", key="post-2", result={"url": "u2"}),
    )
    assert entry(state, "publish", "post-1") == {
        "status": "committed",
        "at": "2026-11-22T12:00:01Z",
        "run_id": "run-1",
        "result": {"url": "u1"},
    }
    assert entry(state, "publish", "post-2")["result"] == {"url": "u2"}
    assert state.rate_limits["action:publish"] == [at(1.7), at(3)]


def test_apply_abort_marks_the_action_failed():
    """A do() that raised leaves the action failed, free to run again."""
    state = folded(
        record("intent", 0, action="publish", key="post-1"),
        record("abort", 1, action="publish", key="post-1", error="HTTPError: 500"),
    )
    assert entry(state, "publish", "post-1")["status"] == "failed"
    assert "action:publish" not in state.rate_limits


def test_apply_undone_keeps_the_result():
    """An undone action keeps the result it had when committed."""
    state = folded(
        record("intent", 0, action="publish", key="post-1"),
        record("commit", 1, action="publish", key="post-1", result={"url": "u1"}),
        record("undone", 2, run_id="run-2", action="publish", key="post-1"),
    )
    assert entry(state, "publish", "post-1") == {
        "status": "undone",
        "at": "2026-11-22T12:00:02Z",
        "run_id": "run-2",
        "result": {"url": "u1"},
    }


def test_apply_redo_after_undo_replaces_the_result():
    """Undone, then committed again: the new result wins and the action counts twice."""
    state = folded(
        record("commit", 1, action="publish", key="post-1", result="first"),
        record("undone", 2, action="publish", key="post-1"),
        record("intent", 3, action="publish", key="post-1"),
        record("commit", 4, action="publish", key="post-1", result="second"),
    )
    assert entry(state, "publish", "post-1")["status"] == "committed"
    assert entry(state, "publish", "post-1")["result"] == "second"
    assert state.rate_limits["action:publish"] == [at(1), at(4)]


def test_apply_keeps_actions_and_keys_apart():
    """The same key under two actions, and two keys under one, are separate entries."""
    state = folded(
        record("commit", 0, action="publish", key="k", result=1),
        record("intent", 1, action="notify", key="k"),
        record("abort", 2, action="publish", key="other"),
    )
    assert {
        a: {k: Entry.parse(e).status for k, e in entries.items()}
        for a, entries in state.ledger.items()
    } == {
        "publish": {"k": "committed", "other": "failed"},
        "notify": {"k": "unresolved"},
    }


def test_apply_spend_records_the_budget_and_the_metrics():
    """Spends go into the budget window and add up in metrics.tokens and metrics.cost_usd."""
    state = folded(
        record("spend", 0, usd=0.1, tokens=100),
        record("spend", 1, usd=0.2, tokens=250),
    )
    assert state.budget.spends == [
        Spend(at=at(0), run_id="run-1", usd=0.1, tokens=100),
        Spend(at=at(1), run_id="run-1", usd=0.2, tokens=250),
    ]
    assert state.metrics.tokens == 350
    assert state.metrics.cost_usd == 0.3


def test_apply_ignores_begin_and_unknown_ops():
    """Records that are not about actions or spends leave the state as it was."""
    state = folded(record("begin", 0, kind="run"), record("note", 1, text="hello"))
    assert state == AgentState(agent="pub")


# recover


def test_recover_without_a_journal_is_none(path):
    """No journal file: nothing crashed, nothing to do."""
    state = AgentState(agent="pub")
    assert recover(state, path) is None
    assert state == AgentState(agent="pub")


def test_recover_folds_a_crashed_run_into_the_state(path):
    """The crashed run's records are applied and the run is recorded as crashed."""
    crashed_run(path)
    state = AgentState(agent="pub")
    recovered = recover(state, path)
    assert recovered is not None
    assert recovered.run_id == "run-1"
    assert recovered.records > 0  # something to save
    assert recovered.unresolved == [("publish", "post-2")]
    assert entry(state, "publish", "post-1")["status"] == "committed"
    assert entry(state, "publish", "post-1")["result"] == {"url": "u1"}
    assert entry(state, "publish", "post-2")["status"] == "unresolved"
    assert state.rate_limits["action:publish"] == [at(2)]
    assert state.metrics.tokens == 1200
    assert state.metrics.cost_usd == 0.25
    assert state.journal_folded == "run-1"


def test_recover_records_the_crash_as_the_last_run(path):
    """last_run is 'crashed', from its begin record to its last one; it counts as a failed run."""
    crashed_run(path)
    state = AgentState(agent="pub")
    recover(state, path)
    assert state.last_run is not None
    assert state.last_run.status == CRASHED == "crashed"
    assert state.last_run.run_id == "run-1"
    assert state.last_run.started_at == at(0)
    assert state.last_run.finished_at == at(4)
    assert state.last_run.duration_s == 4.0
    assert state.last_run.error
    assert (state.metrics.runs, state.metrics.failed) == (1, 1)
    assert state.rate_limits["runs"] == [at(0)]
    assert [(e.category, e.run_id) for e in state.errors] == [("crashed", "run-1")]


def test_recover_adds_to_existing_counters(path):
    """A crash is one more run on top of those already in the state."""
    crashed_run(path)
    state = AgentState(agent="pub")
    state.metrics.runs, state.metrics.succeeded = 5, 5
    state.rate_limits["runs"] = [at(-600)]
    recover(state, path)
    assert (state.metrics.runs, state.metrics.succeeded, state.metrics.failed) == (6, 5, 1)
    assert state.rate_limits["runs"] == [at(-600), at(0)]


def test_recover_ignores_a_torn_last_record(path):
    """A commit cut short by the crash is not applied: post-2 stays unresolved."""
    crashed_run(path)
    whole = AgentState(agent="pub")
    recover(whole, path)
    with path.open("ab") as handle:
        handle.write(b'{"op":"commit","run_id":"run-1","at":"2026-11-22T12:00:05Z","action":"pub')
    torn = AgentState(agent="pub")
    recover(torn, path)
    assert torn == whole
    assert entry(torn, "publish", "post-2")["status"] == "unresolved"


def test_recovering_the_same_journal_twice_changes_nothing_the_second_time(path):
    """The second recover of a journal already folded is a no-op."""
    crashed_run(path)
    state = AgentState(agent="pub")
    recover(state, path)
    after_first = state.model_copy(deep=True)
    again = recover(state, path)
    assert again is not None
    assert again.records == 0
    assert state == after_first


def test_recovering_after_a_save_round_trip_changes_nothing(path):
    """Folded, saved as JSON, loaded, and found again (not yet removed): still a no-op."""
    crashed_run(path)
    state = AgentState(agent="pub")
    recover(state, path)
    loaded = AgentState.model_validate_json(state.model_dump_json())
    assert recover(loaded, path) == Recovered(run_id="run-1", records=0, unresolved=[])
    assert loaded == state


def test_recover_of_an_approval_journal_records_no_crashed_run(path):
    """A journal begun by something other than a run folds its records but counts no run."""
    journal = Journal(path, run_id="approve-1")
    journal.append("begin", at(0), kind="approve")
    journal.append("commit", at(1), action="publish", key="held-1", result="ok")
    journal.close()
    state = AgentState(agent="pub")
    recovered = recover(state, path)
    assert recovered is not None
    assert recovered.records > 0
    assert entry(state, "publish", "held-1")["status"] == "committed"
    assert state.last_run is None
    assert state.metrics.runs == 0
    assert "runs" not in state.rate_limits
    assert state.journal_folded == "approve-1"


def test_a_run_that_died_right_after_it_began_is_recorded_and_saved(tmp_path):
    """A journal holding only the begin record still records the crash in the saved state."""
    store = FileStateStore(tmp_path / "state")
    journal = store.journal("pub", "run-1")
    journal.path.parent.mkdir(parents=True)
    journal.append("begin", at(0), kind="run")
    journal.close()
    state = store.load("pub")
    recovered = store.recover(state)
    assert recovered is not None
    assert recovered.records > 0  # so the store saved the state before removing the journal
    assert not journal.path.exists()
    saved = store.load("pub")
    assert saved.last_run is not None
    assert saved.last_run.status == "crashed"
    assert saved.last_run.duration_s == 0
    assert saved.metrics.runs == 1


def test_a_crashed_run_recovered_by_the_store_is_in_the_saved_state(tmp_path):
    """FileStateStore.recover saves the folded state, then removes the journal."""
    store = FileStateStore(tmp_path / "state")
    (tmp_path / "state").mkdir()
    crashed_run(tmp_path / "state" / "pub.journal")
    state = store.load("pub")
    store.recover(state)
    assert not (tmp_path / "state" / "pub.journal").exists()
    assert store.load("pub") == state
    assert entry(store.load("pub"), "publish", "post-2")["status"] == "unresolved"


def test_recover_of_a_journal_with_only_a_torn_line_does_nothing(path):
    """A run that died while writing its first record left nothing to fold."""
    path.write_bytes(b'{"op":"begin","run_id":"run-1","at":"2026-11')
    state = AgentState(agent="pub")
    recovered = recover(state, path)
    assert recovered is not None
    assert recovered.records == 0
    assert state == AgentState(agent="pub")


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


@st.composite
def records(draw) -> list[tuple[str, float, dict]]:
    """(op, seconds after the previous record, fields) for a random run."""
    action_record = st.tuples(st.sampled_from(["intent", "abort", "undone"]), ACTIONS, KEYS).map(
        lambda t: (t[0], {"action": t[1], "key": t[2]})
    )
    commit_record = st.tuples(ACTIONS, KEYS, JSON).map(
        lambda t: ("commit", {"action": t[0], "key": t[1], "result": t[2]})
    )
    spend_record = st.tuples(
        st.floats(0, 5, allow_nan=False) | st.sampled_from([0.1, 0.2, 1 / 3]),
        st.integers(0, 10**6),
    ).map(lambda t: ("spend", {"usd": t[0], "tokens": t[1]}))
    one = st.tuples(
        st.floats(0, 7200, allow_nan=False) | st.sampled_from([0.0, 86400.0]),
        st.one_of(action_record, commit_record, spend_record),
    )
    return [(op, gap, fields) for gap, (op, fields) in draw(st.lists(one, max_size=30))]


def in_memory(sequence: list[tuple[str, float, dict]]) -> tuple[AgentState, list[dict]]:
    """Apply the records as Journal.append returns them, without a file."""
    state = AgentState(agent="pub")
    written = []
    moment = T0
    for op, gap, fields in sequence:
        moment += timedelta(seconds=gap)
        one = {"op": op, "run_id": "run-1", "at": moment.isoformat(), **fields}
        apply(state, one)
        written.append(one)
    return state, written


@given(sequence=records())
def test_applied_records_survive_a_json_round_trip_of_the_state(sequence):
    """Whatever records were folded in, the state reads back from JSON unchanged."""
    state, _ = in_memory(sequence)
    assert AgentState.model_validate_json(state.model_dump_json()) == state


@given(sequence=records())
def test_the_ledger_holds_the_last_status_and_the_last_committed_result(sequence):
    """Each entry has the status of its latest record and the result of its latest commit."""
    state, written = in_memory(sequence)
    status = {"intent": "unresolved", "commit": "committed", "abort": "failed", "undone": "undone"}
    expected: dict[tuple[str, str], tuple[str, object]] = {}
    for one in written:
        if one["op"] in status:
            where = (one["action"], one["key"])
            result = one["result"] if one["op"] == "commit" else expected.get(where, ("", None))[1]
            expected[where] = (status[one["op"]], result)
    found = {
        (action, key): (Entry.parse(e).status, Entry.parse(e).result)
        for action, entries in state.ledger.items()
        for key, e in entries.items()
    }
    assert found == expected


@given(sequence=records())
def test_applied_records_add_up_in_the_metrics(sequence):
    """metrics.tokens is the sum of the spent tokens; cost_usd the sum of the dollars."""
    state, written = in_memory(sequence)
    spends = [one for one in written if one["op"] == "spend"]
    assert state.metrics.tokens == sum(one["tokens"] for one in spends)
    assert state.metrics.cost_usd == pytest.approx(sum(one["usd"] for one in spends), abs=1e-5)
    commits = [one for one in written if one["op"] == "commit"]
    counted = sum(len(v) for k, v in state.rate_limits.items() if k.startswith("action:"))
    assert counted == len(commits)


@settings(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=records())
def test_recovering_a_journal_gives_the_state_the_run_built(sequence):
    """Records written to a file, read back and recovered, fold to the state built in memory."""
    expected, _ = in_memory(sequence)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "pub.journal"
        journal = Journal(path, run_id="run-1")
        journal.append("begin", T0, kind="approve")  # not a run: no crash bookkeeping
        moment = T0
        for op, gap, fields in sequence:
            moment += timedelta(seconds=gap)
            journal.append(op, moment, **fields)
        journal.close()
        state = AgentState(agent="pub")
        recovered = recover(state, path)
        assert recovered is not None
        assert recovered.records > 0
        expected.journal_folded = "run-1"
        assert state == expected
        once = state.model_copy(deep=True)
        recover(state, path)
        assert state == once
