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

    from agentops.store.base import Store

__all__ = ["COPY_TTL_S", "copy_agents"]

COPY_TTL_S = 300.0
"""How long a copy may hold an agent's lease on a shared store."""


def copy_agents(
    names: Iterable[str], source: Store, target: Store, *, run_id: str, overwrite: bool
) -> list[str]:
    """Copy every agent of ``names`` the source holds; return those copied."""
    names = list(names)
    for name in names:  # nothing is written until every agent can be copied
        if source.pending(name) is not None:
            raise StateError(
                f"{name}: a run that died left a journal in the source store; "
                "run the agent once (it recovers the journal), then copy",
                agent=name,
            )
        if target.pending(name) is not None or (
            not overwrite and target.snapshot(name).state is not None
        ):
            raise UsageError(
                f"{name}: the target store holds this agent already; "
                "--overwrite replaces what it holds",
                agent=name,
            )
    copied = []
    for name in names:
        with (
            source.lease(name, run_id=run_id, ttl_s=COPY_TTL_S),
            target.lease(name, run_id=run_id, ttl_s=COPY_TTL_S) as lease,
        ):
            snapshot = source.snapshot(name)
            if snapshot.state is None and snapshot.ledger is None:
                continue  # it never ran: nothing to move
            target.put_snapshot(lease, snapshot)
            copied.append(name)
    return copied
