"""The guards an agent meets during a run: ``ctx.action``, ``ctx.spend``, ``ctx.step``, requests.

Every counter lives in the state file and every side effect in the journal,
because each run is a new process: the guards hold across cron runs and
crashes.

A guard that trips ends the run with :class:`GuardStop`, a ``BaseException``
an agent's ``except Exception`` does not catch; should the agent swallow it
anyway, :attr:`RunGuards.stopped` still ends the run when ``run()`` returns.
"""

from __future__ import annotations

import math
import shlex
import time
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from agentops import budget, ledger, ratelimit
from agentops.config import REQUESTS, action_key
from agentops.errors import (
    ActionRateLimited,
    ActionUnresolved,
    AgentCodeFailed,
    AgentOpsError,
    BudgetExceeded,
    BudgetTooSmall,
    StepLimitExceeded,
)
from agentops.journal import apply
from agentops.ledger import COMMITTED, UNRESOLVED

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from structlog.typing import FilteringBoundLogger

    from agentops._clock import Clock
    from agentops.config import Limits
    from agentops.interrupts import RunInterrupts
    from agentops.journal import Journal
    from agentops.redact import Redactor
    from agentops.state import AgentState

__all__ = ["GuardStop", "RunGuards"]

_MAX_SPEND_USD = 1e9
_MAX_TOKENS = 10**12


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
    """One run's guards, over the agent's state and the run's journal.

    ``journal`` is None in a dry run: records then change only the state in
    memory, which a dry run never saves.
    """

    def __init__(
        self,
        *,
        agent: str,
        limits: Limits,
        state: AgentState,
        journal: Journal | None,
        interrupts: RunInterrupts,
        log: FilteringBoundLogger,
        redactor: Redactor,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Guard a run of ``agent`` under ``limits``."""
        self.agent = agent
        self.limits = limits
        self.state = state
        self.journal = journal
        self.interrupts = interrupts
        self.log = log
        self.redactor = redactor
        self.clock = clock
        self.sleep = sleep
        self.stopped: AgentOpsError | None = None
        self.committed: list[_Committed] = []
        self.tokens = 0
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
        name, key = str(name), str(key)
        entry = ledger.get(self.state.ledger, name, key)
        if entry is not None and entry.status == COMMITTED:
            self.log.info("action.skipped", action=name, key=key, reason="duplicate")
            return entry.result
        if entry is not None and entry.status == UNRESOLVED:
            settle = shlex.join(
                ["agentops", "ledger", self.agent, "--action", name, "--resolve", key]
            )
            self._stop(
                ActionUnresolved(
                    f"{self.agent}: action {name} {key!r} is unresolved: the process died inside "
                    f"do(). Settle it: {settle} --done (it happened) or --redo",
                    agent=self.agent,
                )
            )
        self._check_action_rate(name)
        if self.journal is None:
            self.log.info("action.skipped", action=name, key=key, reason="dry_run")
            return None
        with self.interrupts.critical():
            self._record("intent", action=name, key=key)
            try:
                result = do()
            except (Exception, GuardStop) as exc:
                # A guard that stops the run inside do() (a refused spend, the step
                # limit) stops it before the effect: that is why costs are asked first.
                self._record("abort", action=name, key=key, error=f"{type(exc).__name__}: {exc}")
                self.log.warning("action.failed", action=name, key=key, error=str(exc))
                raise
            recorded = self._recordable(result, name, key)
            self._record("commit", action=name, key=key, result=recorded)
        self.committed.append(_Committed(name, key, recorded, undo))
        self.log.info("action.committed", action=name, key=key)
        return recorded

    def _recordable(self, result: Any, name: str, key: str) -> Any:
        # The effect happened: whatever do() returned, the commit must be written.
        try:
            return self.redactor.value(result, fallback=str)
        except Exception as exc:  # noqa: BLE001 - a cycle, bytes that are not text, ...
            self.log.warning("action.result_not_json", action=name, key=key, error=str(exc))
            return self.redactor.value(repr(result)[:1000])

    def _check_action_rate(self, name: str) -> None:
        rate = self.limits.actions.get(name)
        if rate is None:
            return
        now = self.clock()
        window_key = action_key(name)
        recent = ratelimit.prune(self.state.rate_limits.get(window_key, []), rate, now)
        self.state.rate_limits[window_key] = recent
        wait = ratelimit.wait_s(recent, rate, now)
        if wait > 0:
            self._stop(
                ActionRateLimited(
                    f"{self.agent}: action {name} reached its rate limit {rate}; "
                    "committed work is kept, the rest waits for a later run",
                    agent=self.agent,
                )
            )

    def undo_committed(self, call_agent: Callable[..., Any]) -> None:
        """Undo this run's committed actions, newest first, each marked undone."""
        for done in reversed(self.committed):
            if done.undo is None:
                self.log.warning("action.not_undone", action=done.action, key=done.key)
                continue
            try:
                call_agent(f"undo() of {done.action}", done.undo, done.result)
            except AgentCodeFailed as exc:
                self.log.error(
                    "action.undo_failed", action=done.action, key=done.key, error=str(exc)
                )
                continue
            with self.interrupts.critical():
                self._record("undone", action=done.action, key=done.key)
            self.log.info("action.undone", action=done.action, key=done.key)
        self.committed.clear()

    def reconcile(
        self, reconcile: Callable[..., Any] | None, ctx: object, call_agent: Callable[..., Any]
    ) -> None:
        """Ask the agent's ``reconcile()`` about every unresolved action; log the rest.

        ``reconcile()`` returns False (the effect did not happen: ``do()`` may
        run again), True (it did) or, better, the result ``do()`` would have
        returned, which ``ctx.action`` then returns for it (True records None).
        """
        for name, key in ledger.unresolved(self.state.ledger):
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
                    self._record("abort", action=name, key=key, error="reconcile: not done")
                else:
                    result = None if found is True else self._recordable(found, name, key)
                    self._record("commit", action=name, key=key, result=result)
            self.log.info("action.reconciled", action=name, key=key, happened=found is not False)

    # -- budgets and limits ------------------------------------------------------------

    def spend(self, *, usd: float = 0.0, tokens: int = 0) -> None:
        """Record a cost before it is incurred; refuse it if it would pass a cap."""
        if not (math.isfinite(usd) and 0 <= usd <= _MAX_SPEND_USD and 0 <= tokens <= _MAX_TOKENS):
            # NaN would pass every comparison and poison the state file; huge
            # amounts would overflow the totals.
            raise ValueError(
                f"ctx.spend() takes finite amounts >= 0, not usd={usd!r} tokens={tokens!r}"
            )
        now = self.clock()
        cap = self.limits.tokens_per_run
        if cap is not None and self.tokens + tokens > cap:
            self._stop(
                BudgetExceeded(
                    f"{self.agent}: tokens_per_run {cap} reached "
                    f"({self.tokens} used, {tokens} more asked)",
                    agent=self.agent,
                )
            )
        for window in budget.windows(self.limits):
            if usd > window.cap_usd:
                # Waiting would never help: a person must raise the cap or cut the cost.
                self._stop(
                    BudgetTooSmall(
                        f"{self.agent}: a single spend of {usd:g} is more than "
                        f"{window.name} {window.cap_usd:g}: raise the cap or spend less per call",
                        agent=self.agent,
                    )
                )
            if not window.allows(self.state.budget.spends, now, usd):
                spent = window.spent(self.state.budget.spends, now)
                self.state.budget.waiting_usd = usd
                self._stop(
                    BudgetExceeded(
                        f"{self.agent}: {window.name} {window.cap_usd:g} reached "
                        f"({spent:.4f} spent, {usd:g} more asked)",
                        agent=self.agent,
                    )
                )
        with self.interrupts.critical():
            self._record("spend", usd=usd, tokens=tokens)
        self.tokens += tokens
        self.log.info("budget.spent", usd=usd, tokens=tokens)

    def step(self, label: str | None = None) -> None:
        """Count one step of the agent's loop; too many end the run."""
        self.steps += 1
        cap = self.limits.steps_per_run
        if cap is not None and self.steps > cap:
            self._stop(
                StepLimitExceeded(
                    f"{self.agent}: more than steps_per_run {cap} steps"
                    + (f" (at {label})" if label else ""),
                    agent=self.agent,
                )
            )

    def admit_request(self) -> None:
        """Wait, if need be, until ``requests_per_minute`` lets one more request go."""
        rate = self.limits.request_rate
        if rate is None:
            return
        recent = ratelimit.prune(self.state.rate_limits.get(REQUESTS, []), rate, self.clock())
        wait = ratelimit.wait_s(recent, rate, self.clock())
        if wait > 0:
            self.log.info("requests.waiting", wait_s=round(wait, 3), limit=str(rate))
            self.sleep(wait)
        now = self.clock()
        self.state.rate_limits[REQUESTS] = [*ratelimit.prune(recent, rate, now), now]

    # -- machinery ---------------------------------------------------------------------

    def _record(self, op: str, **fields: Any) -> None:
        now: datetime = self.clock()
        if self.journal is not None:
            record = self.journal.append(op, now, **fields)
        else:
            record = {"op": op, "run_id": "dry-run", "at": now.isoformat(), **fields}
        apply(self.state, record)

    def _stop(self, error: AgentOpsError) -> NoReturn:
        self.stopped = error
        raise GuardStop(error)
