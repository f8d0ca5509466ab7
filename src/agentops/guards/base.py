"""The guard seam: what one policy is, and what of a run it may use.

A guard policy (a rate limit, a budget, the circuit breaker...) is one
:class:`Policy` subclass in a module of its own, listed in
:data:`agentops.guards.policies.POLICIES`. It owns

- the keys of the configuration it reads (the pydantic sections live in
  :mod:`agentops.project.config`; the policy is the one place that interprets them),
- its share of the agent's state,
- its check before a run (gate 2, :meth:`Policy.admit_run`),
- its checks and records during one (the ``admit_*`` hooks, run by one
  instance per run),
- its pruning as the state is committed (:meth:`Policy.prune_state`),
- its reset by an operator (:meth:`Policy.reset_state`).

Every hook does nothing unless the policy overrides it. During a run a
policy sees the run only through :class:`GuardedRun` (the run's guards,
:class:`~agentops.guards.facade.RunGuards`): the lock, journal appends and
the stop are shared, so that every guard holds across threads and crashes
the same way. A guard that trips calls :meth:`GuardedRun.stop`, which raises
:class:`GuardStop`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, Protocol

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable
    from datetime import datetime

    from agentops._infra.clock import Clock
    from agentops._infra.log import EventLogger
    from agentops._infra.redact import Redactor
    from agentops.errors import AgentOpsError
    from agentops.guards.interrupts import RunInterrupts
    from agentops.model.journal import RecordBase
    from agentops.model.ledger import Ledger
    from agentops.model.state import AgentState
    from agentops.project.config import AgentConfig, Limits, Permissions
    from agentops.store import JournalWriter, Lease

__all__ = ["GuardStop", "GuardedRun", "Policy"]


class GuardStop(BaseException):
    """Ends agent code because a guard tripped; carries the error the run ends with.

    A ``BaseException``: an agent's ``except Exception`` does not catch it.
    Should the agent swallow it anyway, the run still ends (``RunGuards.stopped``).
    """

    def __init__(self, error: AgentOpsError) -> None:
        """Stop with ``error``."""
        super().__init__(error.message)
        self.error = error


class GuardedRun(Protocol):
    """One run as its policies see it: what they read, the lock, the journal, the stop."""

    agent: str
    run_id: str
    dry_run: bool
    limits: Limits
    permissions: Permissions | None
    state: AgentState
    journal: JournalWriter | None
    lease: Lease | None
    """The run's lease: its token goes into each action's ticket (None: no lease, a test's)."""
    interrupts: RunInterrupts
    log: EventLogger
    redactor: Redactor
    clock: Clock
    sleep: Callable[[float], None]
    lock: threading.RLock
    """Held to check a cap and record against it as one step: agents call from threads."""

    def record(self, kind: type[RecordBase], *, durable: bool = False, **fields: Any) -> None:
        """Append a record to the run's journal and fold it into the state (and the ledger)."""

    def ledger(self, *, as_guard: bool = True) -> Ledger:
        """The agent's ledger, loaded on first use; unreadable, it stops the run as a guard does."""

    def stop(self, error: AgentOpsError) -> NoReturn:
        """End the run with ``error``: raise :class:`GuardStop` (agent code cannot swallow it)."""

    def admit_action(self, name: str) -> None:
        """Every policy's :meth:`Policy.admit_action`."""

    def admit_effect(self, name: str, in_flight: int) -> None:
        """Every policy's :meth:`Policy.admit_effect`."""

    def admit_cost(self, usd: float, tokens: int) -> None:
        """Every policy's :meth:`Policy.admit_cost`."""


class Policy:
    """One guard policy: its checks before, during and after a run. Each hook does nothing.

    The static hooks see only the configuration and the state (between runs);
    an instance is made for each run, over the run's :class:`GuardedRun`.
    """

    name: ClassVar[str]
    """What the policy is called, and what an operator's reset names (``--circuit``...)."""

    def __init__(self, run: GuardedRun) -> None:
        """The policy's share of one run."""
        self.run = run

    # -- between runs: the configuration and the state ---------------------------------

    @staticmethod
    def admit_run(config: AgentConfig, state: AgentState, now: datetime) -> None:
        """Gate 2: raise a :class:`~agentops.errors.RateLimited` if no run may start ``now``.

        Counting the run that starts (a run rate) is done here too, once every
        policy before this one has admitted it.
        """

    @staticmethod
    def prune_state(config: AgentConfig, state: AgentState, now: datetime) -> None:
        """Keep the policy's share of the state to what it still reads: it is being committed."""

    @staticmethod
    def reset_state(state: AgentState, log: EventLogger) -> str | None:
        """An operator's reset: forget the policy's share of the state; say what was done."""
        del state, log
        return None

    # -- during a run: one instance per run ---------------------------------------------

    def new_attempt(self) -> None:
        """An attempt of ``run()`` starts (the first, a retry, or ``fallback()``)."""

    def admit_action(self, name: str) -> None:
        """Before ``ctx.action(name, ...)`` does anything, a duplicate included: stop to refuse."""

    def admit_effect(self, name: str, in_flight: int) -> None:
        """Under the run's lock, before the effect of action ``name`` starts: stop to refuse.

        ``in_flight`` actions of that name are running in other threads: their
        commits will count.
        """

    def admit_cost(self, usd: float, tokens: int) -> None:
        """Under the run's lock, before a spend or a reservation is recorded: stop to refuse."""

    def admit_request(self, host: str) -> None:
        """Before a request to ``host`` is sent: stop to refuse it, or wait until it may go."""
