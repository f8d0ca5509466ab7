"""What a caller may vary about a run, and the run id each invocation gets."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from agentops._infra.clock import utcnow
from agentops.run.options import RunOptions, new_run_id

T0 = datetime(2026, 11, 22, 3, 10, tzinfo=UTC)


def test_a_run_id_says_when_it_started_and_sorts_by_time():
    """YYYYmmddTHHMMSSZ and six hex digits: ids sort as the runs started."""
    first = new_run_id(T0)
    assert re.fullmatch(r"20261122T031000Z-[0-9a-f]{6}", first)
    later = new_run_id(T0 + timedelta(seconds=1))
    assert sorted([later, first]) == [first, later]


def test_run_ids_of_the_same_second_differ():
    """Runs started in the same second (racing cron ticks) get different ids."""
    assert len({new_run_id(T0) for _ in range(200)}) > 190


def test_by_default_a_run_is_real_and_uses_the_real_clock():
    """No dry run, the real clock and sleep, the process's environment, nothing faked."""
    options = RunOptions()
    assert (options.dry_run, options.scheduled, options.exit_on_abandon) == (False, False, False)
    assert options.clock is utcnow
    assert options.sleep is time.sleep
    assert options.environ is None  # os.environ, as the CLI passes it
    assert (options.http_transport, options.fs, options.store, options.console) == (
        None,
        None,
        None,
        None,
    )


def test_options_are_values():
    """A test changes one field and keeps the rest: RunOptions is a NamedTuple."""
    dry = RunOptions()._replace(dry_run=True)
    assert dry.dry_run
    assert dry._replace(dry_run=False) == RunOptions()
