"""The kinds of value the configuration's keys hold, and the rules every section follows.

Shared by the sections of ``agent.toml`` and of ``agentops.toml``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, PlainValidator

from agentops.project.schedule import check_schedule

SECTION = ConfigDict(extra="forbid", frozen=True)
"""Every section's model configuration: unknown keys refused, frozen once read."""

Money = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Count = Annotated[int, Field(strict=True, ge=0)]
Fraction = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
Weight = Annotated[float, Field(strict=True, ge=0, le=1000, allow_inf_nan=False)]

Schedule = Annotated[str, PlainValidator(check_schedule)]
"""A five-field cron expression or an ``@daily``-style macro, checked with cronsim."""

GroupName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
"""A group of agents that share a concurrency limit (``[groups]`` in agentops.toml)."""

HttpUrl = Annotated[str, Field(pattern=r"^https?://[^\s/]+")]
"""An ``http://`` or ``https://`` URL naming a host."""
