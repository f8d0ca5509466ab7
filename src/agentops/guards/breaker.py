"""The circuit breaker, kept in the state file so it holds across cron runs.

Closed: runs go ahead. When the same failure (same fingerprint) ends
``failures`` consecutive runs, it opens: runs are skipped until ``cooldown``
has passed. Then it is half-open: one trial run goes ahead; success closes
it, failure opens it again for another cooldown.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentops.guards.failure import Failure
    from agentops.model.state import Circuit
    from agentops.project.config import Circuit as CircuitConfig

__all__ = ["admit", "record_failure", "record_success", "reset"]


def admit(circuit: Circuit, now: datetime, config: CircuitConfig) -> float:
    """Seconds until a run may go ahead: 0 if it may now (half-open after a cooldown).

    An opening stamped in the future (the clock was stepped back) counts as
    now: the circuit stays open one cooldown from now, not until the clock
    catches up.
    """
    if circuit.state != "open":
        return 0.0
    if circuit.opened_at is not None and circuit.opened_at > now:
        circuit.opened_at = now
    if circuit.until is not None and circuit.opened_at is not None:
        circuit.until = min(circuit.until, circuit.opened_at + timedelta(seconds=config.cooldown))
    if circuit.until is not None and now < circuit.until:
        return (circuit.until - now).total_seconds()
    circuit.state = "half_open"
    return 0.0


def record_success(circuit: Circuit) -> None:
    """A run succeeded: close the circuit and forget the failures."""
    reset(circuit)


def record_failure(
    circuit: Circuit, failure: Failure, config: CircuitConfig, now: datetime
) -> bool:
    """A run failed with ``failure``; return True if that opened the circuit."""
    fingerprint = failure.fingerprint
    if circuit.fingerprint == fingerprint:
        circuit.failures += 1
    else:
        circuit.fingerprint, circuit.failures = fingerprint, 1
    circuit.reason = failure.message
    if circuit.state == "half_open" or circuit.failures >= config.failures:
        circuit.state = "open"
        circuit.opened_at = now
        circuit.until = now + timedelta(seconds=config.cooldown)
        return True
    return False


def reset(circuit: Circuit) -> None:
    """Close the circuit by hand (``agentops reset AGENT --circuit``) or after a success."""
    circuit.state = "closed"
    circuit.fingerprint = None
    circuit.failures = 0
    circuit.reason = None
    circuit.opened_at = None
    circuit.until = None
