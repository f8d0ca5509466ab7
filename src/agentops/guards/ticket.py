"""An action's ticket: what ``do(ticket)`` hands an external system so it can refuse a repeat.

agentops journals an intent before ``do()`` and never runs a committed
action again, but between the intent and the commit only the outside world
knows whether the effect happened: a host frozen inside ``do()`` (a stopped
VM, a long GC pause) may wake after another host took the agent over and
finish its effect late. The lease fences the journal and the state, not an
HTTP call already under way. The ticket carries the two things an external
system needs to close that gap:

- ``idempotency_key``: the same for every attempt at one action, whatever
  run, retry or host makes it, and different for every other action: a
  service that keeps the first result per key (an ``Idempotency-Key``
  header) applies the effect once;
- ``fencing_token``: the lease's token, larger for each new holder of the
  agent's lease: a service that remembers the largest it saw can refuse a
  write from an older holder (a conditional update).
"""

from __future__ import annotations

import hashlib
import inspect
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Ticket", "idempotency_key", "takes_ticket"]


class Ticket(NamedTuple):
    """The ticket of one attempt at an action, handed to ``do(ticket)``."""

    idempotency_key: str
    """``agentops-`` and 64 hex digits: unique to the agent, the action and its key."""
    fencing_token: int
    """The lease's fencing token: it grows with every new lease of the agent."""


def idempotency_key(agent: str, action: str, key: str) -> str:
    """The key of action ``(action, key)`` of ``agent``, as its ledger names it.

    A digest, so that it is short, made of characters every header accepts,
    and says nothing of the key itself (which may hold a secret's digest).
    """
    digest = hashlib.sha256(f"{agent}\x00{action}\x00{key}".encode()).hexdigest()
    return f"agentops-{digest}"


def takes_ticket(do: Callable[..., Any]) -> bool:
    """Whether ``do`` must be called with the ticket: it has a positional parameter to fill.

    ``do()`` with no parameter (or only optional ones) is called as before.
    """
    try:
        parameters = inspect.signature(do).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: called without
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(p.kind in positional and p.default is inspect.Parameter.empty for p in parameters)
