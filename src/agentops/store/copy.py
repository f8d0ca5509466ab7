"""``agentops store copy``: moving a project's agents from one store to another.

The copy first takes the lease of every agent, on both stores
(:meth:`~agentops.store.base.Store.leases`: all or none), and holds them
all until it is done: an agent that is running makes it stop at once with
:class:`~agentops.errors.Overlap` (75) before anything is read or written,
and no run can start on any agent meanwhile, so the copy is never left half
done by one. Then everything is checked before anything is written: an
agent whose run died and left a journal must be recovered first (its next
run does it), every agent's notes are read (a damaged notes file refuses
the copy), and an agent the target already holds, notes included, is
replaced only when asked. A copy there and back changes nothing.

The notes (``ctx.memory.note``) move with the rest: a store's own rows or
its notes files, whichever each end keeps (:class:`~agentops.model.noterows.NoteShelf`),
written before the agent's state. Two ends keeping them as files in the
same directory share them: nothing to move. The LLM reply cache does not
move: it is a cache, and the target's first run of an agent asks the model
again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentops.errors import StateError, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from agentops.model.noterows import NoteShelf, StoredNote
    from agentops.store.base import Snapshot, Store

__all__ = ["COPY_TTL_S", "copy_agents"]

COPY_TTL_S = 300.0
"""How long a copy may hold the agents' leases on a shared store."""


def copy_agents(
    names: Iterable[str],
    source: Store,
    target: Store,
    *,
    run_id: str,
    overwrite: bool,
    notes: tuple[NoteShelf, NoteShelf],
) -> list[str]:
    """Copy every agent of ``names`` the source holds; return those copied.

    ``notes``: where the source keeps the agents' notes, and where the target does.
    """
    names = list(names)
    source_notes, target_notes = notes
    shared = source_notes.files is not None and source_notes.files == target_notes.files
    with (
        source.leases(names, run_id=run_id, ttl_s=COPY_TTL_S),
        target.leases(names, run_id=run_id, ttl_s=COPY_TTL_S) as leases,
    ):
        for name in names:  # nothing is written until every agent can be copied
            _refuse_unrecovered(source, name)
            _refuse_to_replace(
                target, name, overwrite=overwrite, notes=not shared and target_notes.holds(name)
            )
        snapshots = [source.snapshot(name) for name in names]
        kept: list[list[StoredNote]] = [[] if shared else source_notes.read(name) for name in names]
        copied = []
        for snapshot, its_notes in zip(snapshots, kept, strict=True):
            if not (_holds_anything(snapshot) or its_notes):  # it never ran: nothing to move
                continue
            lease = leases[snapshot.agent]
            if not shared:  # before the state: a copy cut short here is refused until redone
                lease.check()
                target_notes.replace(snapshot.agent, its_notes)
            target.put_snapshot(lease, snapshot)
            copied.append(snapshot.agent)
    return copied


def _refuse_unrecovered(source: Store, name: str) -> None:
    # Its journal holds commits the state does not: copied without them, they
    # would repeat. A deadline marker not yet recorded would be lost (the dead
    # run never counted): the agent's next run records both.
    remains = source.remains(name)
    if remains.records is not None or remains.markers:
        left = (
            "a journal" if remains.records is not None else "the marker of a run its deadline ended"
        )
        raise StateError(
            f"{name}: a run that died left {left} in the source store; "
            "run the agent once (it records what it left), then copy",
            agent=name,
        )


def _refuse_to_replace(target: Store, name: str, *, overwrite: bool, notes: bool) -> None:
    # What a run that died on the target left is recorded there first: replaced,
    # the target's journal or deadline marker would be told of a run the copy never had.
    remains = target.remains(name)
    if remains.records is not None or remains.markers:
        raise UsageError(
            f"{name}: a run that died left a journal or a deadline marker in the target "
            "store; run the agent there once (it records what it left), then copy",
            agent=name,
        )
    # A pause, a claimed tick, a pending notice or a note is the operator's too:
    # anything the target holds of the agent is replaced only when asked.
    if not overwrite and (notes or _holds_anything(target.snapshot(name))):
        raise UsageError(
            f"{name}: the target store holds this agent already; "
            "--overwrite replaces what it holds",
            agent=name,
        )


def _holds_anything(snapshot: Snapshot) -> bool:
    return any(part is not None for part in snapshot[1:])
