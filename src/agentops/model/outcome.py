"""How one invocation ended, as data: what the CLI prints, notifications and health read.

The runner fills an :class:`Outcome` with facts (the status, the exit code,
why, whether the circuit changed, what was spent) rather than only a message,
so that every reader decides from the same facts. It is the one account of
how a run ended: the state's ``last_run`` (:func:`agentops.run.ending.record_run`)
and the store's last attempt (:meth:`agentops.store.base.Attempt.of`) are
made from it, and the test kit hands it to tests as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple

from agentops.model.status import ExitCode, RunStatus

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

__all__ = ["CircuitChange", "Outcome"]

CircuitChange = Literal["opened", "closed"]
"""What a run did to the circuit breaker, if anything."""


class Outcome(NamedTuple):
    """How an invocation ended.

    ``reason`` says why a run was skipped (a :class:`~agentops.model.status.SkipReason`)
    or, for a failed run, the category of its failure (``http_5xx``,
    ``timeout``...). ``threads_left`` counts threads the agent started that
    were still running at the end: the process holds the agent's lease until
    it exits, and the CLI exits at once rather than wait for them.
    ``started_at`` and ``finished_at`` are set for a run that executed (the
    ones recorded as ``last_run``), None for one that never started.
    """

    agent: str
    run_id: str
    status: RunStatus
    exit_code: int
    message: str
    log_path: Path
    reason: str | None = None
    circuit: CircuitChange | None = None
    degraded: bool = False
    spent_usd: float = 0.0
    tokens: int = 0
    duration_s: float | None = None
    threads_left: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    log_unwritable: str | None = None
    """Why the log could not be written, if it could not: :attr:`summary` says so too."""
    budget_filled: bool = False
    """The run left a cost window exactly full: it says so, as a run that a budget stops does."""

    @property
    def quiet(self) -> bool:
        """Success and skips print nothing under cron: only failures mail a human.

        A run that opens the circuit, that a budget stops, or that fills a
        cost window to its cap, is the exception: it says so once, and the
        skips that follow are quiet.
        """
        if (
            self.circuit == "opened"
            or self.status == RunStatus.BUDGET_EXCEEDED
            or self.budget_filled
        ):
            return False
        return self.exit_code in (ExitCode.OK, ExitCode.SKIPPED)

    @property
    def summary(self) -> str:
        """The one line said about it: the message and the log (or why it could not be written)."""
        if self.log_unwritable is None:
            return f"{self.message} (log: {self.log_path})"
        return f"{self.message} (cannot write the log {self.log_path}: {self.log_unwritable})"
