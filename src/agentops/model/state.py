"""The agent's state: one versioned pydantic model, written only by agentops, read by people.

Where it is kept is the store's business (:mod:`agentops.store`); this module
is the shape of it, and how an older shape is brought forward
(:func:`migrate`). It is indented JSON with UTC ISO 8601 timestamps, and
every list in it is bounded, so it stays small and fast to load however long
the agent runs. The ledger of guarded actions lives beside it
(:mod:`agentops.model.ledger`): a run that performs no action never loads it, and
``ledger_summary`` keeps what a run and ``agentops status`` need of it.

Whatever loads must save in a form that loads again: numbers that are not
finite (NaN, ``1e400``), timestamps outside :data:`~agentops._infra.timestamps.MIN_YEAR`
to :data:`~agentops._infra.timestamps.MAX_YEAR` and records that are not valid are
refused when the file is read, and the file is left as it is.
"""

# No ``from __future__ import annotations``: pydantic would evaluate every
# annotation from its text again, and cron pays each model's class at every tick.
from datetime import datetime
from typing import Annotated, Any, Literal, Self

import pydantic_core
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from agentops._infra.timestamps import UtcDatetime
from agentops.model.ledger import LedgerMap, unresolved_of
from agentops.model.money import Budget
from agentops.model.status import RunStatus

__all__ = [
    "MAX_DURATIONS",
    "MAX_ERRORS",
    "MAX_REVIEW",
    "REQUESTS",
    "RUNS",
    "SCHEMA_VERSION",
    "AgentState",
    "Circuit",
    "ErrorRecord",
    "Held",
    "JsonObject",
    "JsonValue",
    "LastRun",
    "LedgerSummary",
    "Metrics",
    "Remembered",
    "action_key",
    "check_readable",
    "migrate",
]

SCHEMA_VERSION = 2
"""Bumped when the file's shape changes; older files are migrated forward on load.

2: the ledger moved to a file of its own, and ``ledger_summary`` took its place.
Fields added since with defaults (``memory``, the model metrics) load from
older files as they are: no new version was needed.
"""

MAX_ERRORS = 20
"""How many recent errors the state file keeps."""

MAX_DURATIONS = 20
"""How many durations of recent successful runs the state keeps: what ``slow`` is judged by."""

MAX_REVIEW = 100
"""How many results may wait for review: beyond it the oldest held (not escalated) go."""


RUNS = "runs"
REQUESTS = "requests"
"""Keys under which the state file's ``rate_limits`` counts runs and HTTP requests."""


def action_key(name: str) -> str:
    """The ``rate_limits`` key under which commits of the action ``name`` are counted."""
    return f"action:{name}"


def _finite_json(value: Any) -> Any:
    # JSON has no NaN or infinity: a value holding one would be saved in a
    # form the next run cannot read.
    check_readable(value)
    return value


def check_readable(value: Any, *, inside: int = 0, finite: bool = True) -> None:
    """Raise ``ValueError`` unless ``value``, nested ``inside`` levels deep, reads back.

    JSON is read back by pydantic-core, which refuses nesting deeper than it
    allows: a value written ``inside`` a file's objects must leave it room.
    With ``finite``, NaN and infinities are refused too (a log line writes
    them as strings, a state file cannot hold them).
    """
    mode: Literal["constants", "null"] = "constants" if finite else "null"
    data = b"[" * inside + pydantic_core.to_json(value, inf_nan_mode=mode) + b"]" * inside
    try:
        pydantic_core.from_json(data, allow_inf_nan=False)
    except ValueError as exc:
        if "recursion" in str(exc):
            raise ValueError("it is nested too deeply to be read back") from None
        raise ValueError("it holds NaN or an infinity, a number that is not finite") from None


JsonObject = Annotated[dict[str, Any], AfterValidator(_finite_json)]
"""A dict of JSON values, every number finite."""

JsonValue = Annotated[Any, AfterValidator(_finite_json)]
"""Any JSON value, every number finite."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _Part(_Record):
    # Validated as a part of the state, whose schema holds its own: built
    # alone only when first validated alone (a new agent's counters, a
    # failure's ErrorRecord, a held result), which most runs never do.
    model_config = ConfigDict(defer_build=True)


class LastRun(_Record):
    """The most recent run that was executed."""

    run_id: str
    started_at: UtcDatetime
    finished_at: UtcDatetime
    status: RunStatus
    duration_s: float = Field(ge=0)
    error: str | None = None
    degraded: bool = False


class Metrics(_Part):
    """Counters since the state file was created.

    ``runs`` counts executed runs; ``skipped`` the runs that did not start
    (rate limit, circuit, budget, paused); ``stopped`` those a guard ended early.
    """

    runs: int = Field(0, ge=0)
    succeeded: int = Field(0, ge=0)
    failed: int = Field(0, ge=0)
    rejected: int = Field(0, ge=0)
    skipped: int = Field(0, ge=0)
    stopped: int = Field(0, ge=0)
    held: int = Field(0, ge=0)
    escalated: int = Field(0, ge=0)
    degraded: int = Field(0, ge=0)
    tokens: int = Field(0, ge=0)
    cost_usd: float = Field(0.0, ge=0)
    llm_calls: int = Field(0, ge=0)
    """Requests ``ctx.llm`` sent that were answered."""
    llm_cache_hits: int = Field(0, ge=0)
    """Replies ``ctx.llm`` took from its cache instead of sending."""
    llm_usd_saved: float = Field(0.0, ge=0)
    """What the cache hits would have cost."""
    injections_suspected: int = Field(0, ge=0)
    """Untrusted texts in which ``ctx.llm.untrusted`` found injection phrasing."""
    tool_calls: int = Field(0, ge=0)
    """Tools a model called through ``ctx.llm.run`` (each call, whatever came of it)."""
    tool_calls_unknown: int = Field(0, ge=0)
    """Of those, calls of a tool that was not offered (a model inventing one)."""
    notes: int = Field(0, ge=0)
    """Notes (``ctx.memory.note``) kept by runs that succeeded."""

    def count(self, status: RunStatus) -> None:
        """Count a run that ended with ``status``."""
        metric = status.metric
        if metric is not None:
            setattr(self, metric, getattr(self, metric) + 1)
        if status.executed:
            self.runs += 1

    def add_cost(self, usd: float, tokens: int) -> None:
        """Add spent money and tokens (negative when a reservation settles for less)."""
        self.cost_usd = max(0.0, round(self.cost_usd + usd, 9))
        self.tokens = max(0, self.tokens + tokens)


class Circuit(_Part):
    """The circuit breaker: closed, open (runs skipped until ``until``), or half-open."""

    state: Literal["closed", "open", "half_open"] = "closed"
    fingerprint: str | None = None
    failures: int = Field(0, ge=0)
    reason: str | None = None
    opened_at: UtcDatetime | None = None
    until: UtcDatetime | None = None


class Held(_Part):
    """A result waiting for a human: held for review, or escalated."""

    id: str
    run_id: str
    at: UtcDatetime
    confidence: float | None = Field(None, ge=0, le=1)
    escalated: bool = False
    result: JsonObject
    """The result held; for a tool call, its arguments."""
    tool: str | None = None
    """The tool whose call is held (``confirm=True``); None for a result."""
    key: str | None = None
    """The held call's key: its guarded action is ``tool.<tool>`` of this key."""


class ErrorRecord(_Part):
    """One recent failure or rejection."""

    at: UtcDatetime
    run_id: str
    category: RunStatus
    message: str


class LedgerSummary(_Part):
    """What a run and ``agentops status`` need of the ledger, without reading it."""

    entries: int = Field(0, ge=0)
    unresolved: list[tuple[str, str]] = []
    """``(action, key)`` of every entry whose effect is unknown."""

    @classmethod
    def of(cls, entries: LedgerMap) -> Self:
        """The summary of a ledger's entries."""
        return cls(
            entries=sum(len(keys) for keys in entries.values()),
            unresolved=unresolved_of(entries),
        )


class Remembered(_Part):
    """A value in working memory (``ctx.memory.remember``): kept until ``expires_at``, if set."""

    value: JsonValue
    expires_at: UtcDatetime | None = None

    def expired(self, now: datetime) -> bool:
        """Whether its time to live has passed at ``now``."""
        return self.expires_at is not None and self.expires_at <= now


class AgentState(_Record):
    """Everything agentops remembers about one agent between runs.

    Assignments are validated, so a wrong value fails where it is set instead
    of producing a file the next run cannot read.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    schema_version: Annotated[int, Field(strict=True, ge=1)] = SCHEMA_VERSION
    agent: str
    last_run: LastRun | None = None
    last_success_at: UtcDatetime | None = None
    consecutive_failures: Annotated[int, Field(ge=0)] = 0
    """Executed runs in a row that did not succeed (any failure, not only identical ones)."""
    metrics: Metrics = Field(default_factory=Metrics)
    errors: list[ErrorRecord] = []
    circuit: Circuit = Field(default_factory=Circuit)
    rate_limits: dict[str, list[UtcDatetime]] = {}
    budget: Budget = Field(default_factory=Budget)
    review: list[Held] = []
    ledger_summary: LedgerSummary = Field(default_factory=LedgerSummary)
    journal_folded: str | None = None
    memory: dict[str, Remembered] = {}
    """Working memory (``ctx.memory.remember``), by key; expired entries go when it is saved."""
    durations: list[Annotated[float, Field(ge=0)]] = []
    """Seconds each recent successful run took, the oldest first (:data:`MAX_DURATIONS`)."""
    data: JsonObject = {}

    def forget_expired(self, now: datetime) -> None:
        """Drop the working memory whose time to live has passed."""
        if any(entry.expired(now) for entry in self.memory.values()):
            self.memory = {k: e for k, e in self.memory.items() if not e.expired(now)}

    def record_duration(self, seconds: float) -> None:
        """Remember how long a successful run took, keeping the :data:`MAX_DURATIONS` latest."""
        self.durations = [*self.durations, seconds][-MAX_DURATIONS:]

    def record_error(self, error: ErrorRecord) -> None:
        """Remember ``error``, keeping only the :data:`MAX_ERRORS` most recent."""
        self.errors = [*self.errors, error][-MAX_ERRORS:]

    def hold(self, held: Held) -> list[Held]:
        """Add a result for review; return those dropped to keep :data:`MAX_REVIEW`.

        The oldest results held for review go first; escalated ones are kept
        while any other can go, since a person was told of each.
        """
        review = [*self.review, held]
        dropped: list[Held] = []
        while len(review) > MAX_REVIEW:
            victim = next((h for h in review if not h.escalated), review[0])
            review.remove(victim)
            dropped.append(victim)
        self.review = review
        return dropped


def migrate(document: dict[str, Any]) -> tuple[dict[str, Any], LedgerMap | None]:
    """Bring a state document of an older ``schema_version`` forward to this one.

    Returns the document and, from a version-1 file, the ledger it held (to be
    written to the ledger's own file). A document from a newer agentops is
    returned as it is: the caller refuses it.
    """
    ledger: LedgerMap | None = None
    version = document.get("schema_version", 1)  # files made before versions were version 1
    if version == 1:
        document = dict(document)
        found = document.pop("ledger", None)
        ledger = found if isinstance(found, dict) else {}
        document["schema_version"] = 2
        if all(isinstance(keys, dict) for keys in ledger.values()):
            document["ledger_summary"] = LedgerSummary.of(ledger).model_dump()
    return document, ledger
