"""The ledger: every guarded action an agent performed, by action name and key.

In the state file each entry is one line of text, time first::

    "ledger": {
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
- ``unresolved``: the process died inside ``do()`` and nobody knows yet whether
  the effect happened. It is never blindly redone.

One string per entry because a ledger may hold a hundred thousand entries and
every run loads and saves it: a dict per entry takes three times as long to
load (see bench/ledger.py). Time first, in a fixed width, so that pruning by
age is a string comparison.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final, Literal, NamedTuple, cast

from pydantic import StringConstraints

__all__ = [
    "COMMITTED",
    "FAILED",
    "UNDONE",
    "UNRESOLVED",
    "Entry",
    "EntryLine",
    "LedgerMap",
    "Status",
    "get",
    "iso_second",
    "prune",
    "put",
    "unresolved",
]

Status = Literal["committed", "undone", "failed", "unresolved"]

COMMITTED: Final = "committed"
UNDONE: Final = "undone"
FAILED: Final = "failed"
UNRESOLVED: Final = "unresolved"

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


def iso_second(moment: Any) -> str:
    """A UTC datetime as ``2026-11-22T03:10:00Z``: fixed width, so it sorts as text."""
    text: str = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return text


def get(ledger: LedgerMap, action: str, key: str) -> Entry | None:
    """The entry of ``(action, key)``, if the ledger holds one."""
    line = ledger.get(action, {}).get(key)
    return None if line is None else Entry.parse(line)


def put(ledger: LedgerMap, action: str, key: str, entry: Entry) -> None:
    """Store ``entry`` as the latest state of ``(action, key)``."""
    ledger.setdefault(action, {})[key] = entry.line


def unresolved(ledger: LedgerMap) -> list[tuple[str, str]]:
    """``(action, key)`` of every entry whose effect is unknown."""
    return [
        (action, key)
        for action, entries in ledger.items()
        for key, line in entries.items()
        if _status_is(line, UNRESOLVED)
    ]


def prune(ledger: LedgerMap, *, before: str) -> int:
    """Forget settled entries last changed before ``before``; keep unresolved ones.

    Returns how many entries were dropped.
    """
    dropped = 0
    for action in list(ledger):
        entries = ledger[action]
        kept = {k: v for k, v in entries.items() if v >= before or _status_is(v, UNRESOLVED)}
        dropped += len(entries) - len(kept)
        if kept:
            ledger[action] = kept
        else:
            del ledger[action]
    return dropped


def _status_is(line: str, status: str) -> bool:
    return line.startswith(status, _AT_WIDTH + 1)
