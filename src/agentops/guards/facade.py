"""The guards an agent meets during a run: ``ctx.action``, ``ctx.spend``, ``ctx.step``, requests.

Every counter lives in the state and every side effect in the journal,
because each run is a new process: the guards hold across cron runs and
crashes. They never know which store keeps them: they fold journal records
into the state and the ledger, and the session commits both.

:class:`RunGuards` is a thin facade. The policies (:mod:`.actions`,
:mod:`.costs`, :mod:`.rates`, :mod:`.permissions`, :mod:`.steps`, listed in
:mod:`.policies`) do the guarding; it holds what they share: the lock,
journal appends, the stop, and the end of the run's use of them
(:meth:`RunGuards.close`).

A guard that trips ends the run with :class:`GuardStop`, a ``BaseException``
an agent's ``except Exception`` does not catch; should the agent swallow it
anyway, :attr:`RunGuards.stopped` still ends the run when ``run()`` returns.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from agentops.errors import AgentOpsError, StateError, TaskFailed
from agentops.guards import policies
from agentops.guards.actions import Actions
from agentops.guards.base import GuardStop, Policy
from agentops.guards.costs import CostPolicy
from agentops.guards.steps import StepPolicy
from agentops.model.journal import Intent, Reserve, Spend, apply, build

if TYPE_CHECKING:
    from collections.abc import Callable

    from agentops._infra.clock import Clock
    from agentops._infra.log import EventLogger
    from agentops._infra.redact import Redactor
    from agentops.guards.interrupts import RunInterrupts
    from agentops.guards.ticket import Ticket
    from agentops.model.journal import RecordBase
    from agentops.model.ledger import Ledger
    from agentops.model.state import AgentState
    from agentops.project.config import Limits, Permissions
    from agentops.store import JournalWriter, Lease

__all__ = ["GuardStop", "RunGuards"]

_P = TypeVar("_P", bound=Policy)


class RunGuards:
    """One run's guards, over the agent's state, its ledger and the run's journal.

    In a ``dry_run`` no action is performed; the ``journal`` of a dry run
    keeps only the money it really spent (``ctx.llm`` calls, ``ctx.spend``),
    and without a journal records change only the state in memory.
    ``ledger`` loads the ledger the first time an action needs it.
    """

    def __init__(
        self,
        *,
        agent: str,
        limits: Limits,
        state: AgentState,
        ledger: Callable[[], Ledger],
        journal: JournalWriter | None,
        interrupts: RunInterrupts,
        log: EventLogger,
        redactor: Redactor,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
        permissions: Permissions | None = None,
        run_id: str = "dry-run",
        dry_run: bool = False,
        lease: Lease | None = None,
    ) -> None:
        """Guard the run ``run_id`` of ``agent`` under ``limits``."""
        self.agent = agent
        self.run_id = run_id
        self.dry_run = dry_run
        self.limits = limits
        self.state = state
        self._load_ledger = ledger
        self.journal = journal
        self.lease = lease
        self.interrupts = interrupts
        self.log = log
        self.redactor = redactor
        self.clock = clock
        self.sleep = sleep
        self.permissions = permissions
        self.stopped: AgentOpsError | None = None
        # Agents call models and tools from threads: a cap checked by one thread
        # must still hold when another records, and journal appends must not interleave.
        self.lock = threading.RLock()
        self._closing = False  # no new effect may start
        self._closed = False  # nothing more may be recorded
        self._actions = Actions(self)
        self._policies = [policy(self) for policy in policies.POLICIES]
        self._costs = self._policy(CostPolicy)
        self._steps = self._policy(StepPolicy)

    def _policy(self, kind: type[_P]) -> _P:
        return next(p for p in self._policies if isinstance(p, kind))

    # -- what ctx calls ----------------------------------------------------------------

    def action(
        self,
        name: str,
        key: object,
        do: Callable[[], Any] | Callable[[Ticket], Any],
        *,
        undo: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Run ``do()`` or ``do(ticket)`` at most once per ``(name, key)``, across runs, crashes."""
        return self._actions.action(name, key, do, undo=undo)

    def spend(self, *, usd: float = 0.0, tokens: int = 0) -> None:
        """Record a cost before it is incurred; refuse it if it would pass a cap."""
        self._costs.spend(usd=usd, tokens=tokens)

    def reserve(self, *, usd: float, tokens: int = 0) -> str:
        """Hold the worst case of a cost about to be incurred; return the reservation's id."""
        return self._costs.reserve(usd=usd, tokens=tokens)

    def settle(self, reservation: str, *, usd: float, tokens: int) -> None:
        """Replace a reservation by what the cost came to (usually less)."""
        self._costs.settle(reservation, usd=usd, tokens=tokens)

    def room(self) -> tuple[float, int | None]:
        """What the caps leave now: dollars (``inf`` with no window) and tokens (None: no cap)."""
        return self._costs.room()

    def step(self, label: str | None = None) -> None:
        """Count one step of the agent's loop; too many end the run."""
        self._steps.step(label)

    def admit_request(self, host: str) -> None:
        """Let a request to ``host`` go once every policy has: one may refuse, or make it wait."""
        if self._closing:
            self._refuse_after_close()
        for policy in self._policies:
            policy.admit_request(host)

    @property
    def tokens(self) -> int:
        """Tokens this run has spent (reservations counted at their worst case until settled)."""
        return self._costs.tokens

    @property
    def usd(self) -> float:
        """Dollars this run has spent (reservations counted at their worst case until settled)."""
        return self._costs.usd

    # -- what the run calls ------------------------------------------------------------

    def new_attempt(self) -> None:
        """An attempt starts: ``steps_per_run`` counts each attempt's steps afresh."""
        for policy in self._policies:
            policy.new_attempt()

    def undo_committed(self, call_agent: Callable[..., Any]) -> None:
        """Undo this run's committed actions, newest first (see :class:`~.actions.Actions`)."""
        self._actions.undo_committed(call_agent)

    def reconcile(
        self, reconcile: Callable[..., Any] | None, ctx: object, call_agent: Callable[..., Any]
    ) -> None:
        """Ask the agent's ``reconcile()`` about every unresolved action; log the rest."""
        self._actions.reconcile(reconcile, ctx, call_agent)

    def close(self) -> None:
        """End the run's use of its guards, before its state is committed.

        A thread the agent left running can no longer start an action, spend
        or send a request: that is refused (in that thread), never written
        into a journal the run has committed, nor done unrecorded. An action
        whose ``do()`` such a thread is running is waited for, up to the
        grace, so that its commit is kept; past that it stays unresolved, as
        after a crash.
        """
        with self.lock:
            self._closing = True
            running = self._actions.running()
        deadline = time.monotonic() + self.interrupts.grace_s
        for done in running:
            done.wait(max(0.0, deadline - time.monotonic()))
        with self.lock:
            self._closed = True

    def stop(self, error: AgentOpsError) -> NoReturn:
        """End the run with ``error``, as a guard that trips does: agent code cannot swallow it."""
        self.stopped = error
        raise GuardStop(error)

    # -- what the policies share -------------------------------------------------------

    def admit_action(self, name: str) -> None:
        """Every policy's check of an action about to be asked for (see :class:`~.base.Policy`)."""
        for policy in self._policies:
            policy.admit_action(name)

    def admit_effect(self, name: str, in_flight: int) -> None:
        """Every policy's check of an effect about to start (under the lock)."""
        for policy in self._policies:
            policy.admit_effect(name, in_flight)

    def admit_cost(self, usd: float, tokens: int) -> None:
        """Every policy's check of a cost about to be recorded (under the lock)."""
        for policy in self._policies:
            policy.admit_cost(usd, tokens)

    def record(self, kind: type[RecordBase], *, durable: bool = False, **fields: Any) -> None:
        """Append a record to the journal and fold it into the state (and, an action's, the ledger).

        Refused once the run is ending: a cost or an effect may no longer
        start, and once closed nothing more is written.
        """
        journal = self.journal
        run_id = journal.run_id if journal is not None else "dry-run"
        with self.lock:
            if self._closed or (self._closing and kind in _STARTS):
                self._refuse_after_close()
            record = build(kind, run_id=run_id, at=self.clock(), **fields)
            if journal is not None:
                try:
                    journal.append(record, durable=durable)
                except StateError as exc:  # without its journal the run cannot go on safely
                    self.stop(StateError(f"{self.agent}: {exc.message}", agent=self.agent))
            apply(self.state, self.ledger() if "action" in fields else None, record)

    def ledger(self, *, as_guard: bool = True) -> Ledger:
        """The agent's ledger, loaded on first use.

        A ledger that cannot be read stops the run like a guard (``as_guard``):
        it is no failure of the agent's, and its ``except Exception`` must not
        hide it. Outside agent code its :class:`~agentops.errors.StateError`
        is raised as it is.
        """
        if not as_guard:
            return self._load_ledger()
        try:
            return self._load_ledger()
        except StateError as exc:
            self.stop(exc)

    def _refuse_after_close(self) -> NoReturn:
        # Not stop(): the run's outcome is settled, and this thread's refusal is not it.
        raise GuardStop(
            TaskFailed(
                f"{self.agent}: the run has ended: a thread it left running cannot act, "
                "spend or send a request",
                agent=self.agent,
            )
        )


_STARTS = (Intent, Spend, Reserve)
"""Records that begin an effect or a cost: refused once the run is ending."""
