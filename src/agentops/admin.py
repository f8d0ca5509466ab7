"""An operator's edits of an agent's state, and the views behind them.

Each edit takes the agent's lock, recovers a crashed run's journal first, is
logged in the agent's log like a run, and is saved the same crash-safe way:

- :func:`reset_circuit`: close the circuit breaker by hand;
- :func:`resolve_action`: settle a ledger entry whose effect is unknown,
  as done (never run again) or to redo (``do()`` may run again);
- :func:`reject_held`: drop a result held for review.

Approving a held result runs agent code, so it lives in
:func:`agentops.runner.approve_held`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentops import breaker
from agentops.errors import UsageError
from agentops.ledger import COMMITTED, FAILED, UNRESOLVED, Entry, iso_second, put
from agentops.session import Outcome, RunOptions, Session
from agentops.state import FileStateStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from agentops.project import Project
    from agentops.state import AgentState

__all__ = ["ledger_rows", "read_state", "reject_held", "reset_circuit", "resolve_action"]


def read_state(project: Project, name: str) -> AgentState:
    """The agent's state, without taking its lock (saves are atomic).

    A journal left by a run that died, or by one still running, is folded in
    (in memory only): its actions are what an operator needs to see.
    """
    project.agent(name)  # an unknown agent is an error, not an empty state
    store = FileStateStore(project.state_dir)
    state = store.load(name)
    store.recover(state, persist=False)
    return state


def reset_circuit(project: Project, name: str, *, options: RunOptions | None = None) -> Outcome:
    """Close the agent's circuit breaker: its next run goes ahead."""

    def change(session: Session, state: AgentState) -> str:
        was = state.circuit.state
        breaker.reset(state.circuit)
        session.log.info("circuit.reset", was=was)
        return f"{name}: circuit closed (it was {was.replace('_', '-')})"

    return _edit(project, name, change, options)


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

    def change(session: Session, state: AgentState) -> str:
        matches = [
            found
            for found, entries in state.ledger.items()
            if key in entries and action in (None, found)
        ]
        if not matches:
            raise UsageError(f"{name} has no ledger entry {key!r}" + _for(action))
        if len(matches) > 1:
            raise UsageError(
                f"{key!r} is a key of several actions ({', '.join(matches)}): add --action"
            )
        was = Entry.parse(state.ledger[matches[0]][key])
        if not done and was.status == COMMITTED:
            raise UsageError(
                f"{matches[0]} {key!r} is committed: its effect happened, and --redo would "
                "do it again. Only unresolved or failed entries are redone"
            )
        now = was._replace(
            status=COMMITTED if done else FAILED,
            at=iso_second(session.clock()),
            run_id=session.run_id,
        )
        put(state.ledger, matches[0], key, now)
        session.log.info(
            "ledger.resolved", action=matches[0], key=key, was=was.status, now=now.status
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

    def change(session: Session, state: AgentState) -> str:
        if not any(h.id == held_id for h in state.review):
            raise UsageError(f"{name} holds no result {held_id!r} for review")
        state.review = [h for h in state.review if h.id != held_id]
        session.log.info("review.rejected", id=held_id, reason=reason)
        return f"{name}: {held_id} rejected"

    return _edit(project, name, change, options)


def _edit(
    project: Project,
    name: str,
    change: Callable[[Session, AgentState], str],
    options: RunOptions | None,
) -> Outcome:
    session = Session(project, name, options or RunOptions())

    def body() -> Outcome:
        spec = project.agent(name)
        with session.locked(spec) as (state, _):
            message = change(session, state)
            session.save(state, spec, None)
        return session.outcome("succeeded", 0, message)

    return session.run(body)


def _for(action: str | None) -> str:
    return f" for action {action!r}" if action else ""


def ledger_rows(state: AgentState, *, every: bool) -> list[dict[str, Any]]:
    """Ledger entries as rows, newest first: the unresolved ones, or ``every`` one."""
    rows = [
        {
            "action": action,
            "key": key,
            "status": entry.status,
            "at": entry.at,
            "run_id": entry.run_id,
            "result": entry.result,
        }
        for action, entries in state.ledger.items()
        for key, line in entries.items()
        if (entry := Entry.parse(line)).status == UNRESOLVED or every
    ]
    return sorted(rows, key=lambda row: row["at"], reverse=True)
