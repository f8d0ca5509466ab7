"""Money and tokens: spends kept in the state file, checked against caps over sliding windows.

``cost_usd_per_hour`` and ``cost_usd_per_day`` cap the dollars spent in any
hour or day, across cron runs. A cost is asked for before it is incurred:

- ``ctx.spend(usd=...)`` records it at once;
- a call whose price is known only afterwards (a model call) first
  *reserves* its worst case, then *settles* the reservation to what it cost.
  Both are journaled, so a process killed in between keeps the reservation:
  money that may have been spent is never forgotten.

Either way a cost that would pass a cap is refused before it is incurred, so
the recorded total never exceeds a cap.

Spends are kept sorted by time with running sums beside them, so checking a
window is a binary search, not a pass over every spend: a run may spend ten
thousand times (bench/spends.py).
"""

# No ``from __future__ import annotations``: pydantic would evaluate every
# annotation from its text again, and cron pays each model's class at every tick.
import bisect
from datetime import datetime, timedelta
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from agentops._infra.timestamps import UtcDatetime

__all__ = ["EPSILON_USD", "LONGEST_WINDOW_S", "MAX_TOKENS", "MAX_USD", "Budget", "BudgetEntry"]

LONGEST_WINDOW_S = 86400.0
"""Spends older than this matter to no window and are dropped from the state file."""

EPSILON_USD = 1e-9
"""Float rounding tolerance when a spend lands exactly on a cap."""

MAX_USD = 1e9
MAX_TOKENS = 10**12
"""The largest single amounts accepted: larger ones are mistakes, and would overflow totals."""


class BudgetEntry(BaseModel):
    """Money or tokens a run spent (or reserved: ``id`` names a reservation not yet settled)."""

    # Kept inside the state, and built without validation: its schema is
    # part of the state's, never built alone.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, defer_build=True)

    at: UtcDatetime
    run_id: str
    usd: float = Field(0.0, ge=0, le=MAX_USD)
    tokens: int = Field(0, ge=0, le=MAX_TOKENS)
    id: str | None = None
    """Set while the spend is a reservation: settling replaces its amounts."""


class Budget(BaseModel):
    """The last day of spends (enough for every window), and a spend a window refused.

    ``waiting_usd`` is the spend a cost window last refused: runs are skipped
    until the windows have room for it, instead of each running into the cap.
    The cost policy (``agentops.guards.costs``) sets it as it refuses the
    spend, and reads it, then clears it, before the next run.
    """

    # Validated as a part of the state, whose schema holds its own: built
    # alone only for a new agent's state, or a budget reset by hand.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, defer_build=True)

    spends: list[BudgetEntry] = []
    waiting_usd: float = Field(0.0, ge=0, le=MAX_USD)
    _sums: list[float] = PrivateAttr(default_factory=lambda: [0.0])
    """``_sums[i]`` is the dollars of ``spends[:i]``, extended as spends are added."""

    @model_validator(mode="after")
    def _sorted(self) -> Self:
        self.spends.sort(key=_at)
        return self

    def __eq__(self, other: object) -> bool:
        """Budgets are equal when they hold the same spends (caches aside)."""
        if not isinstance(other, Budget):
            return NotImplemented
        return (self.spends, self.waiting_usd) == (other.spends, other.waiting_usd)

    __hash__ = None  # type: ignore[assignment]  # mutable: not hashable

    def record(self, *, at: datetime, run_id: str, usd: float, tokens: int) -> None:
        """Add a spend made at ``at`` (the latest time of all: the clock only counts forward)."""
        # Built without validation: the amounts were checked where they entered.
        self.spends.append(
            BudgetEntry.model_construct(at=self._latest(at), run_id=run_id, usd=usd, tokens=tokens)
        )

    def reserve(
        self, reservation: str, *, at: datetime, run_id: str, usd: float, tokens: int
    ) -> None:
        """Hold the worst case of a cost until :meth:`settle` says what it came to."""
        self.spends.append(
            BudgetEntry.model_construct(
                at=self._latest(at), run_id=run_id, usd=usd, tokens=tokens, id=reservation
            )
        )

    def settle(self, reservation: str, *, usd: float, tokens: int) -> BudgetEntry | None:
        """Replace a reservation by what it cost; return what was reserved (None if unknown)."""
        for index in range(len(self.spends) - 1, -1, -1):  # reservations are recent
            spend = self.spends[index]
            if spend.id == reservation:
                self.spends[index] = spend.model_copy(
                    update={"usd": usd, "tokens": tokens, "id": None}
                )
                del self._sums[index + 1 :]
                return spend
        return None

    def spent(self, seconds: float, now: datetime) -> float:
        """Dollars spent in the window of ``seconds`` ending at ``now``."""
        sums = self._prefix_sums()
        return max(0.0, sums[-1] - sums[self.first_after(now - timedelta(seconds=seconds))])

    def prune(self, now: datetime) -> None:
        """Forget spends no window can see any more; count spends from the future as now."""
        start = self.first_after(now - timedelta(seconds=LONGEST_WINDOW_S))
        kept = [s if s.at <= now else s.model_copy(update={"at": now}) for s in self.spends[start:]]
        self.spends = kept
        self._sums = [0.0]

    def pending(self) -> list[BudgetEntry]:
        """Reservations not settled: a run that died left them, and they still count."""
        return [s for s in self.spends if s.id is not None]

    def _latest(self, at: datetime) -> datetime:
        # After the clock is stepped back the newest spends lie in the future:
        # they count as now (they leave the windows a window from now).
        if self.spends and self.spends[-1].at > at:
            for index in range(len(self.spends) - 1, -1, -1):
                if self.spends[index].at <= at:
                    break
                self.spends[index] = self.spends[index].model_copy(update={"at": at})
        return at

    def first_after(self, start: datetime) -> int:
        """The index of the first spend made after ``start`` (spends are sorted by time)."""
        return bisect.bisect_right(self.spends, start, key=_at)

    def _prefix_sums(self) -> list[float]:
        sums = self._sums
        if len(sums) > len(self.spends) + 1:  # spends were replaced: start again
            del sums[1:]
        for spend in self.spends[len(sums) - 1 :]:
            sums.append(sums[-1] + spend.usd)
        return sums


def _at(spend: BudgetEntry) -> datetime:
    return spend.at
