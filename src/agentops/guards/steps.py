"""The step limit: ``[limits] steps_per_run`` caps the steps of an agent's loop (``ctx.step``).

A loop that never ends (a model that keeps asking for one more tool call)
is ended by the step limit long before the timeout. Each attempt of
``run()`` (a retry, ``fallback()``) counts its steps afresh. Nothing is kept
in the state: the cap is per run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentops.errors import StepLimitExceeded
from agentops.guards.base import Policy

if TYPE_CHECKING:
    from agentops.guards.base import GuardedRun

__all__ = ["StepPolicy"]


class StepPolicy(Policy):
    """Counts an attempt's steps; one past ``steps_per_run`` stops the run."""

    name = "steps"

    def __init__(self, run: GuardedRun) -> None:
        """No step yet."""
        super().__init__(run)
        self.steps = 0

    def new_attempt(self) -> None:
        """Count the new attempt's steps from zero."""
        self.steps = 0

    def step(self, label: str | None = None) -> None:
        """Count one step; too many stop the run (:class:`~agentops.errors.StepLimitExceeded`)."""
        run = self.run
        with run.lock:  # threads stepping at once count every step
            self.steps += 1
            steps = self.steps
        cap = run.limits.steps_per_run
        if cap is not None and steps > cap:
            run.stop(
                StepLimitExceeded(
                    f"{run.agent}: more than steps_per_run {cap} steps"
                    + (f" (at {label})" if label else ""),
                    agent=run.agent,
                )
            )
