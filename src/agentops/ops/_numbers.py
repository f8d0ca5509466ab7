"""Numbers read from a log line, checked before anything counts or draws them.

A log is untrusted (an agent logs what it likes, a person edits by hand):
a duration, a cost or a token count that is not a finite number within
what agentops could have written makes its line :class:`Unreadable`, as a
line that is not JSON is. ``10**400``, NaN, ``-1``, ``"5"`` and ``true``
are not numbers a sum or a chart can take; ``5e-324`` is.
"""

from __future__ import annotations

from typing import Any

from agentops.model.money import MAX_TOKENS, MAX_USD
from agentops.project.units import MAX_DURATION_S

__all__ = [
    "MAX_DURATION_S",
    "Unreadable",
    "amounts_of",
    "bounded",
    "confidence_of",
    "id_of",
    "run_of",
]


class Unreadable(Exception):
    """A line that cannot be counted: a number (or its run id) is not what agentops writes."""


def bounded(value: object, high: float) -> float | None:
    """A number read from a line: None if absent, else finite and from 0 to ``high``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unreadable
    if not 0 <= value <= high:  # NaN fails this too; a huge int is compared exactly
        raise Unreadable
    return float(value)


def confidence_of(result: object) -> float | None:
    """A result's confidence, if it carries a number from 0 to 1 (the agent's field otherwise)."""
    value = result.get("confidence") if isinstance(result, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value <= 1 else None


def amounts_of(event: dict[str, Any]) -> tuple[float, int]:
    """The USD and tokens of a cost line (0 where not said); :class:`Unreadable` if implausible."""
    usd = bounded(event.get("usd"), MAX_USD) or 0.0
    tokens = bounded(event.get("tokens"), MAX_TOKENS) or 0.0
    return usd, int(tokens)


def run_of(value: object) -> str:
    """A run id: text, else :class:`Unreadable`."""
    if not isinstance(value, str):
        raise Unreadable
    return value


def id_of(event: dict[str, Any]) -> str:
    """The ``id`` of a line (a reservation's), or ``?`` if it has none that is text."""
    reservation = event.get("id")
    return reservation if isinstance(reservation, str) else "?"
