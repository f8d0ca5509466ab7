"""Configuration: ``agents/<name>/agent.toml`` and the project's ``agentops.toml``.

Both are pydantic models that forbid unknown keys, so a typo is an error that
names the key instead of a setting silently ignored. Numbers are strict: a
boolean is never a number. Durations and rates are written as
:mod:`agentops.project.units` describes.

``agentops.toml`` is optional. Its ``[defaults]`` apply to every agent unless
the agent's own ``agent.toml`` says otherwise, key by key
(:func:`merge_defaults`); its ``[providers]`` and ``[models]`` are shared by
every agent's ``[llm]``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from agentops.project.schedule import check_schedule, longest_interval_s
from agentops.project.units import (
    Duration,
    PositiveDuration,
    RateSpec,
    parse_positive_duration,
    parse_size,
)

__all__ = [
    "DEFAULT_KEEP_S",
    "DEFAULT_TIMEOUT_S",
    "NOTIFY_KINDS",
    "AgentConfig",
    "AgentNotify",
    "CircuitConfig",
    "Defaults",
    "Files",
    "Guard",
    "LedgerConfig",
    "Limits",
    "Llm",
    "Logs",
    "MemoryConfig",
    "ModelSpec",
    "Notify",
    "Permissions",
    "ProjectConfig",
    "Provider",
    "Retry",
    "StoreConfig",
    "TickConfig",
    "describe_validation_error",
    "merge_defaults",
]

DEFAULT_TIMEOUT_S = 600.0
"""A run that has not finished after ten minutes is stopped, unless ``timeout`` says otherwise."""

DEFAULT_KEEP_S = 30 * 86400.0
"""How long guarded actions are remembered unless ``[ledger] keep`` says otherwise."""

Money = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Count = Annotated[int, Field(strict=True, ge=0)]
Fraction = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
Weight = Annotated[float, Field(strict=True, ge=0, le=1000, allow_inf_nan=False)]

Schedule = Annotated[str, PlainValidator(check_schedule)]
"""A five-field cron expression or an ``@daily``-style macro, checked with cronsim."""

GroupName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
"""A group of agents that share a concurrency limit (``[groups]`` in agentops.toml)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    log_bodies: bool = False

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


HttpUrl = Annotated[str, Field(pattern=r"^https?://[^\s/]+")]


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
    catch_up: bool = False
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


class Defaults(_Section):
    """``[defaults]`` in agentops.toml: for every agent, unless its agent.toml says otherwise."""

    timeout: PositiveDuration | None = None
    grace: PositiveDuration | None = None
    limits: Limits | None = None
    retry: Retry | None = None
    circuit: CircuitConfig | None = None
    ledger: LedgerConfig | None = None
    guard: Guard | None = None
    permissions: Permissions | None = None
    llm: Llm | None = None
    memory: MemoryConfig | None = None


NotifyKind = Literal["failure", "circuit_open", "escalated", "stale", "budget", "slow", "recovered"]

NOTIFY_KINDS: tuple[NotifyKind, ...] = (
    "failure",
    "circuit_open",
    "escalated",
    "stale",
    "budget",
    "slow",
    "recovered",
)
"""What a notification can be about."""


class Notify(_Section):
    """``[notify]``: webhooks told when an agent needs a human, and when it recovers."""

    webhooks: list[HttpUrl] = []
    on: list[NotifyKind] = list(NOTIFY_KINDS)
    cooldown: PositiveDuration = 3600.0
    manual_runs: bool = True
    """Whether runs started by hand (without ``--scheduled``) notify: alerts and pings."""


class Logs(_Section):
    """``[logs]``: when a log file is rotated (``max_size``), and how many old ones stay."""

    max_size: Annotated[int, PlainValidator(parse_size)] = 10 * 1024 * 1024
    keep: Annotated[int, Field(strict=True, ge=0, le=1000)] = 5


MAX_STORE_WAIT_S = 86400.0
"""The longest a ``[store]`` wait may be set to: PostgreSQL counts them in 32-bit milliseconds."""


def _store_wait(value: object) -> float:
    seconds = parse_positive_duration(value)
    if seconds > MAX_STORE_WAIT_S:
        raise ValueError(f"a wait on the store can be at most a day, got {value!r}")
    return seconds


StoreWait = Annotated[float, PlainValidator(_store_wait)]
"""How long agentops waits on the database for one thing: more than zero, at most a day."""


class StoreConfig(_Section):
    """``[store]``: where agents' state lives; files in ``state/`` unless a URL is given.

    The waits bound every connection to a PostgreSQL store, so that a
    database that stalls, a lock held by a session that froze or a network
    that stopped answering ends a command with one line instead of hanging it.
    """

    url: (
        Annotated[str, Field(pattern=r"^(postgres(ql)?://|\s*[A-Za-z_][A-Za-z0-9_]*\s*=)")] | None
    ) = None
    """A ``postgresql://`` URL, or a libpq keyword string (``host=db dbname=agents``)."""
    schema_name: Annotated[str, Field(alias="schema", pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = (
        "agentops"
    )
    """The PostgreSQL schema the tables live in: projects sharing a database each need one."""
    connect_timeout: StoreWait = 10.0
    """How long a connection may take to open (libpq's ``connect_timeout``, whole seconds)."""
    statement_timeout: StoreWait = 30.0
    """How long one statement may run; agentops stops waiting for an answer a little later."""
    lock_timeout: StoreWait = 10.0
    """How long a statement may wait for a lock (a lease row, the migration lock)."""
    idle_in_transaction_timeout: StoreWait = 30.0
    """How long a session of agentops may idle inside a transaction before the server ends it."""
    keepalives_idle: StoreWait = 30.0
    """TCP keepalives: the silence on a connection before the first probe."""
    keepalives_interval: StoreWait = 10.0
    """TCP keepalives: the time between probes."""
    keepalives_count: Annotated[int, Field(strict=True, ge=1, le=100)] = 3
    """TCP keepalives: the probes unanswered before the connection is given up as dead."""


UserName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")]


class Files(_Section):
    """``[files]``: who may read what agentops writes, and who besides the home's owner writes.

    ``mode = "group"`` makes the files and directories agentops writes
    group-readable (for a second operator or a log shipper); ``"owner"``
    (the default) keeps them to the home's owner. ``allow_users`` names the
    users besides the home's owner that may run agents and change their
    state here; everyone else is refused, so a run as root cannot leave files
    the owner's runs cannot write. What an allowed root run creates is handed
    to the home's owner.
    """

    mode: Literal["owner", "group"] = "owner"
    allow_users: list[UserName] = []


class TickConfig(_Section):
    """``[tick]``: how ``agentops tick`` runs the agents due on this host."""

    parallel: Annotated[int, Field(strict=True, ge=1, le=256)] = 4
    """How many agents one tick runs at once on this host."""


class Provider(_Section):
    """``[providers.NAME]``: an endpoint serving models, and the API it speaks."""

    base_url: HttpUrl
    api_key_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    """The environment variable holding the key (never agentops.toml: the environment or an env
    file); none: no key."""
    kind: str = "openai"
    """Its wire format: ``openai`` (``/chat/completions``, the default) or ``anthropic``
    (the Messages API). Whether agentops knows the kind is checked with the models
    (``agentops check``, and before a run)."""


class ModelSpec(_Section):
    """``[models."NAME"]``: a model of a provider, its prices, its window, and how it is asked."""

    provider: str
    name: str
    input_usd_per_mtok: Money | None = None
    output_usd_per_mtok: Money | None = None
    cache_read_usd_per_mtok: Money | None = None
    """Prompt tokens read from the provider's cache; unset: priced as input (a bound)."""
    cache_write_usd_per_mtok: Money | None = None
    """Prompt tokens written to the provider's cache; unset: 1.25 times input, what
    Anthropic charges for its five-minute cache."""
    context_window: Annotated[int, Field(strict=True, ge=256)] | None = None
    token_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"  # noqa: S105
    """The parameter carrying the output limit (OpenAI's reasoning models take only
    ``max_completion_tokens``); Anthropic's API always takes ``max_tokens``."""
    structured: Literal["json_schema", "json_object", "prompt"] | None = None
    """How a schema is asked for: the schema itself, a JSON mode, or in words alone.
    Unset: ``json_schema``, or ``prompt`` where ``json_mode = false``."""
    json_mode: bool = True
    """The older spelling: false is ``structured = "prompt"``."""
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = (
        None
    )
    """How hard a reasoning model thinks (OpenAI's ``reasoning_effort``, Anthropic's
    ``effort``); unset: the provider's default."""

    @model_validator(mode="after")
    def _one_structured(self) -> ModelSpec:
        if not self.json_mode and self.structured not in (None, "prompt"):
            raise ValueError(
                f"json_mode = false and structured = {self.structured!r} disagree: "
                "keep structured alone"
            )
        return self

    @property
    def priced(self) -> bool:
        """Whether both prices are known, so a call's cost can be computed."""
        return self.input_usd_per_mtok is not None and self.output_usd_per_mtok is not None

    @property
    def structured_output(self) -> Literal["json_schema", "json_object", "prompt"]:
        """How a schema is asked for, ``json_mode`` taken into account."""
        if self.structured is not None:
            return self.structured
        return "json_schema" if self.json_mode else "prompt"


class ProjectConfig(_Section):
    """``agentops.toml`` at the home: defaults, notifications, logs, files, store, LLM providers."""

    defaults: Defaults = Defaults()
    notify: Notify = Notify()
    logs: Logs = Logs()
    files: Files = Files()
    store: StoreConfig = StoreConfig()
    tick: TickConfig = TickConfig()
    groups: dict[GroupName, Annotated[int, Field(strict=True, ge=1, le=10_000)]] = {}
    """Each group's limit: how many of its agents run at once, across every host of the store."""
    providers: dict[str, Provider] = {}
    models: dict[str, ModelSpec] = {}

    @model_validator(mode="after")
    def _models_name_providers(self) -> ProjectConfig:
        for name, model in self.models.items():
            if model.provider not in self.providers:
                raise ValueError(f"model {name!r} names unknown provider {model.provider!r}")
        return self


def merge_defaults(defaults: Defaults, agent: dict[str, Any]) -> dict[str, Any]:
    """``agent`` (agent.toml as read) over ``defaults``, key by key, section by section."""
    return _merged(defaults.model_dump(mode="json", exclude_unset=True), agent)


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


MAX_PROBLEMS = 5
"""How many problems one error line names; the rest are counted."""


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming the bad keys (the first few), for a config or state file error."""
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown key '{where}'")
        else:
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
    more = len(problems) - MAX_PROBLEMS
    return "; ".join(problems[:MAX_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
