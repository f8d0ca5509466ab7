"""How a state and a ledger are written down, whatever keeps them: one form for every backend.

The state is indented JSON (people read it); the ledger is a document of its
own (``_LedgerFile``: the agent, the last journal folded in, the entries).
:func:`read_state` and :func:`read_ledger` validate what they read and say
what is wrong with it in one line, naming ``where`` it was read from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError

from agentops.config import describe_validation_error
from agentops.ledger import Ledger, LedgerMap
from agentops.state import AgentState

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["LEDGER_SCHEMA_VERSION", "LedgerDocument", "dump", "read_ledger", "read_state"]

LEDGER_SCHEMA_VERSION = 1


class LedgerDocument(BaseModel):
    """A ledger as it is stored."""

    model_config = ConfigDict(extra="forbid", cache_strings="none")

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


def read_state(raw: bytes | str, name: str, unreadable: Callable[[str], Exception]) -> AgentState:
    """The state in ``raw``, for agent ``name``; ``unreadable(why)`` is raised otherwise."""
    try:
        state = AgentState.model_validate_json(raw)
    except ValidationError as exc:
        raise unreadable(describe_validation_error(exc)) from exc
    except ValueError as exc:  # nesting too deep for the parser
        raise unreadable(f"not JSON: {exc}") from exc
    if state.agent != name:
        raise unreadable(f"it holds the state of agent {state.agent!r}")
    return state


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
