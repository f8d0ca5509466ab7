"""The default clock. Time is always a parameter, so tests can drive it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "utcnow"]

Clock = Callable[[], datetime]
"""Returns the current time, aware and in UTC."""


def utcnow() -> datetime:
    """The current time, aware and in UTC."""
    return datetime.now(UTC)
