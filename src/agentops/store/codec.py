"""How a state and a ledger are written down, whatever keeps them: one form for every backend.

The state is indented JSON (people read it); the ledger is a document of its
own (``_LedgerFile``: the agent, the last journal folded in, the entries).
:func:`read_state` and :func:`read_ledger` validate what they read and say
what is wrong with it in one line, naming ``where`` it was read from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import pydantic_core
from pydantic import BaseModel, ConfigDict, ValidationError

from agentops.model.ledger import Ledger, LedgerMap
from agentops.model.state import SCHEMA_VERSION, AgentState, migrate
from agentops.project.config import describe_validation_error

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "LEDGER_SCHEMA_VERSION",
    "LedgerDocument",
    "dump",
    "read_ledger",
    "read_model",
    "read_state",
    "read_versioned_state",
]

LEDGER_SCHEMA_VERSION = 1

_M = TypeVar("_M", bound=BaseModel)


class LedgerDocument(BaseModel):
    """A ledger as it is stored."""

    # Built when a ledger is first read or written: a run that performs no
    # guarded action never loads it, and cron pays every model built at import.
    model_config = ConfigDict(extra="forbid", cache_strings="none", defer_build=True)

    schema_version: int = LEDGER_SCHEMA_VERSION
    agent: str
    journal_folded: str | None = None
    entries: LedgerMap = {}

    @classmethod
    def of(cls, name: str, ledger: Ledger) -> LedgerDocument:
        """The document of ``ledger`` (built, not validated: its entries were checked)."""
        return cls.model_construct(agent=name, journal_folded=ledger.folded, entries=ledger.entries)


def dump(model: BaseModel) -> bytes:
    """A document as stored: indented JSON, newline-terminated."""
    return model.model_dump_json(indent=2).encode() + b"\n"


def read_model(raw: bytes | str, model: type[_M], unreadable: Callable[[str], Exception]) -> _M:
    """A small record (a pause, the last attempt, notices) in ``raw``; ``unreadable(why)`` else."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise unreadable(describe_validation_error(exc)) from exc
    except ValueError as exc:  # nesting too deep for the parser
        raise unreadable(f"not JSON: {exc}") from exc


def read_state(raw: bytes | str, name: str, unreadable: Callable[[str], Exception]) -> AgentState:
    """The state in ``raw``, for agent ``name``; ``unreadable(why)`` is raised otherwise.

    An older ``schema_version`` is brought forward, a newer one refused.
    """
    return read_versioned_state(raw, name, unreadable)[0]


def read_versioned_state(
    raw: bytes | str, name: str, unreadable: Callable[[str], Exception]
) -> tuple[AgentState, LedgerMap | None]:
    """:func:`read_state`, and the ledger a version-1 state held (None for any other).

    Only the state an agent runs from may hand that ledger on: a backup's is older.
    """
    entries = None
    try:
        state = AgentState.model_validate_json(raw)
        error = None
    except ValidationError as exc:
        error = exc
    except ValueError as exc:  # nesting too deep for the parser
        raise unreadable(f"not JSON: {exc}") from exc
    if error is not None or state.schema_version != SCHEMA_VERSION:
        state, entries = _migrated(raw, error, unreadable)
    if state.agent != name:
        raise unreadable(f"it holds the state of agent {state.agent!r}")
    return state, entries


def _migrated(
    raw: bytes | str, error: ValidationError | None, unreadable: Callable[[str], Exception]
) -> tuple[AgentState, LedgerMap | None]:
    try:
        document = pydantic_core.from_json(raw, allow_inf_nan=False)
    except ValueError as exc:
        raise unreadable(f"not JSON: {exc}") from exc
    version = document.get("schema_version", 1) if isinstance(document, dict) else None
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise unreadable(
            f"schema_version {version} was written by a newer agentops; upgrade agentops"
        )
    if not (isinstance(version, int) and 1 <= version < SCHEMA_VERSION):
        raise unreadable(
            describe_validation_error(error) if error else f"bad schema_version {version!r}"
        ) from error
    document, entries = migrate(document)
    try:
        return AgentState.model_validate(document), entries
    except ValidationError as exc:
        raise unreadable(describe_validation_error(exc)) from exc


def read_ledger(raw: bytes | str, name: str, unreadable: Callable[[str], Exception]) -> Ledger:
    """The ledger in ``raw``, for agent ``name``; ``unreadable(why)`` is raised otherwise."""
    try:
        document = LedgerDocument.model_validate_json(raw)
    except ValidationError as exc:
        raise unreadable(describe_validation_error(exc)) from exc
    except ValueError as exc:
        raise unreadable(str(exc)) from exc
    if document.agent != name:
        raise unreadable(f"it is the ledger of agent {document.agent!r}")
    if document.schema_version > LEDGER_SCHEMA_VERSION:
        raise unreadable(
            f"schema_version {document.schema_version} was written by a newer agentops"
        )
    return Ledger(document.entries, folded=document.journal_folded)
