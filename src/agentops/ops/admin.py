"""An operator's edits of an agent's state, and the views behind them.

Each edit takes the agent's lock, recovers a crashed run's journal first, is
logged in the agent's log like a run, and is saved the same crash-safe way:

- :func:`reset_circuit`: close the circuit breaker by hand;
- :func:`resolve_action`: settle a ledger entry whose effect is unknown,
  as done (never run again) or to redo (``do()`` may run again);
- :func:`reject_held`: drop a result held for review;
- :func:`reset_guards`: forget the breaker's failures, the spends, the rate windows.

:func:`restore_state` (make the previous state the state again) takes the
lock but loads nothing: the state it replaces may be unreadable.
:func:`pause` and :func:`resume` need no lock: a pause works while a run
holds it (the runs after it are skipped).

Approving a held result runs agent code, so it lives in
:func:`agentops.run.runner.approve_held`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from agentops._infra.timestamps import iso_second
from agentops.errors import UsageError
from agentops.guards import policies
from agentops.model.journal import gc_paused, needs_ledger, recover
from agentops.model.ledger import COMMITTED, FAILED, Entry, Ledger
from agentops.model.state import LedgerSummary
from agentops.model.status import ExitCode, RunStatus
from agentops.run.commit import save
from agentops.run.deadline import lease_ttl_s
from agentops.run.invocation import Invocation
from agentops.run.options import RunOptions
from agentops.store import Pause, open_store

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from agentops.model.outcome import Outcome
    from agentops.model.state import AgentState
    from agentops.project.home import Project
    from agentops.run.run import Run
    from agentops.store import Store

__all__ = [
    "current_ledger",
    "current_state",
    "pause",
    "reject_held",
    "reset_circuit",
    "reset_guards",
    "resolve_action",
    "restore_state",
    "resume",
    "state_diff",
]


def current_state(project: Project, name: str, *, store: Store | None = None) -> AgentState:
    """The agent's state, without taking its lease (commits are atomic).

    A journal left by a run that died, or by one still running, is folded in
    (in memory only): what it did is what an operator needs to see.
    """
    return _read(project, name, store, with_ledger=False)[0]


def current_ledger(project: Project, name: str, *, store: Store | None = None) -> Ledger:
    """The agent's ledger, with a running or crashed run's journal folded in (in memory)."""
    ledger = _read(project, name, store, with_ledger=True)[1]
    assert ledger is not None  # noqa: S101 - asked for
    return ledger


def _read(
    project: Project, name: str, store: Store | None, *, with_ledger: bool
) -> tuple[AgentState, Ledger | None]:
    project.agent(name)  # an unknown agent is an error, not an empty state
    store = store or open_store(project)
    with gc_paused():
        state = store.load(name)
        records = store.pending(name)
        wanted = with_ledger or (records and needs_ledger(records))
        ledger = store.load_ledger(name) if wanted else None
        if records:
            recover(state, ledger, records)
            if not with_ledger and ledger is not None and ledger.changed:
                # As the run that recovers it will save it (a ledger view needs no summary).
                state.ledger_summary = LedgerSummary.of(ledger.entries)
    return state, ledger


def reset_circuit(project: Project, name: str, *, options: RunOptions | None = None) -> Outcome:
    """Close the agent's circuit breaker: its next run goes ahead."""
    return reset_guards(project, name, circuit=True, options=options)


def reset_guards(
    project: Project,
    name: str,
    *,
    circuit: bool = False,
    budget: bool = False,
    limits: bool = False,
    options: RunOptions | None = None,
) -> Outcome:
    """Reset guards by hand: close the circuit, forget the spends, empty the rate windows."""
    chosen = {"circuit": circuit, "budget": budget, "limits": limits}

    def change(run: Run) -> str:
        names = [policy for policy, reset in chosen.items() if reset]
        return f"{name}: " + "; ".join(policies.reset(run.state, names, run.log))

    return _edit(project, name, change, options)


def restore_state(project: Project, name: str, *, options: RunOptions | None = None) -> Outcome:
    """Make the state before the last save the state again; the one it replaces, the backup.

    A second restore undoes the first. Only the lease is taken: the state is
    not loaded, since an unreadable one is what a restore mends, and a crashed
    run's journal is left for the next run to fold into the restored state.
    The ledger is left as it is.
    """
    invocation = Invocation(project, name, options or RunOptions())
    services = invocation.services

    def body() -> Outcome:
        spec = project.agent(name)
        ttl_s = lease_ttl_s(spec.config.timeout)
        with services.store.lease(name, run_id=services.run_id, ttl_s=ttl_s) as lease:
            services.store.restore(lease, name)
            services.log.info("state.restored")
        return invocation.outcome(
            RunStatus.SUCCEEDED,
            ExitCode.OK,
            f"{name}: the previous state is restored; the one it replaced is the backup now "
            "(restore again to undo)",
        )

    return invocation.run(body, attempt=False)


def state_diff(project: Project, name: str, *, store: Store | None = None) -> str:
    """The difference between the state before the last save and the state now, unified."""
    import difflib  # noqa: PLC0415

    project.agent(name)
    store = store or open_store(project)
    before, now = store.backup(name), store.load(name)
    return "".join(
        difflib.unified_diff(
            _lines(before), _lines(now), f"{name} (before the last save)", f"{name} (now)"
        )
    )


def _lines(state: AgentState | None) -> list[str]:
    # Every line ends with a newline, the last one too: the diff ends as a text does.
    if state is None:
        return []
    return (state.model_dump_json(indent=2) + "\n").splitlines(keepends=True)


def pause(
    project: Project,
    name: str,
    *,
    reason: str | None = None,
    until: datetime | None = None,
    options: RunOptions | None = None,
) -> Outcome:
    """Pause the agent: its runs are skipped (75, quietly) until :func:`resume`, or ``until``.

    Pausing a paused agent changes only what it is given: the reason and the
    end it had stay unless a new one is said.
    """
    invocation = Invocation(project, name, options or RunOptions())
    services = invocation.services

    def body() -> Outcome:
        project.agent(name)
        now = services.clock()
        if until is not None and until <= now:
            raise UsageError(f"--until {iso_second(until)} is not in the future")
        was = services.store.pause(name)
        if was is not None and not was.holds(now):
            was = None  # over by itself: this is a new pause
        paused = Pause(
            at=was.at if was else now,
            reason=reason if reason is not None else was.reason if was else None,
            until=until if until is not None else was.until if was else None,
        )
        services.store.set_pause(name, paused)
        services.log.info(
            "agent.paused",
            reason=paused.reason,
            until=iso_second(paused.until) if paused.until else None,
        )
        said = f" until {iso_second(paused.until)}" if paused.until else ""
        said += f" ({paused.reason})" if paused.reason else ""
        return invocation.outcome(RunStatus.SUCCEEDED, ExitCode.OK, f"{name}: paused{said}")

    return invocation.run(body, attempt=False)


def resume(project: Project, name: str, *, options: RunOptions | None = None) -> Outcome:
    """Let a paused agent run again."""
    invocation = Invocation(project, name, options or RunOptions())
    services = invocation.services

    def body() -> Outcome:
        project.agent(name)
        was = services.store.pause(name)
        if was is not None and not was.holds(services.clock()):
            was = None  # its pause was over already
        services.store.set_pause(name, None)
        services.log.info("agent.resumed", was_paused=was is not None)
        return invocation.outcome(
            RunStatus.SUCCEEDED,
            ExitCode.OK,
            f"{name}: resumed" if was else f"{name}: was not paused",
        )

    return invocation.run(body, attempt=False)


def resolve_action(
    project: Project,
    name: str,
    key: str,
    *,
    done: bool,
    action: str | None = None,
    options: RunOptions | None = None,
) -> Outcome:
    """Settle the ledger entry ``key``: ``done`` (committed) or not (may run again)."""

    def change(run: Run) -> str:
        ledger = run.ledger()
        matches = [
            found
            for found, entries in ledger.entries.items()
            if key in entries and action in (None, found)
        ]
        if not matches:
            raise UsageError(f"{name} has no ledger entry {key!r}" + _for(action))
        if len(matches) > 1:
            raise UsageError(
                f"{key!r} is a key of several actions ({', '.join(matches)}): add --action"
            )
        was = ledger.get(matches[0], key)
        assert was is not None  # noqa: S101 - found above
        if not done and was.status == COMMITTED:
            raise UsageError(
                f"{matches[0]} {key!r} is committed: its effect happened, and --redo would "
                "do it again. Only unresolved or failed entries are redone"
            )
        # The entry keeps when, and by which run, its effect happened; the
        # operator's settlement is in the log.
        now = Entry(was.at, COMMITTED if done else FAILED, was.run_id, was.result_json)
        ledger.put(matches[0], key, now)
        run.log.info(
            "ledger.resolved",
            action=matches[0],
            key=key,
            was=was.status,
            now=now.status,
            entry_at=was.at,
            entry_run=was.run_id,
            resolved_at=iso_second(run.services.clock()),
        )
        outcome = "done: it will not run again" if done else "to redo: do() may run again"
        return f"{name}: {matches[0]} {key!r} marked {outcome} (it was {was.status})"

    return _edit(project, name, change, options)


def reject_held(
    project: Project,
    name: str,
    held_id: str,
    *,
    reason: str | None = None,
    options: RunOptions | None = None,
) -> Outcome:
    """Drop a result held for review without applying it."""

    def change(run: Run) -> str:
        held = next((h for h in run.state.review if h.id == held_id), None)
        if held is None:
            raise UsageError(f"{name} holds no result {held_id!r} for review")
        if held.tool is not None and held.key is not None:
            # The call is settled, never to be performed: the model is told, on the next
            # run that asks for it again, that a human said no and why.
            from agentops.llm.tools import rejection  # noqa: PLC0415 - pydantic's models

            now = iso_second(run.services.clock())
            said = rejection(None if reason is None else run.services.redactor.value(reason))
            result = json.dumps(said, ensure_ascii=False)
            run.ledger().put(
                f"tool.{held.tool}", held.key, Entry(now, COMMITTED, held.run_id, result)
            )
        run.state.review = [h for h in run.state.review if h.id != held_id]
        run.log.info("review.rejected", id=held_id, reason=reason, tool=held.tool)
        return f"{name}: {held_id} rejected"

    return _edit(project, name, change, options)


def _edit(
    project: Project,
    name: str,
    change: Callable[[Run], str],
    options: RunOptions | None,
) -> Outcome:
    # Under the lease, a dead run's journal recovered first; no journal of its own.
    invocation = Invocation(project, name, options or RunOptions())

    def body() -> Outcome:
        spec = project.agent(name)
        with invocation.locked(spec) as run:
            message = change(run)
            save(run)
        return invocation.outcome(RunStatus.SUCCEEDED, ExitCode.OK, message)

    return invocation.run(body, attempt=False)


def _for(action: str | None) -> str:
    return f" for action {action!r}" if action else ""
