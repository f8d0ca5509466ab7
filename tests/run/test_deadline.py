"""The hard deadline: its arithmetic, and the marker a run leaves for the next one to read.

The watchdog itself, ending real processes stuck in C code, is in tests/processes/test_deadline.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from agentops._infra.fs import FileSystem
from agentops.run.deadline import HardDeadline, hard_deadline_s, lease_ttl_s, read_marker

STARTED = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("timeout_s", "deadline_s", "ttl_s"),
    [(0.5, 5.5, 7.5), (1.0, 6.0, 8.0), (10.0, 31.0, 41.0), (600.0, 661.0, 691.0)],
)
def test_the_hard_deadline_is_the_timeout_plus_twice_the_grace_plus_a_second(
    timeout_s, deadline_s, ttl_s
):
    """Past the timeout a stop waits one grace, then the agent one more: then the watchdog."""
    assert hard_deadline_s(timeout_s) == deadline_s
    assert lease_ttl_s(timeout_s) == ttl_s


def test_a_marker_lives_while_the_run_does(tmp_path):
    """Entering writes the marker naming the run (owner only); leaving in time removes it."""
    path = tmp_path / "agent.deadline"
    with HardDeadline(FileSystem(), path, run_id="r-1", started=STARTED, seconds=3600):
        assert json.loads(path.read_text()) == {
            "run_id": "r-1",
            "started_at": "2026-11-22T12:00:00Z",
            "kind": "run",
        }
        assert path.stat().st_mode & 0o777 == 0o600
        assert read_marker(FileSystem(), path) == ("r-1", STARTED, False, "", "run")
    assert not path.exists()


def test_an_abandoned_run_says_so_in_its_marker(tmp_path):
    """abandoned() appends why: the marker then says the run was ended."""
    path = tmp_path / "agent.deadline"
    deadline = HardDeadline(FileSystem(), path, run_id="r-1", started=STARTED, seconds=3600)
    with deadline:
        deadline.abandoned("timeout")
        marker = read_marker(FileSystem(), path)
    assert marker is not None
    assert (marker.ended, marker.last_words) == (True, "abandoned: timeout")


def test_overdue_says_timeout_in_its_own_runs_marker_only(tmp_path):
    """The keeper's word: a Timeout line in this run's marker; never in another's, nor a new one."""
    path = tmp_path / "agent.deadline"
    deadline = HardDeadline(FileSystem(), path, run_id="r-1", started=STARTED, seconds=3600)
    with deadline:
        deadline.overdue()
        marker = read_marker(FileSystem(), path)
        assert marker is not None
        assert (marker.run_id, marker.ended) == ("r-1", True)
        assert marker.last_words.startswith("Timeout: ")
    deadline.overdue()
    assert not path.exists(), "ended in time: no marker made"
    with HardDeadline(FileSystem(), path, run_id="r-2", started=STARTED, seconds=3600):
        deadline.overdue()  # r-1's keeper, late: r-2's marker is not its own
        marker = read_marker(FileSystem(), path)
        assert marker is not None
        assert (marker.run_id, marker.ended) == ("r-2", False)


def test_a_marker_left_before_a_run_is_replaced(tmp_path):
    """A stale marker in the way (a run killed by hand) is replaced by the next run's own."""
    path = tmp_path / "agent.deadline"
    path.write_text('{"run_id": "old", "started_at": "2026-11-22T11:00:00Z"}\nstack\n')
    with HardDeadline(FileSystem(), path, run_id="new", started=STARTED, seconds=3600):
        marker = read_marker(FileSystem(), path)
        assert marker is not None
        assert (marker.run_id, marker.ended) == ("new", False)


@pytest.mark.parametrize(
    "content",
    [None, "", "not json\nstack\n", '{"run_id": "r"}\n', '{"run_id": "r", "started_at": 5}\n'],
    ids=["missing", "empty", "garbage", "no start", "bad start"],
)
def test_a_marker_that_says_nothing_usable_is_none(tmp_path, content):
    """A missing, empty or damaged marker is no marker: the dead run is recorded without it."""
    path = tmp_path / "agent.deadline"
    if content is not None:
        path.write_text(content)
    assert read_marker(FileSystem(), path) is None


def test_a_markers_last_words_are_bounded(tmp_path):
    """A huge stack is kept to its last 2,000 characters, where the innermost frames are not."""
    path = tmp_path / "agent.deadline"
    path.write_text('{"run_id": "r", "started_at": "2026-11-22T12:00:00Z"}\n' + "x" * 10_000)
    marker = read_marker(FileSystem(), path)
    assert marker is not None
    assert marker.ended
    assert len(marker.last_words) == 2000
