"""``agentops store copy``: moving a project's agents from one store to another.

Each agent is copied under the leases of both stores, so no run changes it
on either side meanwhile. Everything is checked before anything is written:
an agent whose run died and left a journal must be recovered first (its
next run does it), and an agent the target already holds is replaced only
when asked. A copy there and back changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentops.errors import StateError, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from agentops.store.base import Snapshot, Store

__all__ = ["COPY_TTL_S", "copy_agents"]

COPY_TTL_S = 300.0
"""How long a copy may hold an agent's lease on a shared store."""


def copy_agents(
    names: Iterable[str], source: Store, target: Store, *, run_id: str, overwrite: bool
) -> list[str]:
    """Copy every agent of ``names`` the source holds; return those copied."""
    names = list(names)
    for name in names:  # nothing is written until every agent can be copied
        _refuse_unrecovered(source, name)
        _refuse_to_replace(target, name, overwrite=overwrite)
    copied = []
    for name in names:
        with (
            source.lease(name, run_id=run_id, ttl_s=COPY_TTL_S),
            target.lease(name, run_id=run_id, ttl_s=COPY_TTL_S) as lease,
        ):
            # Again, under the leases: a run may have died, or a pause come, since.
            _refuse_unrecovered(source, name)
            _refuse_to_replace(target, name, overwrite=overwrite)
            snapshot = source.snapshot(name)
            if not _holds_anything(snapshot):
                continue  # it never ran: nothing to move
            target.put_snapshot(lease, snapshot)
            copied.append(name)
    return copied


def _refuse_unrecovered(source: Store, name: str) -> None:
    # Its journal holds commits the state does not: copied without them, they would repeat.
    if source.pending(name) is not None:
        raise StateError(
            f"{name}: a run that died left a journal in the source store; "
            "run the agent once (it recovers the journal), then copy",
            agent=name,
        )


def _refuse_to_replace(target: Store, name: str, *, overwrite: bool) -> None:
    # A pause, a claimed tick or a pending notice is the operator's too:
    # anything the target holds of the agent is replaced only when asked.
    if target.pending(name) is not None or (
        not overwrite and _holds_anything(target.snapshot(name))
    ):
        raise UsageError(
            f"{name}: the target store holds this agent already; "
            "--overwrite replaces what it holds",
            agent=name,
        )


def _holds_anything(snapshot: Snapshot) -> bool:
    return any(part is not None for part in snapshot[1:])
