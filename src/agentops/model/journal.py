"""The journal of one run: its records, how they are read back, and how they are folded in.

A run appends a record before and after every side effect (a guarded
action's ``intent`` and ``commit``, an undo's ``undo`` and ``undone``) and for
every cost (``spend``, or ``reserve`` then ``settle``). Where the records live
is the store's business (:mod:`agentops.store`); this module knows only the
records themselves:

- the record models, validated when a journal is read back, so a damaged or
  hand-made journal is refused instead of folded into a state the next run
  cannot read;
- :func:`apply`, the one fold used while the run goes on and when a crashed
  run's journal is replayed, so both paths always agree;
- :func:`recover`, the replay of a journal left by a run that died.

A journal is dropped once the state holding its records is committed; one
found at the next start belongs to a run that died. ``journal_folded`` in the
state and in the ledger makes folding a journal twice harmless.
"""

# No ``from __future__ import annotations``: pydantic would evaluate every
# annotation from its text again, and cron pays each model's class at every tick.
import contextlib
import functools
import gc
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple, TypeVar

import pydantic_core
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from agentops._infra.timestamps import in_range, iso_second
from agentops.model.ledger import COMMITTED, FAILED, UNDONE, UNRESOLVED, Status
from agentops.model.money import MAX_TOKENS, MAX_USD
from agentops.model.state import JsonValue, action_key

if TYPE_CHECKING:
    from collections.abc import Iterator

    from agentops.model.ledger import Ledger
    from agentops.model.state import AgentState

__all__ = [
    "Abort",
    "Begin",
    "Commit",
    "Intent",
    "Record",
    "RecordBase",
    "Recovered",
    "Reserve",
    "Settle",
    "Spend",
    "Undo",
    "UndoFailed",
    "Undone",
    "apply",
    "build",
    "encode",
    "fold_ledger",
    "fold_state",
    "gc_paused",
    "needs_ledger",
    "parse_line",
    "parse_lines",
    "recover",
    "written",
]


def _aware(moment: datetime) -> datetime:
    # A record without a zone was not written by agentops: refused, not guessed.
    if moment.tzinfo is None:
        raise ValueError("a journal timestamp must carry its zone")
    return in_range(moment)


RecordTime = Annotated[datetime, AfterValidator(_aware)]
RunId = Annotated[str, StringConstraints(pattern=r"^\S{1,200}$")]
Amount = Annotated[float, Field(ge=0, le=MAX_USD, allow_inf_nan=False)]
Tokens = Annotated[int, Field(ge=0, le=MAX_TOKENS)]


class RecordBase(BaseModel):
    """What every record has: the run it belongs to, and when it was written."""

    # Frozen and strict about keys: what is folded is exactly what was written.
    # Built on first validation: a run writes records (model_construct) but
    # reads a journal back only after a crash, and cron pays every import.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)

    run_id: RunId
    at: RecordTime


class Begin(RecordBase):
    """The first record of every journal: whose it is and what kind of invocation."""

    op: Literal["begin"] = "begin"
    agent: str
    kind: Literal["run", "approve", "edit"] = "run"


class _ActionRecord(RecordBase):
    action: str
    key: str


class Intent(_ActionRecord):
    """Durable before ``do()`` is called: until a commit follows, the effect is unknown."""

    op: Literal["intent"] = "intent"


class Commit(_ActionRecord):
    """``do()`` returned ``result`` (or ``reconcile()`` found it had happened)."""

    op: Literal["commit"] = "commit"
    result: JsonValue = None


class Abort(_ActionRecord):
    """``do()`` raised, or ``reconcile()`` found the effect had not happened."""

    op: Literal["abort"] = "abort"
    error: str = ""


class Undo(_ActionRecord):
    """Durable before ``undo()`` is called: until ``undone`` follows, the effect is unknown."""

    op: Literal["undo"] = "undo"


class Undone(_ActionRecord):
    """``undo()`` returned: the effect is gone and ``do()`` may run again."""

    op: Literal["undone"] = "undone"


class UndoFailed(_ActionRecord):
    """``undo()`` raised: the effect stands, committed as before."""

    op: Literal["undo_failed"] = "undo_failed"
    error: str = ""


class Spend(RecordBase):
    """A cost recorded before it was incurred (``ctx.spend``)."""

    op: Literal["spend"] = "spend"
    usd: Amount = 0.0
    tokens: Tokens = 0


class Reserve(RecordBase):
    """The worst case of a cost about to be incurred, held against the caps until settled."""

    op: Literal["reserve"] = "reserve"
    id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    usd: Amount = 0.0
    tokens: Tokens = 0


class Settle(RecordBase):
    """What a reserved cost came to: the reservation is replaced by this amount."""

    op: Literal["settle"] = "settle"
    id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    usd: Amount = 0.0
    tokens: Tokens = 0


Record = Annotated[
    Begin | Intent | Commit | Abort | Undo | Undone | UndoFailed | Spend | Reserve | Settle,
    Field(discriminator="op"),
]
"""Any journal record, told apart by its ``op``."""


# The ledger status each action record leaves its entry in.
_ACTION_STATUS: dict[str, Status] = {
    "intent": UNRESOLVED,
    "commit": COMMITTED,
    "abort": FAILED,
    "undo": UNRESOLVED,
    "undone": UNDONE,
    "undo_failed": COMMITTED,
}


_R = TypeVar("_R", bound="RecordBase")


def build(model: type[_R], /, **fields: Any) -> _R:
    """A record agentops makes itself, built without validation: its fields were checked.

    What ``model_construct`` does, without its generality: a run makes two
    records per guarded action, and this is a tenth of their cost.
    """
    record = model.__new__(model)
    values = {"op": _op(model), **fields}  # op first: how a journal line reads
    object.__setattr__(record, "__dict__", values)
    object.__setattr__(record, "__pydantic_fields_set__", set(values))
    object.__setattr__(record, "__pydantic_extra__", None)
    object.__setattr__(record, "__pydantic_private__", None)
    return record


@functools.cache
def _op(model: type[RecordBase]) -> str:
    op: str = model.model_fields["op"].default
    return op


def encode(record: BaseModel) -> bytes:
    """A record as one journal line (JSON, newline-terminated)."""
    fields = vars(record)
    if next(iter(fields)) != "op":  # built by pydantic: op comes last
        fields = {"op": fields["op"], **fields}
    return pydantic_core.to_json(fields) + b"\n"


@functools.cache
def _record_adapter() -> TypeAdapter[Record]:
    return TypeAdapter(Record)


def parse_line(line: bytes | str) -> BaseModel:
    """One journal line as its record; ``ValueError`` says what is wrong with it."""
    try:
        record: BaseModel = _record_adapter().validate_json(line)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if errors and errors[0]["type"] == "json_invalid":
            raise ValueError("not JSON") from None
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'record'}: "
            + e["msg"].removeprefix("Value error, ")
            for e in errors[:3]
        )
        raise ValueError(problems) from None
    return record


def written(data: bytes) -> bytes:
    """A journal file's records: its bytes up to the first zero (the zeros written ahead)."""
    return data.split(b"\0", 1)[0]


def parse_lines(data: bytes, *, agent: str) -> list[BaseModel]:
    """Every record in ``agent``'s journal, in order; the first must be a :class:`Begin`.

    Only the last line may be torn (the process died while writing it, so
    nothing relied on it). Any other bad line is damage: ``ValueError``
    naming it, and the journal is left for a person to look at.

    The records end at the first zero byte: the file store writes zeros
    ahead of them. After a power cut, what follows a zero was never made
    durable (an fsync writes every page before it too), so it is cut like a
    torn line: nothing relied on it.
    """
    lines = written(data).split(b"\n")
    torn_tail = lines.pop() if lines else b""
    records: list[BaseModel] = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(parse_line(line))
        except ValueError as exc:
            raise ValueError(f"line {number} is not a journal record: {exc}") from None
    if torn_tail:  # cut short by a kill: whole, it counts; torn, it was never acknowledged
        with contextlib.suppress(ValueError):
            records.append(parse_line(torn_tail))
    if records and not isinstance(records[0], Begin):
        raise ValueError("line 1: a journal must start with a begin record")
    if records and records[0].agent != agent:  # type: ignore[attr-defined]
        raise ValueError(f"it is the journal of agent {records[0].agent!r}")  # type: ignore[attr-defined]
    if any(isinstance(r, Begin) for r in records[1:]) or any(
        r.run_id != records[0].run_id  # type: ignore[attr-defined]
        for r in records
    ):
        raise ValueError("it mixes the records of several runs")
    return records


def apply(state: "AgentState", ledger: "Ledger | None", record: BaseModel) -> None:
    """Fold one record into ``state`` and, for a guarded action's record, into ``ledger``."""
    if isinstance(record, _ActionRecord):
        if ledger is None:
            raise TypeError("an action record needs the ledger")
        fold_ledger(ledger, record)
    fold_state(state, record)


def fold_state(state: "AgentState", record: BaseModel) -> None:
    """The state's share of a record: costs, and the commits an action's rate limit counts.

    Durable data, folded the same way by the live run and by crash recovery;
    the guard policies (``agentops.guards.costs``, ``agentops.guards.rates``)
    only read what it folds.
    """
    if isinstance(record, Commit):
        state.rate_limits.setdefault(action_key(record.action), []).append(record.at)
    elif isinstance(record, Spend):
        state.budget.record(
            at=record.at, usd=record.usd, tokens=record.tokens, run_id=record.run_id
        )
        state.metrics.add_cost(record.usd, record.tokens)
    elif isinstance(record, Reserve):
        state.budget.reserve(
            record.id, at=record.at, usd=record.usd, tokens=record.tokens, run_id=record.run_id
        )
        state.metrics.add_cost(record.usd, record.tokens)
    elif isinstance(record, Settle):
        was = state.budget.settle(record.id, usd=record.usd, tokens=record.tokens)
        if was is not None:
            state.metrics.add_cost(record.usd - was.usd, record.tokens - was.tokens)


def fold_ledger(ledger: "Ledger", record: _ActionRecord) -> None:
    """The ledger's share of a guarded action's record: the entry's new status."""
    if isinstance(record, Commit):
        result = record.result
        result_json = "null" if result is None else pydantic_core.to_json(result).decode()
    else:  # the entry keeps the result it had
        previous = ledger.get(record.action, record.key)
        result_json = previous.result_json if previous is not None else "null"
    status = _ACTION_STATUS[record.op]  # type: ignore[attr-defined]
    ledger.put_line(
        record.action, record.key, f"{iso_second(record.at)} {status} {record.run_id} {result_json}"
    )


@contextlib.contextmanager
def gc_paused() -> "Iterator[None]":
    """No garbage collection while a journal is read and folded: it only creates.

    Every record read stays alive until it is folded, so each collection
    would scan them all again: 200,000 records took quadratic time
    (bench/journal.py). Nothing read holds a cycle; collection resumes after.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def needs_ledger(records: list[BaseModel]) -> bool:
    """Whether folding ``records`` touches the ledger (which is then loaded)."""
    return any(isinstance(r, _ActionRecord) for r in records)


class Recovered(NamedTuple):
    """A crashed run's journal, folded into the state at the next start."""

    run_id: str
    kind: str
    records: int
    """How many records it held after its ``begin``."""
    new: bool
    """Whether the state had not folded it before (then the crashed run is recorded)."""
    started_at: datetime
    last_at: datetime


def recover(state: "AgentState", ledger: "Ledger | None", records: list[BaseModel]) -> Recovered:
    """Fold the records of a journal left by a run that died into ``state`` and ``ledger``.

    Folding is idempotent: the state and the ledger each remember the last
    journal folded into them, and skip it if they meet it again (the process
    may die between committing the two, or before dropping the journal).
    """
    begin = records[0]
    assert isinstance(begin, Begin)  # noqa: S101 - parse_lines guarantees it
    if ledger is None and needs_ledger(records):
        raise TypeError("these records need the ledger")
    into_state = state.journal_folded != begin.run_id
    # The ledger is committed before the state, so it may hold a journal the state lacks.
    into_ledger = ledger is not None and ledger.folded != begin.run_id
    for record in records[1:]:
        if into_state:
            fold_state(state, record)
        if into_ledger and isinstance(record, _ActionRecord):
            fold_ledger(ledger, record)  # type: ignore[arg-type]
    if into_state:
        state.journal_folded = begin.run_id
    if into_ledger:
        ledger.folded = begin.run_id  # type: ignore[union-attr]
    return Recovered(
        run_id=begin.run_id,
        kind=begin.kind,
        records=len(records) - 1,
        new=into_state,
        started_at=begin.at,
        last_at=records[-1].at,  # type: ignore[attr-defined]
    )
