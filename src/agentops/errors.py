"""The exceptions agentops raises, each knowing its exit code (sysexits).

::

    AgentOpsError                  1   something went wrong
    ├── UsageError                 2   bad command line (invalid agent name, bad -p)
    ├── ConfigError               78   bad agentops or agent configuration
    │   └── UnknownAgent          78
    ├── StateError                74   a state file that cannot be read or written
    │   └── LeaseLost             74   the run's lease lapsed: it may not commit
    ├── Rejected                  65   the gatekeeper refused params or output
    │   ├── ParamsRejected        65
    │   └── OutputRejected        65
    ├── ToolCallHeld               0   a destructive tool call waits for a human (run: held)
    ├── Skipped                   75   the run did not start (or stopped early), by policy
    │   ├── Overlap               75   another run of the agent holds the lock
    │   ├── Paused                75   an operator paused the agent
    │   ├── TickTaken             75   another run already took this schedule tick
    │   ├── GroupFull             75   the agent's group stayed full while it waited
    │   ├── RateLimited           75   the agent's run rate limit is exhausted
    │   ├── CircuitOpen           75   the circuit breaker is open
    │   ├── BudgetExhausted       75   a cost window is full: the run does not start
    │   ├── BudgetExceeded        75   a spend would pass a cap: the run stops
    │   └── ActionRateLimited     75   an action's rate limit is exhausted: the run stops
    └── TaskFailed                 1   the agent's task failed
        ├── AgentCodeFailed        1   agent code raised (the exception is its __cause__)
        ├── RunTimeout             1   the run passed its timeout
        ├── Interrupted            1   SIGTERM or SIGINT ended the run
        ├── StepLimitExceeded      1   ctx.step() passed [limits] steps_per_run
        ├── BudgetTooSmall         1   one spend is larger than a whole cap
        ├── ActionUnresolved       1   an action's effect is unknown after a crash
        ├── PermissionDenied       1   [permissions] does not allow the action or host
        ├── ToolFailed             1   a tool loop could not go on (a tool failed twice, max_steps)
        └── Escalated              1   the result's confidence is below review_threshold

    TransientError                     raised by agents: "retry me" (not an AgentOpsError)
    LLMError                           raised to agents by ctx.llm (not an AgentOpsError)
    ├── LLMUnavailable                 every model failed; not retried by the run
    ├── PromptTooLarge                 a request does not fit a model's context window
    ├── ReplyRejected                  [guard] pii = "reject" and a reply held PII
    └── ReplyRefused                   the model refused to answer

The CLI maps one exception to one exit code and prints its message as one line.
The codes are :class:`~agentops.model.status.ExitCode`'s, defined there once.
The runner turns the same exceptions into a run status
(:class:`~agentops.model.status.RunStatus`) stored in the state file.
"""

from __future__ import annotations

from agentops.model.status import ExitCode, RunStatus, SkipReason

__all__ = [
    "ActionRateLimited",
    "ActionUnresolved",
    "AgentCodeFailed",
    "AgentOpsError",
    "BudgetExceeded",
    "BudgetExhausted",
    "BudgetTooSmall",
    "CircuitOpen",
    "ConfigError",
    "Escalated",
    "GroupFull",
    "Interrupted",
    "LLMError",
    "LLMUnavailable",
    "LeaseLost",
    "OutputRejected",
    "Overlap",
    "ParamsRejected",
    "Paused",
    "PermissionDenied",
    "PromptTooLarge",
    "RateLimited",
    "Rejected",
    "ReplyRefused",
    "ReplyRejected",
    "RunTimeout",
    "Skipped",
    "StateError",
    "StepLimitExceeded",
    "TaskFailed",
    "TickTaken",
    "ToolCallHeld",
    "ToolFailed",
    "TransientError",
    "UnknownAgent",
    "UsageError",
]


class AgentOpsError(Exception):
    """Base of every error agentops raises on purpose."""

    exit_code: ExitCode = ExitCode.FAILED
    status: RunStatus = RunStatus.FAILED

    def __init__(self, message: str, *, agent: str | None = None) -> None:
        """Keep the message one line: it is what cron mails to the operator."""
        super().__init__(" ".join(message.split()))
        self.agent = agent

    @property
    def message(self) -> str:
        """The one-line message."""
        return str(self)


class UsageError(AgentOpsError):
    """The command line is wrong: an invalid agent name, a malformed ``-p``."""

    exit_code = ExitCode.USAGE
    status = RunStatus.ABORTED


class ConfigError(AgentOpsError):
    """Configuration is wrong: bad TOML, unknown keys, bad schedule, agent code unusable."""

    exit_code = ExitCode.CONFIG
    status = RunStatus.ABORTED


class UnknownAgent(ConfigError):
    """No ``agents/<name>/agent.toml`` exists for the name."""


class StateError(AgentOpsError):
    """A state file cannot be read, validated or written. It is never overwritten."""

    exit_code = ExitCode.STATE
    status = RunStatus.ABORTED


class LeaseLost(StateError):
    """The run's lease lapsed (another host took the agent over): it may not commit."""


class Rejected(AgentOpsError):
    """The gatekeeper refused the run's params or its output."""

    exit_code = ExitCode.REJECTED
    status = RunStatus.REJECTED

    def __init__(
        self, message: str, *, agent: str | None = None, errors: list[str] | None = None
    ) -> None:
        """``errors`` lists each validation problem, for the log."""
        super().__init__(message, agent=agent)
        self.errors = errors or []


class ParamsRejected(Rejected):
    """Params failed validation: nothing was executed."""


class OutputRejected(Rejected):
    """The Result model or the agent's ``validate()`` refused the output."""


class ToolCallHeld(AgentOpsError):
    """A model called a tool declared ``confirm=True``: the call waits for ``agentops review``.

    The run ends ``held`` (exit 0); ``tool``, ``key`` and ``arguments`` say which call.
    """

    exit_code = ExitCode.OK
    status = RunStatus.HELD

    def __init__(
        self, message: str, *, tool: str, key: str, arguments: dict[str, object], agent: str
    ) -> None:
        """The call held: the tool's name, its effect's key, its validated arguments."""
        super().__init__(message, agent=agent)
        self.tool = tool
        self.key = key
        self.arguments = arguments


class Skipped(AgentOpsError):
    """The run was not executed, by policy. Not a failure: cron stays quiet."""

    exit_code = ExitCode.SKIPPED
    status = RunStatus.SKIPPED
    reason: SkipReason = SkipReason.OVERLAP


class Overlap(Skipped):
    """Another run of the same agent holds the lock."""

    reason = SkipReason.OVERLAP


class Paused(Skipped):
    """An operator paused the agent (``agentops pause``)."""

    reason = SkipReason.PAUSED


class TickTaken(Skipped):
    """A run started for this schedule tick already (the same crontab on several hosts)."""

    reason = SkipReason.TICK_TAKEN


class GroupFull(Skipped):
    """Every slot of the agent's group (``[groups]``) stayed taken for as long as it waited."""

    reason = SkipReason.GROUP_FULL


class RateLimited(Skipped):
    """The agent's run rate limit (``[limits] runs``) is exhausted."""

    reason = SkipReason.RATE_LIMIT

    def __init__(self, message: str, *, agent: str | None = None, retry_after_s: float) -> None:
        """``retry_after_s`` says when the window has room again."""
        super().__init__(message, agent=agent)
        self.retry_after_s = retry_after_s


class CircuitOpen(RateLimited):
    """The circuit breaker is open: the same failure repeated, runs wait for the cooldown."""

    reason = SkipReason.CIRCUIT_OPEN


class BudgetExhausted(RateLimited):
    """A cost window (``cost_usd_per_hour``, ``cost_usd_per_day``) is full: no run starts."""

    reason = SkipReason.BUDGET


class BudgetExceeded(Skipped):
    """A spend would pass a cap: the run stops, its committed work kept."""

    status = RunStatus.BUDGET_EXCEEDED
    reason = SkipReason.BUDGET

    def __init__(
        self,
        message: str,
        *,
        agent: str | None = None,
        asked_usd: float = 0.0,
        asked_tokens: int = 0,
    ) -> None:
        """``asked_usd`` and ``asked_tokens``: the cost that was refused."""
        super().__init__(message, agent=agent)
        self.asked_usd = asked_usd
        self.asked_tokens = asked_tokens


class ActionRateLimited(Skipped):
    """An action's rate limit (``[limits.actions]``) is exhausted: the run stops cleanly."""

    status = RunStatus.RATE_LIMITED
    reason = SkipReason.ACTION_RATE_LIMIT


class TaskFailed(AgentOpsError):
    """The agent's task raised, or produced something unusable."""


class AgentCodeFailed(TaskFailed):
    """Agent code raised: its own exception is the ``__cause__``.

    The only failure that is retried (if transient), handed to ``fallback()``
    or read as a rejection by a validator; the timeout, a signal and a guard
    that trips are other kinds of TaskFailed and end the run as they are.
    """


class RunTimeout(TaskFailed):
    """The run passed the agent's ``timeout``."""

    status = RunStatus.TIMEOUT


class Interrupted(TaskFailed):
    """SIGTERM or SIGINT ended the run."""

    status = RunStatus.INTERRUPTED


class StepLimitExceeded(TaskFailed):
    """The agent called ``ctx.step()`` more often than ``[limits] steps_per_run`` allows."""


class BudgetTooSmall(TaskFailed):
    """A single spend is larger than a cost cap: no window will ever have room for it."""

    reason = SkipReason.BUDGET


class ActionUnresolved(TaskFailed):
    """A guarded action's effect is unknown (the process died inside ``do()``).

    It is never blindly redone: the agent's ``reconcile()`` or an operator
    (``agentops ledger AGENT --resolve KEY --done|--redo``) settles it.
    """


class PermissionDenied(TaskFailed):
    """``[permissions]`` does not allow the action or the host: refused before anything ran."""


class ToolFailed(TaskFailed):
    """``ctx.llm.run()`` could not go on: a tool failed the same way twice, or ``max_steps``."""


class Escalated(TaskFailed):
    """The result's confidence is below ``review_threshold``: a human must look."""

    status = RunStatus.ESCALATED


class TransientError(Exception):
    """Raised by an agent to say "this may work if tried again": the run is retried.

    ``retry_after_s`` asks for a wait before the next attempt (capped by the
    agent's ``[retry] max``).
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        """Describe the transient failure."""
        super().__init__(message)
        self.retry_after_s = retry_after_s


class LLMError(Exception):
    """A call of ``ctx.llm`` that cannot give a reply; raised into agent code."""


class LLMUnavailable(LLMError):
    """Every model of the chain failed (after its retries and re-asks).

    It reaches ``run()`` (and so ``fallback()``) and is never retried at the
    run level: a run must not send every earlier prompt again because its
    last call failed.
    """


class PromptTooLarge(LLMError):
    """A request does not fit the model's context window, even pruned."""


class ReplyRejected(LLMError):
    """A model's reply held a secret or personal data, and ``[guard] pii = "reject"``."""


class ReplyRefused(LLMError):
    """The model refused to answer (a refusal in its reply, or ``stop_reason`` refusal).

    Not asked of the next model: the agent decides, and may ask another
    (``model=``) with another prompt. ``refusal`` holds the model's words (or
    the provider's), ``model`` the model that refused, and ``completion`` the
    reply as an :class:`agentops.Completion`, for its usage.
    """

    def __init__(
        self, message: str, *, refusal: str, model: str, completion: object = None
    ) -> None:
        """Describe the refusal in ``message``; the rest is for the agent to read."""
        super().__init__(message)
        self.refusal = refusal
        self.model = model
        self.completion = completion
