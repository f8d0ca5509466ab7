"""The ledger: every guarded action an agent performed, by action name and key.

In the state file it reads ``ledger[action][key] = {status, at, run_id, result_json}``,
``result_json`` being ``do()``'s result as JSON text:

- ``committed``: ``do()`` ran and its result is recorded; it is never run again;
- ``undone``: committed, then undone by a rollback; it may run again;
- ``failed``: ``do()`` raised, or ``reconcile()`` said the effect did not happen;
  it may run again;
- ``unresolved``: the process died inside ``do()`` and nobody knows yet whether
  the effect happened. It is never blindly redone.

Entries are plain dicts of strings (a TypedDict validated by pydantic), and
results are kept as JSON text, because a ledger may hold a hundred thousand
entries and every run loads it: a nested object per entry would double the
objects to build (see bench/ledger.py).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final, Literal

from pydantic import StringConstraints
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

__all__ = [
    "COMMITTED",
    "FAILED",
    "UNDONE",
    "UNRESOLVED",
    "LedgerEntry",
    "LedgerMap",
    "Status",
    "iso_second",
    "prune",
    "result_of",
    "unresolved",
]

Status = Literal["committed", "undone", "failed", "unresolved"]

COMMITTED: Final = "committed"
UNDONE: Final = "undone"
FAILED: Final = "failed"
UNRESOLVED: Final = "unresolved"


# Fixed width, so that times compare correctly as text: pruning a ledger of
# 100,000 entries must not parse 100,000 dates.
SecondTimestamp = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")]


class LedgerEntry(TypedDict):
    """One action's latest known state."""

    status: Status
    at: SecondTimestamp
    run_id: str
    result_json: str | None


LedgerMap = dict[str, dict[str, LedgerEntry]]
"""action name -> key -> entry."""


def iso_second(moment: Any) -> str:
    """A UTC datetime as ``2026-11-22T03:10:00Z``: fixed width, so it sorts as text."""
    text: str = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return text


def result_of(entry: LedgerEntry) -> Any:
    """The recorded result of ``do()``, decoded."""
    text = entry["result_json"]
    return None if text is None else json.loads(text)


def unresolved(ledger: LedgerMap) -> list[tuple[str, str]]:
    """``(action, key)`` of every entry whose effect is unknown."""
    return [
        (action, key)
        for action, entries in ledger.items()
        for key, entry in entries.items()
        if entry["status"] == UNRESOLVED
    ]


def prune(ledger: LedgerMap, *, before: str) -> int:
    """Forget settled entries last changed before ``before``; keep unresolved ones.

    Returns how many entries were dropped.
    """
    dropped = 0
    for action in list(ledger):
        entries = ledger[action]
        kept = {k: e for k, e in entries.items() if e["at"] >= before or e["status"] == UNRESOLVED}
        dropped += len(entries) - len(kept)
        if kept:
            ledger[action] = kept
        else:
            del ledger[action]
    return dropped
