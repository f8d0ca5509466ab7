"""The ledger: every guarded action an agent performed, by action name and key.

In its file (``state/<name>.ledger.json`` in the file store) each entry is
one line of text, time first::

    "entries": {
      "publish": {
        "post-01": "2026-11-22T03:10:00Z committed 20261122T031000Z-3fa2c1 {}"
      }
    }

that is ``<at> <status> <run_id> <result as JSON>`` (here ``do()`` returned an
empty dict), where the status is

- ``committed``: ``do()`` ran and its result is recorded; it is never run again;
- ``undone``: committed, then undone by a rollback; it may run again;
- ``failed``: ``do()`` raised, or ``reconcile()`` said the effect did not happen;
  it may run again;
- ``unresolved``: the process died inside ``do()`` or ``undo()`` and nobody
  knows yet whether the effect is there. It is never blindly redone.

One string per entry because a ledger may hold a hundred thousand entries and
a run that acts loads and saves it: a dict per entry takes three times as
long to load (see bench/ledger.py). Time first, in a fixed width, so that pruning by
age is a string comparison.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final, Literal, NamedTuple, cast

from pydantic import StringConstraints

__all__ = [
    "COMMITTED",
    "FAILED",
    "ROW_KEYS",
    "UNDONE",
    "UNRESOLVED",
    "Entry",
    "EntryLine",
    "Ledger",
    "LedgerMap",
    "Status",
    "unresolved_of",
]

Status = Literal["committed", "undone", "failed", "unresolved"]

COMMITTED: Final = "committed"
UNDONE: Final = "undone"
FAILED: Final = "failed"
UNRESOLVED: Final = "unresolved"

ROW_KEYS = ("action", "key", "status", "at", "run_id", "result")
"""The keys of an entry as ``agentops ledger AGENT --json`` prints it (:meth:`Ledger.rows`).

A ledger can hold a hundred thousand entries: the rows are dict literals (the
fastest to build), kept to these keys by the tests.
"""

_AT_WIDTH = len("2026-11-22T03:10:00Z")

EntryLine = Annotated[
    str,
    StringConstraints(
        pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (?:committed|undone|failed|unresolved) \S+ \S.*$"
    ),
]
"""An entry as it is stored: ``<at> <status> <run_id> <result JSON>``."""

LedgerMap = dict[str, dict[str, EntryLine]]
"""action name -> key -> entry line."""


class Entry(NamedTuple):
    """One action's latest known state, read from its line."""

    at: str
    status: Status
    run_id: str
    result_json: str

    @classmethod
    def parse(cls, line: str) -> Entry:
        """Read an entry line (already validated by the state model)."""
        at, status, run_id, result_json = line.split(" ", 3)
        return cls(at, cast("Status", status), run_id, result_json)

    @property
    def line(self) -> str:
        """The entry as it is stored."""
        return f"{self.at} {self.status} {self.run_id} {self.result_json}"

    @property
    def result(self) -> Any:
        """The recorded result of ``do()``, decoded (as text if a person garbled it)."""
        try:
            return json.loads(self.result_json)
        except ValueError:
            return self.result_json


class Ledger:
    """One agent's ledger: entries by action and key, and the last journal folded in.

    It lives beside the state (``state/<name>.ledger.json`` in the file
    store) and is loaded only when a run needs it: when an agent performs its
    first guarded action, or a crashed run's actions are recovered. A run
    that performs none never pays for a hundred thousand entries.
    """

    __slots__ = ("changed", "entries", "folded")

    def __init__(self, entries: LedgerMap | None = None, *, folded: str | None = None) -> None:
        """A ledger holding ``entries``; ``folded`` names the last journal folded in."""
        self.entries: LedgerMap = entries if entries is not None else {}
        self.folded = folded
        self.changed = False
        """Whether it differs from what the store holds (only then is it saved)."""

    def get(self, action: str, key: str) -> Entry | None:
        """The entry of ``(action, key)``, if the ledger holds one."""
        line = self.entries.get(action, {}).get(key)
        return None if line is None else Entry.parse(line)

    def put(self, action: str, key: str, entry: Entry) -> None:
        """Store ``entry`` as the latest state of ``(action, key)``."""
        self.put_line(action, key, entry.line)

    def put_line(self, action: str, key: str, line: EntryLine) -> None:
        """Store an entry already in its stored form (``Entry.line``): a run writes many."""
        self.entries.setdefault(action, {})[key] = line
        self.changed = True

    def __len__(self) -> int:
        """How many entries it holds."""
        return sum(len(entries) for entries in self.entries.values())

    def unresolved(self) -> list[tuple[str, str]]:
        """``(action, key)`` of every entry whose effect is unknown."""
        return unresolved_of(self.entries)

    def prune(self, *, before: str) -> int:
        """Forget settled entries last changed before ``before``; keep unresolved ones.

        Returns how many entries were dropped.
        """
        dropped = 0
        for action in list(self.entries):
            entries = self.entries[action]
            kept = {k: v for k, v in entries.items() if v >= before or _status_is(v, UNRESOLVED)}
            dropped += len(entries) - len(kept)
            if kept:
                self.entries[action] = kept
            else:
                del self.entries[action]
        self.changed = self.changed or dropped > 0
        return dropped

    def rows(self, *, every: bool) -> list[dict[str, Any]]:
        """Entries as rows, newest first: the unresolved ones, or ``every`` one."""
        rows = [
            {
                "action": action,
                "key": key,
                "status": entry.status,
                "at": entry.at,
                "run_id": entry.run_id,
                "result": entry.result,
            }
            for action, entries in self.entries.items()
            for key, line in entries.items()
            if every or _status_is(line, UNRESOLVED)
            for entry in (Entry.parse(line),)
        ]
        return sorted(rows, key=lambda row: row["at"], reverse=True)


def unresolved_of(entries: LedgerMap) -> list[tuple[str, str]]:
    """``(action, key)`` of every entry in ``entries`` whose effect is unknown."""
    return [
        (action, key)
        for action, keys in entries.items()
        for key, line in keys.items()
        if isinstance(line, str) and _status_is(line, UNRESOLVED)
    ]


def _status_is(line: str, status: str) -> bool:
    return line.startswith(status, _AT_WIDTH + 1)
