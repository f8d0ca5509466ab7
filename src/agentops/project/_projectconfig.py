"""``agentops.toml``: the project's configuration, section by section (all optional)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, PlainValidator, StrictBool, model_validator

from agentops.project._agentconfig import (  # noqa: TC001 - pydantic reads the annotations
    CircuitConfig,
    Guard,
    LedgerConfig,
    Limits,
    Llm,
    MemoryConfig,
    Permissions,
    Retry,
)
from agentops.project._values import SECTION, GroupName, HttpUrl, Money, matching
from agentops.project.units import PositiveDuration, parse_positive_duration, parse_size


class _Section(BaseModel):
    # Defined here, not imported: tools see at once that the sections are pydantic models.
    model_config = SECTION


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
    manual_runs: StrictBool = True
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
        Annotated[
            str,
            matching(
                r"^(postgres(ql)?://|\s*[A-Za-z_][A-Za-z0-9_]*\s*=)",
                "a postgresql:// URL or a libpq keyword string (host=... dbname=...)",
            ),
        ]
        | None
    ) = None
    """A ``postgresql://`` URL, or a libpq keyword string (``host=db dbname=agents``)."""
    schema_name: Annotated[
        str,
        matching(
            r"^[a-z_][a-z0-9_]{0,62}$",
            "lower-case letters, digits and _ (at most 63), not starting with a digit",
            alias="schema",
        ),
    ] = "agentops"
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


UserName = Annotated[
    str,
    matching(
        r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$",
        "a user or group name: letters, digits, _ . and - (at most 64), not starting with . or -",
    ),
]


class Files(_Section):
    """``[files]``: who may read what agentops writes, and who besides the home's owner writes.

    ``mode = "group"`` makes the files and directories agentops writes
    group-readable (for a second operator or a log shipper); ``"owner"``
    (the default) keeps them to the home's owner. ``allow_users`` names the
    users besides the home's owner that may run agents and change their
    state here, by name or (a uid with no name) by number; everyone else is
    refused, but in a home root owns, so a run as root cannot leave files the
    owner's runs cannot write. What an allowed root run creates is handed
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
    api_key_env: (
        Annotated[
            str,
            matching(
                r"^[A-Za-z_][A-Za-z0-9_]*$",
                "an environment variable's name: letters, digits and _, not starting with a digit",
            ),
        ]
        | None
    ) = None
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
    json_mode: StrictBool = True
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
