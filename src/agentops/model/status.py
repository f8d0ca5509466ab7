"""The words agentops uses for how a run ended, defined once.

Every module that stores, counts, logs or shows a run's status imports
:class:`RunStatus` from here: the state file (``last_run.status``), the
metrics, the exit codes, ``run.finished`` and ``run.skipped`` in the log, and
the ``status``, ``health`` and ``report`` commands. A status that one of them
did not know is then impossible, not a crash at the end of a run.

=====================  =====  ========  =====================================
status                 exit   metric    meaning
=====================  =====  ========  =====================================
``succeeded``          0      succeeded the run finished and its result stands
``held``               0      held      the result waits for a human (review)
``failed``             1      failed    agent code raised, or a guard failed it
``timeout``            1      failed    the run passed its timeout
``interrupted``        1      failed    SIGTERM or SIGINT ended it
``escalated``          1      escalated the result's confidence was too low
``crashed``            1      failed    the process died; the next run recovered it
``rejected``           65     rejected  the Result or ``validate()`` refused the output
``rate_limited``       75     stopped   an action's rate limit stopped the run
``budget_exceeded``    75     stopped   a spend would have passed a cap
``skipped``            75     skipped   the run did not start (see :class:`SkipReason`)
``aborted``            2-78   none      the run could not start: usage, config, state
=====================  =====  ========  =====================================

The last two never appear in ``last_run``: only executed runs are recorded
there. The exit codes themselves are :class:`ExitCode`, the one list the
errors, this table and the command line all use.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

__all__ = ["ExitCode", "RunStatus", "SkipReason"]


class ExitCode(IntEnum):
    """The exit codes of ``agentops`` (sysexits where one fits), defined once."""

    OK = 0
    """Done (also "nothing to do")."""
    FAILED = 1
    """The task failed after its retries and fallbacks (or a check found a problem)."""
    USAGE = 2
    """The command line is wrong."""
    REJECTED = 65
    """Params or output rejected (``EX_DATAERR``)."""
    INTERNAL = 70
    """An unexpected error inside agentops itself, a bug (``EX_SOFTWARE``)."""
    STATE = 74
    """A state file cannot be read or written (``EX_IOERR``)."""
    SKIPPED = 75
    """Skipped or stopped by policy: try again later (``EX_TEMPFAIL``)."""
    CONFIG = 78
    """Configuration error (``EX_CONFIG``)."""


class RunStatus(StrEnum):
    """How one invocation of ``agentops run`` ended."""

    SUCCEEDED = "succeeded"
    HELD = "held"
    FAILED = "failed"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    ESCALATED = "escalated"
    CRASHED = "crashed"
    REJECTED = "rejected"
    RATE_LIMITED = "rate_limited"
    BUDGET_EXCEEDED = "budget_exceeded"
    SKIPPED = "skipped"
    ABORTED = "aborted"

    @property
    def ok(self) -> bool:
        """The run did its job: it counts as a success for health and the breaker."""
        return self in _OK

    @property
    def failed(self) -> bool:
        """The run failed: it needs a human if it goes on (stops by policy do not count)."""
        return self in _FAILED

    @property
    def executed(self) -> bool:
        """The run started its task, so it is recorded as ``last_run``."""
        return self not in (RunStatus.SKIPPED, RunStatus.ABORTED)

    @property
    def metric(self) -> str | None:
        """The ``metrics`` counter a run ending so adds to (None: an aborted run counts nowhere)."""
        return _METRIC.get(self)

    @property
    def trips_breaker(self) -> bool:
        """Whether a run ending so counts towards opening the circuit breaker."""
        return self in _TRIPS_BREAKER

    @property
    def exit_code(self) -> ExitCode:
        """The exit code of a run ending so (an aborted run's comes from its error)."""
        return _EXIT_CODE[self]


class SkipReason(StrEnum):
    """Why a run did not start (``run.skipped reason=...``), or why a guard stopped it."""

    OVERLAP = "overlap"
    PAUSED = "paused"
    TICK_TAKEN = "tick_taken"
    GROUP_FULL = "group_full"
    RATE_LIMIT = "rate_limit"
    CIRCUIT_OPEN = "circuit_open"
    BUDGET = "budget"
    ACTION_RATE_LIMIT = "action_rate_limit"


_OK = frozenset({RunStatus.SUCCEEDED, RunStatus.HELD})
_FAILED = frozenset(
    {
        RunStatus.FAILED,
        RunStatus.TIMEOUT,
        RunStatus.INTERRUPTED,
        RunStatus.ESCALATED,
        RunStatus.CRASHED,
        RunStatus.REJECTED,
    }
)
# A crash is not counted: kill -9 is more often an operator than the agent.
_TRIPS_BREAKER = frozenset({RunStatus.FAILED, RunStatus.TIMEOUT, RunStatus.REJECTED})
_METRIC = {
    RunStatus.SUCCEEDED: "succeeded",
    RunStatus.HELD: "held",
    RunStatus.FAILED: "failed",
    RunStatus.TIMEOUT: "failed",
    RunStatus.INTERRUPTED: "failed",
    RunStatus.ESCALATED: "escalated",
    RunStatus.CRASHED: "failed",
    RunStatus.REJECTED: "rejected",
    RunStatus.RATE_LIMITED: "stopped",
    RunStatus.BUDGET_EXCEEDED: "stopped",
    RunStatus.SKIPPED: "skipped",
}
_EXIT_CODE = {
    RunStatus.SUCCEEDED: ExitCode.OK,
    RunStatus.HELD: ExitCode.OK,
    RunStatus.FAILED: ExitCode.FAILED,
    RunStatus.TIMEOUT: ExitCode.FAILED,
    RunStatus.INTERRUPTED: ExitCode.FAILED,
    RunStatus.ESCALATED: ExitCode.FAILED,
    RunStatus.CRASHED: ExitCode.FAILED,
    RunStatus.REJECTED: ExitCode.REJECTED,
    RunStatus.RATE_LIMITED: ExitCode.SKIPPED,
    RunStatus.BUDGET_EXCEEDED: ExitCode.SKIPPED,
    RunStatus.SKIPPED: ExitCode.SKIPPED,
    RunStatus.ABORTED: ExitCode.INTERNAL,
}
