"""``agents/<name>/agent.toml``: an agent's configuration, section by section."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, StrictBool, model_validator

from agentops.project._values import (
    SECTION,
    Count,
    Fraction,
    GroupName,
    HttpUrl,
    Money,
    Schedule,
    Weight,
)
from agentops.project.schedule import longest_interval_s
from agentops.project.units import (  # noqa: TC001 - pydantic reads the annotations at run time
    Duration,
    PositiveDuration,
    RateSpec,
)

DEFAULT_TIMEOUT_S = 600.0
"""A run that has not finished after ten minutes is stopped, unless ``timeout`` says otherwise."""

DEFAULT_KEEP_S = 30 * 86400.0
"""How long guarded actions are remembered unless ``[ledger] keep`` says otherwise."""


class _Section(BaseModel):
    # Defined here, not imported: tools see at once that the sections are pydantic models.
    model_config = SECTION


class Limits(_Section):
    """``[limits]``: rate limits and budgets that hold across cron runs."""

    runs: RateSpec | None = None
    cost_usd_per_hour: Money | None = None
    cost_usd_per_day: Money | None = None
    tokens_per_run: Count | None = None
    requests_per_minute: Annotated[int, Field(strict=True, ge=1)] | None = None
    steps_per_run: Annotated[int, Field(strict=True, ge=1)] | None = None
    actions: dict[str, RateSpec] = {}

    @property
    def usd_capped(self) -> bool:
        """Whether a USD cap is kept (every cost must then be counted)."""
        return self.cost_usd_per_hour is not None or self.cost_usd_per_day is not None


class Retry(_Section):
    """``[retry]``: how transient failures are retried (of ``run()``, and of each model call)."""

    attempts: Annotated[int, Field(strict=True, ge=1, le=100)] = 3
    initial: PositiveDuration = 1.0
    max: PositiveDuration = 60.0

    @model_validator(mode="after")
    def _ordered(self) -> Retry:
        if self.max < self.initial:
            raise ValueError("max must not be shorter than initial")
        return self


class CircuitConfig(_Section):
    """``[circuit]``: stop running after the same failure repeats."""

    failures: Annotated[int, Field(strict=True, ge=1)] = 2
    cooldown: PositiveDuration = 3600.0


class LedgerConfig(_Section):
    """``[ledger]``: how long guarded actions are remembered."""

    keep: PositiveDuration = DEFAULT_KEEP_S


class Guard(_Section):
    """``[guard]``: confidence routing, and what to do with PII in model replies."""

    auto_threshold: Fraction = 0.85
    review_threshold: Fraction = 0.5
    pii: Literal["redact", "reject", "off"] = "redact"

    @model_validator(mode="after")
    def _ordered(self) -> Guard:
        if self.review_threshold > self.auto_threshold:
            raise ValueError("review_threshold must not be above auto_threshold")
        return self


class Permissions(_Section):
    """``[permissions]``: least privilege. No list means no restriction.

    ``actions`` names the guarded actions the agent may perform; ``hosts`` the
    hosts ``ctx.http`` (and every client built on it) may reach: exact names,
    ``*.example.org`` for its subdomains, or IP addresses and networks
    (``10.0.0.0/8``). Loopback and private addresses are refused unless listed,
    whatever name resolves to them. ``tools`` names the tools ``ctx.llm.run``
    may offer a model (and whose effects it may perform).
    """

    actions: list[str] | None = None
    tools: list[Annotated[str, Field(min_length=1)]] | None = None
    hosts: list[Annotated[str, Field(min_length=1)]] | None = None


class Llm(_Section):
    """``[llm]``: the models ``ctx.llm`` calls, in order, and how."""

    model: str | None = None
    fallbacks: list[str] = []
    tiers: dict[str, str] = {}
    max_tokens: Annotated[int, Field(strict=True, ge=1, le=10_000_000)] = 1024
    temperature: Annotated[float, Field(strict=True, ge=0, le=2)] | None = None
    cache: Duration | None = None
    """How long a reply is reused for the same request; none or zero: no cache."""
    cache_entries: Annotated[int, Field(strict=True, ge=1, le=1_000_000)] = 10_000
    """The most replies the cache keeps; the oldest go first."""
    max_reasks: Annotated[int, Field(strict=True, ge=0, le=10)] = 1
    timeout: PositiveDuration = 60.0
    """Seconds a model may take to answer one call."""
    log_bodies: StrictBool = False

    def chain(self, model: str | None = None, tier: str | None = None) -> list[str]:
        """The models to try for a call, first choice first."""
        first = model or (self.tiers.get(tier) if tier else None) or self.model
        chain = [first] if first else []
        return chain + [m for m in self.fallbacks if m not in chain]


class MemoryConfig(_Section):
    """``[memory]``: long-term notes and how ``relevant()`` ranks them."""

    keep_notes: Annotated[int, Field(strict=True, ge=1, le=1_000_000)] = 1000
    relevance_weight: Weight = 1.0
    recency_weight: Weight = 1.0
    importance_weight: Weight = 1.0
    recency_half_life: PositiveDuration = 86400.0


class AgentNotify(_Section):
    """``[notify]`` in agent.toml: the agent's own check, in the Healthchecks protocol."""

    ping: HttpUrl | None = None
    """The check's URL: ``/start`` when a run starts, the URL itself or ``/<exit code>`` at its
    end. A secret (it holds the check's token): nothing says more of it than its host."""


class AgentConfig(_Section):
    """``agents/<name>/agent.toml``: what the operator edits."""

    description: str = ""
    schedule: Schedule | None = None
    timeout: PositiveDuration = DEFAULT_TIMEOUT_S
    grace: PositiveDuration | None = None
    """How late a scheduled run may succeed before ``agentops health`` calls it stale."""
    expected_duration: PositiveDuration | None = None
    """How long a run should take at most: a run that succeeds after longer is ``slow``."""
    notify: AgentNotify = AgentNotify()
    group: GroupName | None = None
    """The group whose limit (``[groups]`` in agentops.toml) this agent's runs count against."""
    catch_up: StrictBool = False
    """Whether ``agentops tick`` runs a tick missed (the host was down) once, at its next tick."""
    params: dict[str, Any] = {}
    limits: Limits = Limits()
    retry: Retry = Retry()
    circuit: CircuitConfig = CircuitConfig()
    ledger: LedgerConfig = LedgerConfig()
    guard: Guard = Guard()
    permissions: Permissions = Permissions()
    llm: Llm = Llm()
    memory: MemoryConfig = MemoryConfig()

    _keep_s: float = PrivateAttr(DEFAULT_KEEP_S)

    @model_validator(mode="after")
    def _expected_within_the_timeout(self) -> AgentConfig:
        # A run is stopped at its timeout: it could never be told as slow.
        if self.expected_duration is not None and self.expected_duration >= self.timeout:
            raise ValueError(
                f"expected_duration ({self.expected_duration:g}s) must be shorter than "
                f"timeout ({self.timeout:g}s): a run is stopped at its timeout"
            )
        return self

    @model_validator(mode="after")
    def _keep_outlives_the_schedule(self) -> AgentConfig:
        # Entries pruned before the next run would let that run redo them.
        self._keep_s = self.ledger.keep
        interval = longest_interval_s(self.schedule, at_least=self.ledger.keep)
        if interval is None or interval <= self.ledger.keep:
            return self
        if "keep" in self.ledger.model_fields_set:
            if math.isinf(interval):
                raise ValueError(
                    "[ledger] keep is too short to check against this schedule: keep at least "
                    "a day (actions forgotten too soon are redone by the next run)"
                )
            raise ValueError(
                f"[ledger] keep is shorter than the schedule's longest interval "
                f"({interval:g}s): actions would be forgotten, and redone, by the next run"
            )
        self._keep_s = 2 * interval  # the default stretches to fit a slow schedule
        return self

    @property
    def keep_s(self) -> float:
        """How long ledger entries are kept: ``[ledger] keep``, stretched for a slow schedule."""
        return self._keep_s

    @property
    def grace_s(self) -> float:
        """The staleness grace: as set, else the timeout plus five minutes."""
        return self.grace if self.grace is not None else self.timeout + 300.0
