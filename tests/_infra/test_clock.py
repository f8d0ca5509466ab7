"""The default clock: aware, in UTC, and the real time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agentops._infra.clock import utcnow


def test_utcnow_is_aware_utc_and_now():
    """Never naive: every timestamp agentops compares or writes has a zone, UTC."""
    before = datetime.now(UTC)
    now = utcnow()
    after = datetime.now(UTC)
    assert now.tzinfo is UTC
    assert before <= now <= after + timedelta(microseconds=1)
