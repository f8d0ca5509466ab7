"""The cost policy: ``tokens_per_run``, ``cost_usd_per_hour`` and ``cost_usd_per_day``.

The spends themselves are durable data (:mod:`agentops.model.money`); this
module is how ``[limits]`` reads them: how much a window holds, whether a
cost fits, and when a full window has room again.

During a run every cost is asked for before it is incurred: ``ctx.spend``
records it at once; a model call reserves its worst case, then settles the
reservation to what it cost. A cost that would pass a cap is refused:
:class:`~agentops.errors.BudgetTooSmall` if it is larger than a whole cap
(waiting would never help), :class:`~agentops.errors.BudgetExceeded` if the
window is merely full. The refused amount is kept in the state
(``budget.waiting_usd``), and gate 2 skips the runs that follow until every
window has room for it, instead of each running into the cap.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, NamedTuple

from agentops._infra.timestamps import at_most
from agentops.errors import BudgetExceeded, BudgetExhausted, BudgetTooSmall
from agentops.guards.base import Policy
from agentops.model import money
from agentops.model.journal import Reserve, Settle, Spend
from agentops.model.money import EPSILON_USD, LONGEST_WINDOW_S

if TYPE_CHECKING:
    from datetime import datetime

    from agentops._infra.log import EventLogger
    from agentops.guards.base import GuardedRun
    from agentops.model.money import Budget
    from agentops.model.state import AgentState
    from agentops.project.config import AgentConfig, Limits

__all__ = ["CostPolicy", "Window", "check_amounts", "filled_line", "full_window", "windows"]


class Window(NamedTuple):
    """A cap on the dollars spent in any window of ``seconds``."""

    name: str
    seconds: float
    cap_usd: float

    def spent(self, budget: Budget, now: datetime) -> float:
        """Dollars spent in the window ending at ``now``."""
        return budget.spent(self.seconds, now)

    def allows(self, budget: Budget, now: datetime, usd: float) -> bool:
        """Whether spending ``usd`` more now keeps the window at or under its cap."""
        return self.spent(budget, now) + usd <= self.cap_usd + EPSILON_USD

    def room_in_s(self, budget: Budget, now: datetime, *, need_usd: float = 0.0) -> float:
        """Seconds until the window has room again; 0 if it has now.

        Room is for ``need_usd`` more (the spend a run was refused), or, with no
        need, any spend at all: the total below the cap.
        """
        if self.cap_usd <= 0 or need_usd > self.cap_usd + EPSILON_USD:
            return math.inf
        if need_usd > 0:
            limit = self.cap_usd + EPSILON_USD - need_usd

            def fits(total: float) -> bool:
                return total <= limit
        else:
            # Below the cap by more than rounding, however small the cap.
            below = self.cap_usd - min(EPSILON_USD, self.cap_usd / 2)

            def fits(total: float) -> bool:
                return total < below

        total = self.spent(budget, now)
        if fits(total):
            return 0.0
        start = now - timedelta(seconds=self.seconds)
        recent = budget.spends[budget.first_after(start) :]
        for spend in recent:  # the oldest spends leave the window first
            total -= spend.usd
            if fits(total):
                leaves = at_most(spend.at, now) + timedelta(seconds=self.seconds)
                return max(0.0, (leaves - now).total_seconds())
        return self.seconds


def windows(limits: Limits) -> list[Window]:
    """The cost windows ``[limits]`` sets, shortest first."""
    found = []
    if limits.cost_usd_per_hour is not None:
        found.append(Window("cost_usd_per_hour", 3600.0, limits.cost_usd_per_hour))
    if limits.cost_usd_per_day is not None:
        found.append(Window("cost_usd_per_day", LONGEST_WINDOW_S, limits.cost_usd_per_day))
    return found


def full_window(limits: Limits, budget: Budget, now: datetime) -> tuple[Window, float] | None:
    """The first window with no room now, and in how many seconds it has; None if all have.

    Room is for the spend a run was last refused (``budget.waiting_usd``), if any.
    """
    for window in windows(limits):
        room_in = window.room_in_s(budget, now, need_usd=budget.waiting_usd)
        if room_in > 0:
            return window, room_in
    return None


def filled_line(limits: Limits, budget: Budget, now: datetime) -> tuple[Window, float, str] | None:
    """The first window a run left full (no room for any spend), its wait, and what to say.

    Called as a run ends: a cap reached exactly stops no run (no spend passed
    it), yet every run after it is skipped until spends leave the window, so
    the run that filled it says so once, as one that a cap stops does.
    """
    for window in windows(limits):
        room_in = window.room_in_s(budget, now)
        if room_in > 0:
            when = "it allows none" if math.isinf(room_in) else f"room in {room_in:.0f}s"
            line = f"{window.name} {window.cap_usd:g} now spent: the next runs are skipped, {when}"
            return window, room_in, line
    return None


def check_amounts(usd: float, tokens: int) -> None:
    """Raise ``ValueError`` unless ``usd`` and ``tokens`` are plausible amounts of a cost."""
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


class CostPolicy(Policy):
    """Budgets: the run's tokens, and the dollars of every window, capped; spends recorded."""

    name = "budget"

    def __init__(self, run: GuardedRun) -> None:
        """No cost yet in this run."""
        super().__init__(run)
        self.tokens = 0
        self.usd = 0.0
        self._reservations = 0

    # -- between runs ------------------------------------------------------------------

    @staticmethod
    def admit_run(config: AgentConfig, state: AgentState, now: datetime) -> None:
        """Refuse the run (:class:`~agentops.errors.BudgetExhausted`) while a window is full."""
        budget = state.budget
        full = full_window(config.limits, budget, now)
        if full is not None:
            window, room_in = full
            need = budget.waiting_usd
            when = "it allows none" if math.isinf(room_in) else f"room in {room_in:.0f}s"
            raise BudgetExhausted(
                f"{state.agent}: {window.name} {window.cap_usd:g} has no room"
                + (f" for the {need:g} a run asked for" if need else "")
                + f"; {when}",
                agent=state.agent,
                retry_after_s=room_in,
            )
        budget.waiting_usd = 0.0  # it fits now: this run may ask for it again

    @staticmethod
    def prune_state(config: AgentConfig, state: AgentState, now: datetime) -> None:
        """Forget the spends no window can see any more."""
        del config
        state.budget.prune(now)

    @staticmethod
    def reset_state(state: AgentState, log: EventLogger) -> str:
        """Forget every spend (and the spend a run was refused)."""
        spent = len(state.budget.spends)
        state.budget = money.Budget()
        log.info("budget.reset", spends=spent)
        return f"budget reset ({spent} spend(s) forgotten)"

    # -- during a run ------------------------------------------------------------------

    def spend(self, *, usd: float = 0.0, tokens: int = 0) -> None:
        """Record a cost before it is incurred; refuse it if it would pass a cap."""
        run = self.run
        with run.lock:
            check_amounts(usd, tokens)
            run.admit_cost(usd, tokens)
            with run.interrupts.critical():
                run.record(Spend, durable=True, usd=usd, tokens=tokens)
            self.tokens += tokens
            self.usd += usd
        run.log.info_redacted("budget.spent", usd=usd, tokens=tokens)

    def reserve(self, *, usd: float, tokens: int = 0) -> str:
        """Hold the worst case of a cost about to be incurred; return the reservation's id.

        Refused like a spend if it would pass a cap, before anything is sent.
        Journaled (durable), so a process killed before :meth:`settle` keeps it.
        """
        run = self.run
        with run.lock:
            check_amounts(usd, tokens)
            run.admit_cost(usd, tokens)
            self._reservations += 1
            reservation = f"{run.run_id}-{self._reservations}"
            with run.interrupts.critical():
                run.record(Reserve, durable=True, id=reservation, usd=usd, tokens=tokens)
            self.tokens += tokens
            self.usd += usd
        run.log.info("budget.reserved", id=reservation, usd=usd, tokens=tokens)
        return reservation

    def settle(self, reservation: str, *, usd: float, tokens: int) -> None:
        """Replace a reservation by what the cost came to (usually less)."""
        check_amounts(usd, tokens)
        run = self.run
        with run.lock:
            spends = run.state.budget.spends
            was = next((s for s in reversed(spends) if s.id == reservation), None)
            if was is None:
                raise ValueError(f"no reservation {reservation!r} to settle")
            with run.interrupts.critical():
                run.record(Settle, id=reservation, usd=usd, tokens=tokens)
            self.tokens += tokens - was.tokens
            self.usd += usd - was.usd
        run.log.info("budget.settled", id=reservation, usd=usd, tokens=tokens, reserved_usd=was.usd)

    def room(self) -> tuple[float, int | None]:
        """What the caps leave now: dollars (``inf`` with no window) and tokens (None: no cap).

        Asked before a block is reserved (:mod:`agentops.llm._block`): one the
        caps cannot grant is not asked for, so it is never refused.
        """
        run = self.run
        with run.lock:
            budget, now = run.state.budget, run.clock()
            usd = min(
                (w.cap_usd - w.spent(budget, now) for w in windows(run.limits)), default=math.inf
            )
            cap = run.limits.tokens_per_run
            tokens = None if cap is None else cap - self.tokens
        return max(0.0, usd), None if tokens is None else max(0, tokens)

    def admit_cost(self, usd: float, tokens: int) -> None:
        """Refuse a cost past ``tokens_per_run`` or a full window; remember a refused amount."""
        run = self.run
        agent, limits, now = run.agent, run.limits, run.clock()
        cap = limits.tokens_per_run
        if cap is not None and tokens > cap:
            run.stop(
                BudgetTooSmall(
                    f"{agent}: a single spend of {tokens} tokens is more than "
                    f"tokens_per_run {cap}: raise the cap or spend less per call",
                    agent=agent,
                )
            )
        if cap is not None and self.tokens + tokens > cap:
            run.stop(
                BudgetExceeded(
                    f"{agent}: tokens_per_run {cap} reached "
                    f"({self.tokens} used, {tokens} more asked)",
                    agent=agent,
                    asked_tokens=tokens,
                )
            )
        budget = run.state.budget
        for window in windows(limits):
            if usd > window.cap_usd:
                # Waiting would never help: a person must raise the cap or cut the cost.
                run.stop(
                    BudgetTooSmall(
                        f"{agent}: a single spend of {usd:g} is more than "
                        f"{window.name} {window.cap_usd:g}: raise the cap or spend less per call",
                        agent=agent,
                    )
                )
            if not window.allows(budget, now, usd):
                refused = BudgetExceeded(
                    f"{agent}: {window.name} {window.cap_usd:g} reached "
                    f"({window.spent(budget, now):.4f} spent, {usd:g} more asked)",
                    agent=agent,
                    asked_usd=usd,
                )
                # Read back by admit_run: the next runs wait until it fits.
                budget.waiting_usd = refused.asked_usd
                run.stop(refused)
