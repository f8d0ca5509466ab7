"""Exactly-once actions: ``ctx.action(name, key=..., do=...)`` across runs, threads and crashes.

Each effect is journaled: an ``intent`` record, durable, before ``do()`` is
called, and a ``commit`` (or ``abort``) after it. The ledger (folded from
those records, :mod:`agentops.model.journal`) remembers every ``(name,
key)``: a committed one is never done again, and one whose effect is
unknown (an intent without a commit, after a crash) is not blindly redone:
the agent's ``reconcile()`` decides, or a person does.

``do()`` may take one argument, the action's
:class:`~agentops.guards.ticket.Ticket` (its idempotency key and the lease's
fencing token), to hand to an external system that can refuse a repeated or
stale write; the lease is checked once more right before ``do()`` starts.

Within a run, threads asking for one action at once wait for the one
running its ``do()``. Before an effect starts, every policy may refuse it
(:meth:`~agentops.guards.base.Policy.admit_action`, ``admit_effect``): the
permissions, an action's rate limit.

A rejected output undoes the run's committed actions, newest first, each
undo journaled the same way (:meth:`Actions.undo_committed`).
"""

from __future__ import annotations

import shlex
import threading
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from agentops.errors import ActionUnresolved, AgentCodeFailed, StateError
from agentops.guards.base import GuardStop
from agentops.guards.ticket import Ticket, idempotency_key, takes_ticket
from agentops.model.journal import Abort, Commit, Intent, Undo, UndoFailed, Undone
from agentops.model.ledger import COMMITTED, UNRESOLVED
from agentops.model.state import check_readable

if TYPE_CHECKING:
    from collections.abc import Callable

    from agentops.guards.base import GuardedRun

__all__ = ["Actions"]


class _Committed(NamedTuple):
    action: str
    key: str
    result: Any
    undo: Callable[[Any], Any] | None


class Actions:
    """One run's guarded actions: what it committed, and what its threads are doing."""

    def __init__(self, run: GuardedRun) -> None:
        """No action yet in ``run``."""
        self.run = run
        self.committed: list[_Committed] = []
        """This run's committed actions, oldest first: what a rejected output undoes."""
        self._in_flight: dict[tuple[str, str], tuple[threading.Event, int]] = {}
        """Actions whose ``do()`` a thread is running (and which): another asking waits."""
        self._names: dict[str, str] = {}

    def running(self) -> list[threading.Event]:
        """Events set as each ``do()`` under way ends. Call it holding the run's lock."""
        return [done for done, _ in self._in_flight.values()]

    def action(
        self,
        name: str,
        key: object,
        do: Callable[[], Any] | Callable[[Ticket], Any],
        *,
        undo: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Run ``do()`` or ``do(ticket)`` at most once per ``(name, key)``, across runs, crashes."""
        run = self.run
        # A secret in a name or key is replaced by its digest: still unique, never written.
        name = str(name)
        if name not in self._names:  # a run repeats its few names many times
            self._names[name] = run.redactor.identifier(name)
        name, key = self._names[name], run.redactor.identifier(str(key))
        run.admit_action(name)
        with run.interrupts.critical():  # from the intent to the commit: no stop between
            while True:  # of threads asking for one action at once, one runs do(); others see it
                with run.lock:
                    running, owner = self._in_flight.get((name, key), (None, None))
                    if owner == threading.get_ident():  # asked again inside its own do()
                        self._unresolved(name, key)
                    if running is None:
                        entry = run.ledger().get(name, key)
                        if entry is not None and entry.status == COMMITTED:
                            run.log.info_redacted(
                                "action.skipped", action=name, key=key, reason="duplicate"
                            )
                            return entry.result
                        if entry is not None and entry.status == UNRESOLVED:
                            self._unresolved(name, key)
                        run.admit_effect(name, self._in_flight_of(name))
                        if run.dry_run or run.journal is None:
                            run.log.info("action.skipped", action=name, key=key, reason="dry_run")
                            return None
                        # Durable before the effect: after a crash, the intent says it
                        # may have happened.
                        run.record(Intent, durable=True, action=name, key=key)
                        done = threading.Event()
                        self._in_flight[name, key] = done, threading.get_ident()
                        break
                running.wait()
            try:
                ticket = self._ticket(name, key)
                try:
                    result = do(ticket) if takes_ticket(do) else do()  # type: ignore[call-arg]
                except (Exception, GuardStop) as exc:
                    # A guard that stops the run inside do() (a refused spend, the step
                    # limit) stops it before the effect: that is why costs are asked first.
                    error = run.redactor.value(f"{type(exc).__name__}: {exc}")
                    run.record(Abort, action=name, key=key, error=error)
                    run.log.warning("action.failed", action=name, key=key, error=error)
                    raise
                recorded = self._recordable(result, name, key)
                # Written before ctx.action returns, so it survives a kill of the
                # process; the next durable record (or the commit) makes it survive
                # a power cut. One fsync per effect.
                run.record(Commit, action=name, key=key, result=recorded)
                self.committed.append(_Committed(name, key, recorded, undo))
            finally:
                with run.lock:
                    del self._in_flight[name, key]
                done.set()
        run.log.info_redacted("action.committed", action=name, key=key)
        return recorded

    def _ticket(self, name: str, key: str) -> Ticket:
        # Checked after the intent is durable, right before the effect: a run whose
        # lease lapsed (or was taken over) while it waited stops here, its intent
        # left for the next holder to settle, as after a crash.
        run = self.run
        if run.lease is None:
            return Ticket(idempotency_key(run.agent, name, key), 0)
        try:
            run.lease.check()
        except StateError as exc:
            run.stop(exc)
        return Ticket(idempotency_key(run.agent, name, key), run.lease.token)

    def _in_flight_of(self, name: str) -> int:
        # Actions of this name whose do() other threads are running: their commits will count.
        return sum(1 for running, _ in self._in_flight if running == name)

    def _unresolved(self, name: str, key: str) -> NoReturn:
        agent = self.run.agent
        settle = shlex.join(["agentops", "ledger", agent, "--action", name, "--resolve", key])
        self.run.stop(
            ActionUnresolved(
                f"{agent}: action {name} {key!r} is unresolved: the process died inside "
                f"do() or undo(). Settle it: {settle} --done (it is done) or --redo",
                agent=agent,
            )
        )

    def _recordable(self, result: Any, name: str, key: str) -> Any:
        # The effect happened: whatever do() returned, the commit must be written.
        redactor = self.run.redactor
        try:
            recorded = redactor.value(result, fallback=str)
            if isinstance(recorded, dict | list):  # only containers can nest too deep
                check_readable(recorded, inside=1)  # the journal's commit record holds it
        except Exception as exc:  # noqa: BLE001 - a cycle, bytes that are not text, ...
            self.run.log.warning("action.result_not_json", action=name, key=key, error=str(exc))
            return redactor.value(repr(result)[:1000])
        return recorded

    def undo_committed(self, call_agent: Callable[..., Any]) -> None:
        """Undo this run's committed actions, newest first.

        Each undo is journaled like a ``do()``: an ``undo`` record, durable,
        before ``undo()`` is called, then ``undone`` (or ``undo_failed``). A
        process killed in between leaves the entry unresolved, for
        ``reconcile()`` or a person to settle: never ``committed`` for an
        effect that may be gone.
        """
        run = self.run
        while self.committed:
            done = self.committed.pop()
            if done.undo is None:
                run.log.warning("action.not_undone", action=done.action, key=done.key)
                continue
            # A stop already pending ends the run here, before this undo starts:
            # its entry stays committed, as its effect does.
            call_agent(f"undo() of {done.action}", _nothing)
            try:
                # One critical section: once the undo record is durable, undo()
                # runs (a stop arriving now waits for it, up to the grace).
                with run.interrupts.critical():
                    if run.journal is not None:
                        run.record(Undo, durable=True, action=done.action, key=done.key)
                    call_agent(f"undo() of {done.action}", done.undo, done.result)
            except AgentCodeFailed as exc:
                error = run.redactor.value(exc.message)
                if run.journal is not None:
                    run.record(UndoFailed, action=done.action, key=done.key, error=error)
                run.log.error("action.undo_failed", action=done.action, key=done.key, error=error)
                continue
            if run.journal is not None:
                run.record(Undone, action=done.action, key=done.key)
            run.log.info("action.undone", action=done.action, key=done.key)

    def reconcile(
        self, reconcile: Callable[..., Any] | None, ctx: object, call_agent: Callable[..., Any]
    ) -> None:
        """Ask the agent's ``reconcile()`` about every unresolved action; log the rest.

        ``reconcile()`` returns False (the effect is not there: ``do()`` may
        run again), True (it is) or, better, the result ``do()`` would have
        returned, which ``ctx.action`` then returns for it (True records None).
        """
        run = self.run
        if not run.state.ledger_summary.unresolved:
            return
        ledger = run.ledger(as_guard=False)  # not agent code: a StateError ends the run as it is
        for name, key in ledger.unresolved():
            if reconcile is None:
                run.log.warning("action.unresolved", action=name, key=key)
                continue
            try:
                found = call_agent("reconcile()", reconcile, name, key, ctx)
            except AgentCodeFailed as exc:
                run.log.error("action.reconcile_failed", action=name, key=key, error=str(exc))
                continue
            with run.interrupts.critical():
                if found is False or found is None:
                    run.record(Abort, action=name, key=key, error="reconcile: not done")
                else:
                    result = None if found is True else self._recordable(found, name, key)
                    run.record(Commit, action=name, key=key, result=result)
            run.log.info("action.reconciled", action=name, key=key, happened=found is not False)


def _nothing() -> None:
    pass
