"""The guards an agent meets during a run: ``ctx.action``, ``ctx.spend``, ``ctx.step``, requests.

Every counter lives in the state and every side effect in the journal,
because each run is a new process: the guards hold across cron runs and
crashes. They never know which store keeps them: they fold journal records
into the state and the ledger, and the session commits both.

A guard that trips ends the run with :class:`GuardStop`, a ``BaseException``
an agent's ``except Exception`` does not catch; should the agent swallow it
anyway, :attr:`RunGuards.stopped` still ends the run when ``run()`` returns.
"""

from __future__ import annotations

import math
import shlex
import threading
import time
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from agentops.errors import (
    ActionRateLimited,
    ActionUnresolved,
    AgentCodeFailed,
    AgentOpsError,
    BudgetExceeded,
    BudgetTooSmall,
    PermissionDenied,
    RunTimeout,
    StateError,
    StepLimitExceeded,
    TaskFailed,
)
from agentops.guards import costs, rates
from agentops.model import money
from agentops.model.journal import (
    Abort,
    Commit,
    Intent,
    Reserve,
    Settle,
    Spend,
    Undo,
    UndoFailed,
    Undone,
    apply,
    build,
)
from agentops.model.ledger import COMMITTED, UNRESOLVED
from agentops.model.state import REQUESTS, action_key, check_readable

if TYPE_CHECKING:
    from collections.abc import Callable

    from agentops._infra.clock import Clock
    from agentops._infra.log import EventLogger
    from agentops._infra.redact import Redactor
    from agentops.guards.interrupts import RunInterrupts
    from agentops.guards.permissions import HostPolicy
    from agentops.model.journal import RecordBase
    from agentops.model.ledger import Ledger
    from agentops.model.state import AgentState
    from agentops.project.config import Limits, Permissions
    from agentops.project.units import Rate
    from agentops.store import JournalWriter

__all__ = ["GuardStop", "RunGuards"]


class GuardStop(BaseException):
    """Ends agent code because a guard tripped; carries the error the run ends with."""

    def __init__(self, error: AgentOpsError) -> None:
        """Stop with ``error``."""
        super().__init__(error.message)
        self.error = error


class _Committed(NamedTuple):
    action: str
    key: str
    result: Any
    undo: Callable[[Any], Any] | None


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
    ) -> None:
        """Guard the run ``run_id`` of ``agent`` under ``limits``."""
        self.agent = agent
        self.run_id = run_id
        self.dry_run = dry_run
        self.limits = limits
        self.state = state
        self._ledger = ledger
        self.journal = journal
        self.interrupts = interrupts
        self.log = log
        self.redactor = redactor
        self.clock = clock
        self.sleep = sleep
        self.permissions = permissions
        self.stopped: AgentOpsError | None = None
        self.committed: list[_Committed] = []
        self.tokens = 0
        self.usd = 0.0
        self.steps = 0
        self._reservations = 0
        # Agents call models and tools from threads: a cap checked by one thread
        # must still hold when another records, and journal appends must not interleave.
        self._lock = threading.RLock()
        self._in_flight: dict[tuple[str, str], tuple[threading.Event, int]] = {}
        """Actions whose ``do()`` a thread is running (and which): another asking waits."""
        self._closing = False  # no new effect may start
        self._closed = False  # nothing more may be recorded
        self._hosts: HostPolicy | None = None
        self._names: dict[str, str] = {}

    def new_attempt(self) -> None:
        """An attempt starts: ``steps_per_run`` counts each attempt's steps afresh."""
        self.steps = 0

    # -- guarded actions ---------------------------------------------------------------

    def action(
        self,
        name: str,
        key: object,
        do: Callable[[], Any],
        *,
        undo: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Run ``do()`` at most once per ``(name, key)``, across runs and crashes."""
        # A secret in a name or key is replaced by its digest: still unique, never written.
        name = str(name)
        if name not in self._names:  # a run repeats its few names many times
            self._names[name] = self.redactor.identifier(name)
        name, key = self._names[name], self.redactor.identifier(str(key))
        self._check_permitted(name)
        with self.interrupts.critical():  # from the intent to the commit: no stop between
            while True:  # of threads asking for one action at once, one runs do(); others see it
                with self._lock:
                    running, owner = self._in_flight.get((name, key), (None, None))
                    if owner == threading.get_ident():  # asked again inside its own do()
                        self._unresolved(name, key)
                    if running is None:
                        entry = self._the_ledger().get(name, key)
                        if entry is not None and entry.status == COMMITTED:
                            self.log.info_redacted(
                                "action.skipped", action=name, key=key, reason="duplicate"
                            )
                            return entry.result
                        if entry is not None and entry.status == UNRESOLVED:
                            self._unresolved(name, key)
                        self._check_action_rate(name)
                        if self.dry_run or self.journal is None:
                            self.log.info("action.skipped", action=name, key=key, reason="dry_run")
                            return None
                        # Durable before the effect: after a crash, the intent says it
                        # may have happened.
                        self._record(Intent, durable=True, action=name, key=key)
                        done = threading.Event()
                        self._in_flight[name, key] = done, threading.get_ident()
                        break
                running.wait()
            try:
                try:
                    result = do()
                except (Exception, GuardStop) as exc:
                    # A guard that stops the run inside do() (a refused spend, the step
                    # limit) stops it before the effect: that is why costs are asked first.
                    error = self.redactor.value(f"{type(exc).__name__}: {exc}")
                    self._record(Abort, action=name, key=key, error=error)
                    self.log.warning("action.failed", action=name, key=key, error=error)
                    raise
                recorded = self._recordable(result, name, key)
                # Written before ctx.action returns, so it survives a kill of the
                # process; the next durable record (or the commit) makes it survive
                # a power cut. One fsync per effect.
                self._record(Commit, action=name, key=key, result=recorded)
                self.committed.append(_Committed(name, key, recorded, undo))
            finally:
                with self._lock:
                    del self._in_flight[name, key]
                done.set()
        self.log.info_redacted("action.committed", action=name, key=key)
        return recorded

    def _unresolved(self, name: str, key: str) -> NoReturn:
        settle = shlex.join(["agentops", "ledger", self.agent, "--action", name, "--resolve", key])
        self._stop(
            ActionUnresolved(
                f"{self.agent}: action {name} {key!r} is unresolved: the process died inside "
                f"do() or undo(). Settle it: {settle} --done (it is done) or --redo",
                agent=self.agent,
            )
        )

    def _check_permitted(self, name: str) -> None:
        allowed = self.permissions.actions if self.permissions else None
        if allowed is not None and name not in allowed:
            self.log.warning("guard.denied", action=name, allowed=sorted(allowed))
            self._stop(
                PermissionDenied(
                    f"{self.agent}: action {name!r} is not allowed by [permissions] actions",
                    agent=self.agent,
                )
            )

    def _recordable(self, result: Any, name: str, key: str) -> Any:
        # The effect happened: whatever do() returned, the commit must be written.
        try:
            recorded = self.redactor.value(result, fallback=str)
            if isinstance(recorded, dict | list):  # only containers can nest too deep
                check_readable(recorded, inside=1)  # the journal's commit record holds it
        except Exception as exc:  # noqa: BLE001 - a cycle, bytes that are not text, ...
            self.log.warning("action.result_not_json", action=name, key=key, error=str(exc))
            return self.redactor.value(repr(result)[:1000])
        return recorded

    def _check_action_rate(self, name: str) -> None:
        rate = self.limits.actions.get(name)
        if rate is None:
            return
        now = self.clock()
        times = self.state.rate_limits.setdefault(action_key(name), [])
        rates.trim(times, rate, now)
        # Actions of this name under way in other threads count: their commits will.
        in_flight = sum(1 for running, _ in self._in_flight if running == name)
        if rates.wait_s([*times, *[now] * in_flight], rate, now) > 0:
            self._stop(
                ActionRateLimited(
                    f"{self.agent}: action {name} reached its rate limit {rate}; "
                    "committed work is kept, the rest waits for a later run",
                    agent=self.agent,
                )
            )

    def undo_committed(self, call_agent: Callable[..., Any]) -> None:
        """Undo this run's committed actions, newest first.

        Each undo is journaled like a ``do()``: an ``undo`` record, durable,
        before ``undo()`` is called, then ``undone`` (or ``undo_failed``). A
        process killed in between leaves the entry unresolved, for
        ``reconcile()`` or a person to settle: never ``committed`` for an
        effect that may be gone.
        """
        while self.committed:
            done = self.committed.pop()
            if done.undo is None:
                self.log.warning("action.not_undone", action=done.action, key=done.key)
                continue
            # A stop already pending ends the run here, before this undo starts:
            # its entry stays committed, as its effect does.
            call_agent(f"undo() of {done.action}", _nothing)
            try:
                # One critical section: once the undo record is durable, undo()
                # runs (a stop arriving now waits for it, up to the grace).
                with self.interrupts.critical():
                    if self.journal is not None:
                        self._record(Undo, durable=True, action=done.action, key=done.key)
                    call_agent(f"undo() of {done.action}", done.undo, done.result)
            except AgentCodeFailed as exc:
                error = self.redactor.value(exc.message)
                if self.journal is not None:
                    self._record(UndoFailed, action=done.action, key=done.key, error=error)
                self.log.error("action.undo_failed", action=done.action, key=done.key, error=error)
                continue
            if self.journal is not None:
                self._record(Undone, action=done.action, key=done.key)
            self.log.info("action.undone", action=done.action, key=done.key)

    def reconcile(
        self, reconcile: Callable[..., Any] | None, ctx: object, call_agent: Callable[..., Any]
    ) -> None:
        """Ask the agent's ``reconcile()`` about every unresolved action; log the rest.

        ``reconcile()`` returns False (the effect is not there: ``do()`` may
        run again), True (it is) or, better, the result ``do()`` would have
        returned, which ``ctx.action`` then returns for it (True records None).
        """
        if not self.state.ledger_summary.unresolved:
            return
        ledger = self._ledger()  # not agent code: a StateError ends the run as it is
        for name, key in ledger.unresolved():
            if reconcile is None:
                self.log.warning("action.unresolved", action=name, key=key)
                continue
            try:
                found = call_agent("reconcile()", reconcile, name, key, ctx)
            except AgentCodeFailed as exc:
                self.log.error("action.reconcile_failed", action=name, key=key, error=str(exc))
                continue
            with self.interrupts.critical():
                if found is False or found is None:
                    self._record(Abort, action=name, key=key, error="reconcile: not done")
                else:
                    result = None if found is True else self._recordable(found, name, key)
                    self._record(Commit, action=name, key=key, result=result)
            self.log.info("action.reconciled", action=name, key=key, happened=found is not False)

    # -- budgets and limits ------------------------------------------------------------

    def spend(self, *, usd: float = 0.0, tokens: int = 0) -> None:
        """Record a cost before it is incurred; refuse it if it would pass a cap."""
        with self._lock:
            self._admit_cost(usd, tokens)
            with self.interrupts.critical():
                self._record(Spend, durable=True, usd=usd, tokens=tokens)
            self.tokens += tokens
            self.usd += usd
        self.log.info_redacted("budget.spent", usd=usd, tokens=tokens)

    def reserve(self, *, usd: float, tokens: int = 0) -> str:
        """Hold the worst case of a cost about to be incurred; return the reservation's id.

        Refused like a spend if it would pass a cap, before anything is sent.
        Journaled (durable), so a process killed before :meth:`settle` keeps it.
        """
        with self._lock:
            self._admit_cost(usd, tokens)
            self._reservations += 1
            reservation = f"{self.run_id}-{self._reservations}"
            with self.interrupts.critical():
                self._record(Reserve, durable=True, id=reservation, usd=usd, tokens=tokens)
            self.tokens += tokens
            self.usd += usd
        self.log.info("budget.reserved", id=reservation, usd=usd, tokens=tokens)
        return reservation

    def settle(self, reservation: str, *, usd: float, tokens: int) -> None:
        """Replace a reservation by what the cost came to (usually less)."""
        _check_amounts(usd, tokens)
        with self._lock:
            spends = self.state.budget.spends
            was = next((s for s in reversed(spends) if s.id == reservation), None)
            if was is None:
                raise ValueError(f"no reservation {reservation!r} to settle")
            with self.interrupts.critical():
                self._record(Settle, id=reservation, usd=usd, tokens=tokens)
            self.tokens += tokens - was.tokens
            self.usd += usd - was.usd
        self.log.info(
            "budget.settled", id=reservation, usd=usd, tokens=tokens, reserved_usd=was.usd
        )

    def _admit_cost(self, usd: float, tokens: int) -> None:
        _check_amounts(usd, tokens)
        now = self.clock()
        cap = self.limits.tokens_per_run
        if cap is not None and tokens > cap:
            self._stop(
                BudgetTooSmall(
                    f"{self.agent}: a single spend of {tokens} tokens is more than "
                    f"tokens_per_run {cap}: raise the cap or spend less per call",
                    agent=self.agent,
                )
            )
        if cap is not None and self.tokens + tokens > cap:
            self._stop(
                BudgetExceeded(
                    f"{self.agent}: tokens_per_run {cap} reached "
                    f"({self.tokens} used, {tokens} more asked)",
                    agent=self.agent,
                )
            )
        for window in costs.windows(self.limits):
            if usd > window.cap_usd:
                # Waiting would never help: a person must raise the cap or cut the cost.
                self._stop(
                    BudgetTooSmall(
                        f"{self.agent}: a single spend of {usd:g} is more than "
                        f"{window.name} {window.cap_usd:g}: raise the cap or spend less per call",
                        agent=self.agent,
                    )
                )
            if not window.allows(self.state.budget, now, usd):
                spent = window.spent(self.state.budget, now)
                self.state.budget.waiting_usd = usd
                self._stop(
                    BudgetExceeded(
                        f"{self.agent}: {window.name} {window.cap_usd:g} reached "
                        f"({spent:.4f} spent, {usd:g} more asked)",
                        agent=self.agent,
                    )
                )

    def step(self, label: str | None = None) -> None:
        """Count one step of the agent's loop; too many end the run."""
        with self._lock:  # threads stepping at once count every step
            self.steps += 1
            steps = self.steps
        cap = self.limits.steps_per_run
        if cap is not None and steps > cap:
            self._stop(
                StepLimitExceeded(
                    f"{self.agent}: more than steps_per_run {cap} steps"
                    + (f" (at {label})" if label else ""),
                    agent=self.agent,
                )
            )

    def admit_request(self, host: str) -> None:
        """Refuse a host ``[permissions]`` does not list; wait for ``requests_per_minute``.

        A wait longer than the time the run has left fails at once: sleeping
        into the timeout would only end the run later, the same way.
        """
        if self._closing:
            self._refuse_after_close()
        if self.permissions is not None and self.permissions.hosts is not None:
            if self._hosts is None:
                from agentops.guards.permissions import HostPolicy  # noqa: PLC0415 - only when listed

                self._hosts = HostPolicy(self.permissions.hosts)
            refusal = self._hosts.refusal(host)
            if refusal is not None:
                self.log.warning("guard.denied", host=host, reason=refusal)
                self._stop(
                    PermissionDenied(f"{self.agent}: request refused: {refusal}", agent=self.agent)
                )
        rate = self.limits.request_rate
        if rate is None:
            return
        while True:  # another thread may take the slot this one waited for: ask again
            with self._lock:
                wait = self._window_wait(REQUESTS, rate, record=False)
                if wait <= 0:
                    self._window_wait(REQUESTS, rate, record=True)
                    return
            left = self.interrupts.remaining_s()
            if wait > left:
                self._stop(
                    RunTimeout(
                        f"{self.agent}: requests_per_minute {rate.count} would wait "
                        f"{wait:.0f}s for the next request, but the run has {left:.0f}s left",
                        agent=self.agent,
                    )
                )
            self.log.info("requests.waiting", wait_s=round(wait, 3), limit=str(rate))
            self.sleep(wait)

    def _window_wait(self, key: str, rate: Rate, *, record: bool) -> float:
        """Seconds until ``rate`` allows one more event under ``key``; record it if ``record``."""
        now = self.clock()
        times = self.state.rate_limits.setdefault(key, [])
        rates.trim(times, rate, now)
        if record:
            times.append(now)
            return 0.0
        return rates.wait_s(times, rate, now)

    # -- machinery ---------------------------------------------------------------------

    def close(self) -> None:
        """End the run's use of its guards, before its state is committed.

        A thread the agent left running can no longer start an action, spend
        or send a request: that is refused (in that thread), never written
        into a journal the run has committed, nor done unrecorded. An action
        whose ``do()`` such a thread is running is waited for, up to the
        grace, so that its commit is kept; past that it stays unresolved, as
        after a crash.
        """
        with self._lock:
            self._closing = True
            running = [done for done, _ in self._in_flight.values()]
        deadline = time.monotonic() + self.interrupts.grace_s
        for done in running:
            done.wait(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._closed = True

    def _refuse_after_close(self) -> NoReturn:
        # Not _stop: the run's outcome is settled, and this thread's refusal is not it.
        raise GuardStop(
            TaskFailed(
                f"{self.agent}: the run has ended: a thread it left running cannot act, "
                "spend or send a request",
                agent=self.agent,
            )
        )

    def _record(self, kind: type[RecordBase], *, durable: bool = False, **fields: Any) -> None:
        journal = self.journal
        run_id = journal.run_id if journal is not None else "dry-run"
        with self._lock:
            if self._closed or (self._closing and kind in _STARTS):
                self._refuse_after_close()
            record = build(kind, run_id=run_id, at=self.clock(), **fields)
            if journal is not None:
                try:
                    journal.append(record, durable=durable)
                except StateError as exc:  # without its journal the run cannot go on safely
                    self._stop(StateError(f"{self.agent}: {exc.message}", agent=self.agent))
            apply(self.state, self._the_ledger() if "action" in fields else None, record)

    def _the_ledger(self) -> Ledger:
        # A ledger that cannot be read stops the run like a guard: it is no
        # failure of the agent's, and its `except Exception` must not hide it.
        try:
            return self._ledger()
        except StateError as exc:
            self._stop(exc)

    def stop(self, error: AgentOpsError) -> NoReturn:
        """End the run with ``error``, as a guard that trips does: agent code cannot swallow it."""
        self._stop(error)

    def _stop(self, error: AgentOpsError) -> NoReturn:
        self.stopped = error
        raise GuardStop(error)


_STARTS = (Intent, Spend, Reserve)
"""Records that begin an effect or a cost: refused once the run is ending."""


def _nothing() -> None:
    pass


def _check_amounts(usd: float, tokens: int) -> None:
    # NaN would pass every comparison and poison the state file; huge amounts
    # would overflow the totals; a bool is a mistake, not a number.
    valid = (
        isinstance(usd, int | float)
        and not isinstance(usd, bool)
        and isinstance(tokens, int)
        and not isinstance(tokens, bool)
        and math.isfinite(usd)
        and 0 <= usd <= money.MAX_USD
        and 0 <= tokens <= money.MAX_TOKENS
    )
    if not valid:
        raise ValueError(
            f"costs are finite amounts >= 0 (at most {money.MAX_USD:g} USD and "
            f"{money.MAX_TOKENS} tokens), not usd={usd!r} tokens={tokens!r}"
        )
