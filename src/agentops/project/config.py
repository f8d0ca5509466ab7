"""Configuration: ``agents/<name>/agent.toml`` and the project's ``agentops.toml``.

Both are pydantic models that forbid unknown keys, so a typo is an error that
names the key instead of a setting silently ignored. Numbers are strict: a
boolean is never a number. Durations and rates are written as
:mod:`agentops.project.units` describes.

``agentops.toml`` is optional. Its ``[defaults]`` apply to every agent unless
the agent's own ``agent.toml`` says otherwise, key by key
(:func:`merge_defaults`); its ``[providers]`` and ``[models]`` are shared by
every agent's ``[llm]``.

The sections of ``agent.toml`` are defined in :mod:`agentops.project._agentconfig`,
those of ``agentops.toml`` in :mod:`agentops.project._projectconfig`, the
kinds of value they share in :mod:`agentops.project._values`; this module is
where the rest of agentops imports them from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentops.project._agentconfig import (
    DEFAULT_KEEP_S,
    DEFAULT_TIMEOUT_S,
    AgentConfig,
    AgentNotify,
    CircuitConfig,
    Guard,
    LedgerConfig,
    Limits,
    Llm,
    MemoryConfig,
    Permissions,
    Retry,
)
from agentops.project._projectconfig import (
    NOTIFY_KINDS,
    Defaults,
    Files,
    Logs,
    ModelSpec,
    Notify,
    ProjectConfig,
    Provider,
    StoreConfig,
    TickConfig,
)
from agentops.project._values import error_line

if TYPE_CHECKING:
    from pydantic import ValidationError

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
    problems = [error_line(error) for error in exc.errors(include_url=False)]
    more = len(problems) - MAX_PROBLEMS
    return "; ".join(problems[:MAX_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
