"""``agentops store copy``: moving a project's agents from one store to another.

The copy first takes the lease of every agent, on both stores
(:meth:`~agentops.store.base.Store.leases`: all or none), and holds them
all until it is done: an agent that is running makes it stop at once with
:class:`~agentops.errors.Overlap` (75) before anything is read or written,
and no run can start on any agent meanwhile, so the copy is never left half
done by one. Then everything is checked before anything is written: an
agent whose run died and left a journal must be recovered first (its next
run does it), and an agent the target already holds is replaced only when
asked. A copy there and back changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentops.errors import StateError, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from agentops.store.base import Snapshot, Store

__all__ = ["COPY_TTL_S", "copy_agents"]

COPY_TTL_S = 300.0
"""How long a copy may hold the agents' leases on a shared store."""


def copy_agents(
    names: Iterable[str], source: Store, target: Store, *, run_id: str, overwrite: bool
) -> list[str]:
    """Copy every agent of ``names`` the source holds; return those copied."""
    names = list(names)
    with (
        source.leases(names, run_id=run_id, ttl_s=COPY_TTL_S),
        target.leases(names, run_id=run_id, ttl_s=COPY_TTL_S) as leases,
    ):
        for name in names:  # nothing is written until every agent can be copied
            _refuse_unrecovered(source, name)
            _refuse_to_replace(target, name, overwrite=overwrite)
        snapshots = [source.snapshot(name) for name in names]
        copied = []
        for snapshot in snapshots:
            if _holds_anything(snapshot):  # one that never ran has nothing to move
                target.put_snapshot(leases[snapshot.agent], snapshot)
                copied.append(snapshot.agent)
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
