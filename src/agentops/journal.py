"""The journal of one run: ``state/<name>.journal``, durable before every side effect.

Each record is one JSON line, appended and fsynced before :meth:`Journal.append`
returns. A guarded action writes an ``intent`` before calling ``do()`` and a
``commit`` (with ``do()``'s result) after it; spends, undos and resolutions are
recorded the same way. The same :func:`apply` folds a record into the state
while the run goes on and when a crashed run's journal is replayed, so both
paths agree.

A run's journal is removed once the state that holds its records is saved. A
journal found at the next start belongs to a run that died: :func:`recover`
folds it in, and ``journal_folded`` in the state makes folding twice harmless.
A torn last line (the process died mid-write) is ignored: that record was
never acknowledged, so nothing relied on it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import pydantic_core

from agentops._fsio import fsync_directory
from agentops.config import RUNS, action_key
from agentops.ledger import (
    COMMITTED,
    FAILED,
    UNDONE,
    UNRESOLVED,
    Entry,
    Status,
    get,
    put,
    unresolved,
)

if TYPE_CHECKING:
    from pathlib import Path

    from agentops.state import AgentState

__all__ = ["CRASHED", "Journal", "Recovered", "apply", "recover"]

CRASHED = "crashed"
"""The status given to a run whose journal was found at the next start."""

_ACTION_STATUS: dict[str, Status] = {
    "intent": UNRESOLVED,
    "commit": COMMITTED,
    "abort": FAILED,
    "undone": UNDONE,
}


class Journal:
    """Appends one run's records to ``path``, each one durable on return."""

    def __init__(self, path: Path, *, run_id: str) -> None:
        """Journal for the run ``run_id``; the file is created by the first record."""
        self.path = path
        self.run_id = run_id
        self._fd: int | None = None

    def append(self, op: str, at: datetime, **fields: Any) -> dict[str, Any]:
        """Write the record ``{op, run_id, at, **fields}`` and fsync it; return it."""
        record = {"op": op, "run_id": self.run_id, "at": _iso(at), **fields}
        line = pydantic_core.to_json(record) + b"\n"
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            fsync_directory(self.path.parent)  # the new file's name must survive a crash too
        os.write(self._fd, line)
        os.fsync(self._fd)
        return record

    def close(self) -> None:
        """Close the file, keeping it."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        """Remove the journal: call only once the state holding its records is saved."""
        self.close()
        self.path.unlink(missing_ok=True)


def read(path: Path) -> list[dict[str, Any]]:
    """The records in a journal file, without a torn last line.

    Only the last line may be torn (the process died writing it, so nothing
    relied on it). A bad line with records after it is damage: ``ValueError``,
    and the journal is left for a person to look at.
    """
    lines = path.read_bytes().splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines):
                break
            raise ValueError(f"line {number} is not a journal record") from None
        if not (isinstance(record, dict) and "op" in record):
            raise ValueError(f"line {number} is not a journal record")
        records.append(record)
    return records


def apply(state: AgentState, record: dict[str, Any]) -> None:
    """Fold one journal record into ``state``."""
    op = record["op"]
    if op in _ACTION_STATUS:
        action, key = record["action"], record["key"]
        previous = get(state.ledger, action, key)
        result_json = previous.result_json if previous is not None else "null"
        if "result" in record:
            result_json = pydantic_core.to_json(record["result"]).decode()
        # Records are stamped "2026-11-22T03:10:00.123456Z": the ledger keeps seconds.
        at_second = record["at"][: len("2026-11-22T03:10:00")] + "Z"
        put(
            state.ledger,
            action,
            key,
            Entry(at_second, _ACTION_STATUS[op], record["run_id"], result_json),
        )
        if op == "commit":
            at = datetime.fromisoformat(record["at"])
            state.rate_limits.setdefault(action_key(action), []).append(at)
    elif op == "spend":
        state.budget.record(
            at=datetime.fromisoformat(record["at"]),
            run_id=record["run_id"],
            usd=record["usd"],
            tokens=record["tokens"],
        )
        state.metrics.cost_usd = round(state.metrics.cost_usd + record["usd"], 6)
        state.metrics.tokens += record["tokens"]


class Recovered(NamedTuple):
    """A crashed run's journal, folded into the state at the next start."""

    run_id: str
    records: int
    """How many records were folded in: 0 if the journal was folded before."""
    unresolved: list[tuple[str, str]]


def recover(state: AgentState, path: Path) -> Recovered | None:
    """Fold the journal at ``path`` (left by a run that died) into ``state``.

    Returns None when there is no journal. Otherwise the caller saves the
    state (if ``records`` is not 0) and then removes the journal.
    """
    if not path.exists():
        return None
    records = read(path)
    if not records or state.journal_folded == records[0]["run_id"]:
        return Recovered(run_id=state.journal_folded or "", records=0, unresolved=[])
    begin, rest = records[0], records[1:]
    if begin.get("agent", state.agent) != state.agent:
        raise ValueError(f"it is the journal of agent {begin['agent']!r}")
    for record in rest:
        apply(state, record)
    if begin["op"] == "begin" and begin.get("kind") == "run":
        _record_crash(state, begin, records[-1])
    state.journal_folded = begin["run_id"]
    return Recovered(
        run_id=begin["run_id"], records=len(records), unresolved=unresolved(state.ledger)
    )


def _record_crash(state: AgentState, begin: dict[str, Any], last: dict[str, Any]) -> None:
    from agentops.state import ErrorRecord, LastRun  # noqa: PLC0415 - state imports this module

    started = datetime.fromisoformat(begin["at"])
    ended = datetime.fromisoformat(last["at"])
    message = "the run died before it finished (killed or crashed); its journal was recovered"
    state.last_run = LastRun(
        run_id=begin["run_id"],
        started_at=started,
        finished_at=ended,
        status=CRASHED,
        duration_s=round((ended - started).total_seconds(), 3),
        error=message,
    )
    state.metrics.runs += 1
    state.metrics.failed += 1
    state.rate_limits.setdefault(RUNS, []).append(started)
    state.record_error(
        ErrorRecord(at=ended, run_id=begin["run_id"], category=CRASHED, message=message)
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
