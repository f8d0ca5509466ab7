"""Every guard policy, registered in the order they check, and the entry points the run calls.

A new guard is a :class:`~agentops.guards.base.Policy` subclass in a module
of its own, added to :data:`POLICIES`: the run's pipeline calls it through
:func:`admit` (gate 2), :func:`prune` (as the state is committed) and
:func:`reset` (an operator's reset), and each run's
:class:`~agentops.guards.facade.RunGuards` through its hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentops.guards.breaker import BreakerPolicy
from agentops.guards.costs import CostPolicy
from agentops.guards.permissions import PermissionPolicy
from agentops.guards.rates import RatePolicy
from agentops.guards.steps import StepPolicy

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime

    from agentops._infra.log import EventLogger
    from agentops.guards.base import Policy
    from agentops.model.state import AgentState
    from agentops.project.config import AgentConfig

__all__ = ["POLICIES", "admit", "prune", "reset"]

POLICIES: tuple[type[Policy], ...] = (
    PermissionPolicy,
    BreakerPolicy,
    CostPolicy,
    RatePolicy,
    StepPolicy,
)
"""Every guard policy, in the order its hooks are called.

The permissions come first: refusing costs nothing, and a refused request
takes no slot of the request rate. Gate 2 then asks the breaker, the cost
windows and the run rate, in that order: the run rate counts the run only
once the others have admitted it.
"""


def admit(config: AgentConfig, state: AgentState, now: datetime) -> None:
    """Gate 2: raise a :class:`~agentops.errors.RateLimited` if a policy refuses a run at ``now``.

    The breaker first (:class:`~agentops.errors.CircuitOpen`), then the cost
    windows (:class:`~agentops.errors.BudgetExhausted`), then the run rate
    (:class:`~agentops.errors.RateLimited`, and the run is counted).
    """
    for policy in POLICIES:
        policy.admit_run(config, state, now)


def prune(config: AgentConfig, state: AgentState, now: datetime) -> None:
    """Keep every policy's share of ``state`` to what it still reads: it is being committed."""
    for policy in POLICIES:
        policy.prune_state(config, state, now)


def reset(state: AgentState, names: Collection[str], log: EventLogger) -> list[str]:
    """Reset the policies ``names`` (``circuit``, ``budget``, ``limits``...); say what was done.

    They are reset in the order of :data:`POLICIES`, whatever the order of ``names``.
    """
    unknown = set(names) - {policy.name for policy in POLICIES}
    if unknown:
        raise ValueError(f"no guard policy named {', '.join(sorted(unknown))}")
    done = (policy.reset_state(state, log) for policy in POLICIES if policy.name in names)
    return [what for what in done if what is not None]
