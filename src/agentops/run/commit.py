"""What a run keeps, and how it is committed: the state, the ledger, then the notes.

The order of durable writes is the crash-safety of a run:

1. the run's journal was begun before anything was done (:meth:`Run.open_journal`);
2. :func:`save` commits the state (and the ledger, if the run used it) and
   drops the run's journal in the same step: a crash before it leaves the
   journal for the next run to recover, a crash after it leaves nothing;
3. :func:`save_notes` writes the notes only after that: a crash between the
   two loses notes, and never repeats them.

A dry run commits nothing here (its journal kept the money it spent).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from agentops._infra.timestamps import iso_second
from agentops.errors import AgentOpsError, StateError, TaskFailed
from agentops.guards import policies
from agentops.model.state import LedgerSummary, check_readable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from agentops.run.run import Run

__all__ = ["commit", "keep_data", "keep_memory", "kept_data", "save", "save_notes"]

MAX_KEYS_SAID = 20
"""How many secret-looking keys one ``state.looks_secret`` warning names."""


def kept_data(run: Run, data: object) -> dict[str, Any]:
    """``ctx.state`` as the state will keep it: JSON the state file can hold, known secrets out.

    The agent's data is its own: only the secrets agentops knows (the
    environment's, the providers' keys, env files' values, secret params)
    are replaced; a value that merely looks secret is kept (:func:`keep_data`
    warns of it). A value that is not JSON fails this run cleanly
    (:class:`TaskFailed`) instead of making the state file unwritable.
    """
    if not isinstance(data, dict):
        raise TaskFailed(f"{run.name}: ctx.state must stay a dict, not {type(data).__name__}")
    try:
        redacted: dict[str, Any] = run.services.redactor.known(data)
        check_readable(redacted, inside=1)  # the state file holds it under "data"
    except ValueError as exc:  # not JSON, NaN or infinity, nested too deeply
        raise TaskFailed(f"{run.name}: ctx.state holds a value that is not JSON: {exc}") from exc
    return redacted


def keep_data(run: Run, data: dict[str, Any]) -> None:
    """Make ``data`` (from :func:`kept_data`) the state's, warning of keys that look secret.

    Said once: for the keys the state did not hold already, so an agent
    keeping a token-like cursor is told on the run that first keeps it.
    """
    redactor = run.services.redactor
    new = sorted(set(redactor.looks_secret(data)) - set(redactor.looks_secret(run.state.data)))
    if new:
        run.log.warning("state.looks_secret", keys=new[:MAX_KEYS_SAID], count=len(new))
    run.state.data = data


def keep_memory(run: Run) -> bool:
    """Keep the run's memory in its state; whether there are notes to save after it.

    Kept exactly when ``ctx.state`` is: the working memory now, the notes
    once the state is saved.
    """
    memory = run.memory_used
    if memory is None:  # untouched: the state keeps what it holds
        return False
    run.state.memory = memory.kept()
    run.state.metrics.notes += memory.pending
    return memory.pending > 0


def save(run: Run) -> None:
    """Commit the state (and the ledger, if the run used it), dropping the run's journal."""
    journal = run.journal
    if journal is not None:
        run.state.journal_folded = run.run_id
    try:
        commit(run, drop_journal=journal is not None)
    except StateError as exc:
        run.log.error("state.save_failed", error=exc.message)
        raise
    finally:
        if journal is not None:
            journal.close()


def save_notes(run: Run) -> None:
    """Write the notes the run made (after its state is committed), and log it.

    Raises :class:`~agentops.errors.StateError` if the file cannot be
    written, :class:`~agentops.errors.ConfigError` if SQLite lacks FTS5.
    """
    memory = run.memory_used
    if memory is None:
        return
    try:
        written, dropped = memory.save_notes()
    except AgentOpsError as exc:
        run.log.error("memory.save_failed", error=exc.message)
        raise
    if written:
        run.log.info("memory.saved", notes=written, dropped=dropped)


def commit(run: Run, *, drop_journal: bool, drop_markers: Sequence[str] = ()) -> None:
    """Commit the run's state, bounded, and its ledger if it was loaded (not in a dry run).

    ``drop_markers``: the run ids of published deadline markers the state now records.
    """
    services, state, spec = run.services, run.state, run.spec
    now = services.clock()
    ledger = run.ledger_used
    if ledger is not None:
        ledger.prune(before=iso_second(now - timedelta(seconds=spec.config.keep_s)))
        if ledger.changed:  # a dry run reads the summary too
            state.ledger_summary = LedgerSummary.of(ledger.entries)
    if services.dry_run:
        return
    policies.prune(spec.config, state, now)
    state.forget_expired(now)
    services.store.commit(
        run.lease, state, ledger=ledger, drop_journal=drop_journal, drop_markers=drop_markers
    )
