"""The circuit breaker, kept in the state file so it holds across cron runs.

Closed: runs go ahead. When the same failure (same fingerprint) ends
``failures`` consecutive runs, it opens: runs are skipped until ``cooldown``
has passed. Then it is half-open: one trial run goes ahead; success closes
it, failure opens it again for another cooldown.

Configuration: ``[circuit]``. State: ``circuit``. Before a run:
:class:`BreakerPolicy` refuses it while the circuit is open. At a run's end:
:func:`record_end` (a live run and a dead one alike), and :func:`opened`,
the loud line of the run that opened it. By hand: ``agentops reset AGENT
--circuit``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from agentops._infra.timestamps import iso_second
from agentops.errors import CircuitOpen
from agentops.guards.base import Policy

if TYPE_CHECKING:
    from agentops._infra.log import EventLogger
    from agentops.guards.failure import Failure
    from agentops.model.outcome import CircuitChange
    from agentops.model.state import AgentState, Circuit
    from agentops.model.status import RunStatus
    from agentops.project.config import AgentConfig, CircuitConfig

__all__ = [
    "BreakerPolicy",
    "admit",
    "opened",
    "opened_line",
    "record_end",
    "record_failure",
    "record_success",
    "reset",
]


class BreakerPolicy(Policy):
    """The circuit breaker as a guard: no run while the circuit is open."""

    name = "circuit"

    @staticmethod
    def admit_run(config: AgentConfig, state: AgentState, now: datetime) -> None:
        """Refuse the run (:class:`~agentops.errors.CircuitOpen`) until the cooldown has passed."""
        circuit = state.circuit
        wait = admit(circuit, now, config.circuit)
        if wait > 0:
            raise CircuitOpen(
                f"{state.agent}: circuit open after {circuit.failures} identical failures "
                f"({circuit.reason}); next try in {wait:.0f}s",
                agent=state.agent,
                retry_after_s=wait,
            )

    @staticmethod
    def reset_state(state: AgentState, log: EventLogger) -> str:
        """Close the circuit by hand: the next run goes ahead."""
        was = state.circuit.state
        reset(state.circuit)
        log.info("circuit.reset", was=was)
        return f"circuit closed (it was {was.replace('_', '-')})"


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


def record_end(
    circuit: Circuit,
    config: CircuitConfig,
    *,
    status: RunStatus,
    failure: Failure | None,
    at: datetime,
) -> CircuitChange | None:
    """A run that executed ended with ``status`` at ``at``; return what that did to the circuit.

    A success closes it; a failure of a kind that trips the breaker counts
    towards opening it (``failure`` is what is compared); any other end
    leaves it as it is.
    """
    if status.ok:
        was_closed = circuit.state == "closed"
        record_success(circuit)
        return None if was_closed else "closed"
    if status.trips_breaker and failure is not None:
        return "opened" if record_failure(circuit, failure, config, at) else None
    return None


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


def opened(state: AgentState, message: str, log: EventLogger) -> str:
    """Log that the circuit opened (``circuit.opened``); return the loud line that says so."""
    log.error(
        "circuit.opened",
        fingerprint=state.circuit.fingerprint,
        failures=state.circuit.failures,
        until=state.circuit.until,
    )
    return opened_line(state, message)


def opened_line(state: AgentState, message: str) -> str:
    """The loud line of the run that opened the circuit (the skips that follow are quiet)."""
    agent = state.agent
    until = iso_second(state.circuit.until) if state.circuit.until else "?"
    return (
        f"{agent}: CIRCUIT OPEN after {state.circuit.failures} identical failures, runs skipped "
        f"until {until} (agentops reset {agent} --circuit to close): {message}"
    )
