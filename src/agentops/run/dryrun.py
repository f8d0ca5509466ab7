"""What a dry run keeps: the money it really spent, and nothing else.

A dry run performs no guarded action and saves no state. But a model called
during one is really paid for, so its costs count against the caps like any
other: each money record (``spend``, ``reserve``, ``settle``) of a dry run is
committed at once to the stored state, under the run's lease, and every other
record is dropped. A dry run killed between a reservation and its settlement
leaves the reservation standing, as a real run's journal does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentops.model.journal import Reserve, Settle, Spend, fold_state

if TYPE_CHECKING:
    from pydantic import BaseModel

    from agentops.store import Lease, Store

__all__ = ["DryRunJournal"]

_MONEY = (Spend, Reserve, Settle)


class DryRunJournal:
    """A dry run's journal: money records are committed to the stored state as they come."""

    def __init__(self, store: Store, lease: Lease, agent: str, run_id: str) -> None:
        """Commit through ``store`` under ``lease``, for ``agent``'s dry run ``run_id``."""
        self.run_id = run_id
        self._store = store
        self._lease = lease
        self._agent = agent

    def append(self, record: BaseModel, *, durable: bool = True) -> None:  # noqa: ARG002 - always durable
        """Commit a money record to the stored state; drop any other."""
        if not isinstance(record, _MONEY):
            return
        stored = self._store.load(self._agent)  # not the dry run's state: it is not saved
        fold_state(stored, record)
        self._store.commit(self._lease, stored, keep_backup=True)  # the last real run's stays

    def sync(self) -> None:
        """Nothing waits: every record kept is committed already."""

    def close(self) -> None:
        """Nothing to release."""
