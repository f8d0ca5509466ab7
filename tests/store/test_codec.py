"""One written form for every store: states and ledgers read back strictly, in one line."""

from __future__ import annotations

import json

import pytest

from agentops.errors import StateError
from agentops.model.ledger import Ledger
from agentops.model.state import SCHEMA_VERSION, AgentState
from agentops.store.codec import (
    LEDGER_SCHEMA_VERSION,
    LedgerDocument,
    dump,
    read_ledger,
    read_model,
    read_state,
    read_versioned_state,
)
from samples import full_state


def unreadable(why: str) -> StateError:
    return StateError(f"state/pub.json: {why}")


def test_a_state_reads_back_as_it_was_dumped():
    """dump() is indented JSON ending in a newline; read_state() gives the same state."""
    state = full_state()
    raw = dump(state)
    assert raw.endswith(b"}\n")
    assert raw.startswith(b"{\n  ")
    assert read_state(raw, "pub", unreadable) == state


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"{not json", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (json.dumps({"schema_version": SCHEMA_VERSION, "agent": "other"}), "agent 'other'"),
        (json.dumps({"schema_version": SCHEMA_VERSION + 1, "agent": "pub"}), "newer agentops"),
        (json.dumps({"schema_version": 0, "agent": "pub"}), "schema_version"),
        (json.dumps({"schema_version": SCHEMA_VERSION, "agent": "pub", "x": 1}), "'x'"),
    ],
    ids=["garbage", "too-deep", "other-agent", "newer", "version-0", "unknown-key"],
)
def test_a_state_that_cannot_be_read_is_refused_saying_why(raw, why):
    """Each problem is the caller's error, with one line naming it."""
    with pytest.raises(StateError) as refused:
        read_state(raw, "pub", unreadable)
    assert why in refused.value.message
    assert "\n" not in refused.value.message


def test_a_version_1_state_is_brought_forward_with_the_ledger_it_held():
    """Version 1 kept the ledger in the state: read, it is handed on beside the state."""
    old = {
        "schema_version": 1,
        "agent": "pub",
        "ledger": {"publish": {"k1": {"status": "committed", "at": "2026-11-22T12:00:00Z"}}},
    }
    state, entries = read_versioned_state(json.dumps(old), "pub", unreadable)
    assert state.schema_version == SCHEMA_VERSION
    assert entries is not None
    assert list(entries["publish"]) == ["k1"]
    current, none = read_versioned_state(dump(AgentState(agent="pub")), "pub", unreadable)
    assert (current.agent, none) == ("pub", None)


def test_a_ledger_reads_back_with_the_journal_it_folded():
    """The ledger document names its agent and the last journal folded into it."""
    ledger = Ledger({"publish": {"k1": "2026-11-22T12:00:00Z committed run-1 null"}}, folded="r1")
    document = LedgerDocument.model_construct(
        agent="pub",
        journal_folded=ledger.folded,
        entries=ledger.entries,
        schema_version=LEDGER_SCHEMA_VERSION,
    )
    back = read_ledger(dump(document), "pub", unreadable)
    assert (back.entries, back.folded) == (ledger.entries, "r1")
    with pytest.raises(StateError, match="ledger of agent 'pub'"):
        read_ledger(dump(document), "other", unreadable)


def test_a_small_record_that_is_not_its_model_is_refused():
    """read_model() reads a pause, an attempt, notices: anything else is the caller's error."""
    assert read_model(dump(AgentState(agent="pub")), AgentState, unreadable).agent == "pub"
    with pytest.raises(StateError, match="Invalid JSON"):
        read_model(b"[" * 100_000, AgentState, unreadable)
    with pytest.raises(StateError, match="agent"):
        read_model(b"{}", AgentState, unreadable)
