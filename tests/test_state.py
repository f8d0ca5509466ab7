import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentops.errors import Overlap, StateError
from agentops.state import (
    MAX_ERRORS,
    AgentState,
    ErrorRecord,
    FileStateStore,
    LastRun,
    Metrics,
)

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(project):
    return FileStateStore(project.home / "state")


def full_state(name="pub"):
    """A state with every kind of field filled in."""
    state = AgentState(
        agent=name,
        last_run=LastRun(
            run_id="run-7",
            started_at=T0,
            finished_at=T0 + timedelta(seconds=3.25),
            status="failed",
            duration_s=3.25,
            error="feed timed out",
        ),
        last_success_at=T0 - timedelta(hours=1),
        metrics=Metrics(runs=7, succeeded=5, failed=1, rejected=1),
        rate_limits={"publish": [T0, T0 + timedelta(minutes=5)]},
        data={"seen": ["a", "b"], "cursor": 42, "nested": {"ok": True, "ratio": 0.5}},
    )
    state.record_error(ErrorRecord(at=T0, run_id="run-7", category="timeout", message="slow"))
    return state


# --- load and save ------------------------------------------------------------------------


def test_missing_file_loads_as_a_fresh_state(store, project):
    """An agent that never ran gets a fresh state, and loading creates no file."""
    assert store.load("pub") == AgentState(agent="pub")
    assert store.load("pub").metrics == Metrics()
    assert not project.state_path("pub").exists()


def test_save_then_load_round_trips(store):
    """Everything saved comes back identical."""
    state = full_state()
    store.save(state)
    assert store.load("pub") == state


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
COUNTS = st.integers(min_value=0)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.dictionaries(st.text(), JSON_VALUES, max_size=6),
    metrics=st.builds(
        Metrics, runs=COUNTS, succeeded=COUNTS, failed=COUNTS, rejected=COUNTS, skipped=COUNTS
    ),
)
def test_any_json_data_and_metrics_survive_save_and_load(store, data, metrics):
    """Arbitrary JSON in data, and any metrics, come back exactly as saved."""
    store.save(AgentState(agent="pub", data=data, metrics=metrics))
    loaded = store.load("pub")
    assert loaded.data == data
    assert loaded.metrics == metrics


def test_saved_file_is_indented_with_utc_z_timestamps(store, project):
    """The file is indented for people, and every timestamp is UTC ending in Z."""
    store.save(full_state())
    text = project.state_path("pub").read_text()
    assert text.startswith('{\n  "schema_version": 1,\n  "agent": "pub",')
    saved = json.loads(text)
    assert saved["last_run"]["started_at"] == "2026-11-22T12:00:00Z"
    assert saved["last_run"]["finished_at"] == "2026-11-22T12:00:03.250000Z"
    assert saved["rate_limits"]["publish"] == ["2026-11-22T12:00:00Z", "2026-11-22T12:05:00Z"]
    assert saved["errors"][0]["at"] == "2026-11-22T12:00:00Z"


def test_timestamps_in_another_zone_are_saved_as_utc(store, project):
    """A time given with another UTC offset is written as the same instant in UTC."""
    plus_two = timezone(timedelta(hours=2))
    store.save(AgentState(agent="pub", last_success_at=datetime(2026, 11, 22, 14, tzinfo=plus_two)))
    assert project.state("pub")["last_success_at"] == "2026-11-22T12:00:00Z"


def test_previous_version_is_kept_as_bak_and_no_tmp_is_left(store, project):
    """Saving keeps the previous file as <name>.json.bak and leaves no temporary file."""
    path = project.state_path("pub")
    store.save(AgentState(agent="pub", data={"version": 1}))
    assert sorted(p.name for p in path.parent.iterdir()) == ["pub.json"]
    first = path.read_bytes()
    store.save(AgentState(agent="pub", data={"version": 2}))
    assert path.with_name("pub.json.bak").read_bytes() == first
    assert json.loads(path.read_text())["data"] == {"version": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["pub.json", "pub.json.bak"]


GOOD = AgentState(agent="pub", data={"k": "v"}).model_dump_json(indent=2).encode()


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"\x00\xff\xfe\x89PNG garbage", "not JSON"),
        (b"", "not JSON"),
        (GOOD[: len(GOOD) // 2], "not JSON"),
        (b'{"agent": "pub", "metrics": {"runs": "many"}}', "metrics.runs"),
        (b'{"agent": "pub", "colour": "blue"}', "unknown key 'colour'"),
        (b'{"schema_version": 99, "agent": "pub"}', "upgrade agentops"),
        (b'{"schema_version": 99, "agent": "pub", "shiny": []}', "upgrade agentops"),
        (b'{"agent": "other"}', "'other'"),
        (b"[]", "object"),
    ],
    ids=[
        "garbage-bytes",
        "empty",
        "truncated",
        "wrong-type",
        "unknown-key",
        "future-schema",
        "future-schema-new-keys",
        "other-agent",
        "not-an-object",
    ],
)
def test_corrupt_file_raises_state_error_and_is_left_alone(store, project, content, why):
    """A bad state file stops the run with exit 74, one line naming it, and stays as it was."""
    path = project.state_path("pub")
    path.parent.mkdir()
    path.write_bytes(content)
    before = project.snapshot()
    with pytest.raises(StateError) as info:
        store.load("pub")
    error = info.value
    assert error.exit_code == 74
    assert str(path) in error.message
    assert why in error.message
    assert "\n" not in error.message
    assert project.snapshot() == before
    assert path.read_bytes() == content


def test_naive_and_offset_timestamps_in_a_hand_edited_file_are_read_as_utc(store, project):
    """A timestamp without a zone is UTC; one with an offset is converted to UTC."""
    path = project.state_path("pub")
    path.parent.mkdir()
    path.write_text(
        json.dumps(
            {
                "agent": "pub",
                "last_success_at": "2026-11-22T12:00:00",
                "rate_limits": {"publish": ["2026-11-22T14:00:00+02:00"]},
            }
        )
    )
    state = store.load("pub")
    assert state.last_success_at == T0
    assert state.last_success_at.utcoffset() == timedelta(0)
    assert state.rate_limits["publish"][0].utcoffset() == timedelta(0)
    assert state.rate_limits["publish"] == [T0]


def test_record_error_keeps_only_the_most_recent(store):
    """Only the MAX_ERRORS most recent errors are kept, oldest first, also once saved."""
    state = AgentState(agent="pub")
    for n in range(MAX_ERRORS + 5):
        state.record_error(
            ErrorRecord(at=T0, run_id=f"run-{n}", category="failed", message=f"error {n}")
        )
    expected = [f"run-{n}" for n in range(5, MAX_ERRORS + 5)]
    assert [error.run_id for error in state.errors] == expected
    store.save(state)
    assert [error.run_id for error in store.load("pub").errors] == expected


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_save_into_an_unwritable_directory_raises_and_keeps_the_old_file(store, project):
    """When the state directory cannot be written, save raises StateError, old file intact."""
    store.save(AgentState(agent="pub", data={"version": 1}))
    directory = project.state_path("pub").parent
    before = project.snapshot()
    directory.chmod(0o555)
    try:
        with pytest.raises(StateError) as info:
            store.save(AgentState(agent="pub", data={"version": 2}))
    finally:
        directory.chmod(0o755)
    assert info.value.exit_code == 74
    assert str(project.state_path("pub")) in info.value.message
    assert project.snapshot() == before
    assert store.load("pub").data == {"version": 1}


# --- the run lock -------------------------------------------------------------------------

HOLD_LOCK = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\\n".encode())
    print("locked", flush=True)
    time.sleep(600)
    """
)


@pytest.fixture
def hold_lock(store):
    """Start a process that takes state/<name>.lock with flock, writes its pid, and sleeps."""
    processes = []

    def start(name):
        store.directory.mkdir(parents=True, exist_ok=True)
        lock_path = store.directory / f"{name}.lock"
        process = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(lock_path)], stdout=subprocess.PIPE, text=True
        )
        processes.append(process)
        assert process.stdout.readline() == "locked\n"
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()


def test_second_lock_raises_overlap_naming_the_holder(store, hold_lock):
    """While another process holds an agent's lock, locking it raises Overlap with its pid."""
    holder = hold_lock("pub")
    with pytest.raises(Overlap) as info, store.lock("pub"):
        pytest.fail("the lock was taken twice")
    assert info.value.exit_code == 75
    assert f"pid {holder.pid}" in info.value.message


def test_lock_on_another_agent_succeeds(store, hold_lock):
    """One agent's lock does not block another agent."""
    hold_lock("pub")
    with store.lock("digest"):
        pass


def test_lock_in_the_same_process_is_exclusive_too(store):
    """Two locks of one agent in the same process conflict, naming this process."""
    with store.lock("pub"), pytest.raises(Overlap) as info, store.lock("pub"):
        pytest.fail("the lock was taken twice")
    assert f"pid {os.getpid()}" in info.value.message


def test_lock_is_released_after_the_with_block(store):
    """The lock is free again once the block ends, even when it raised."""
    with store.lock("pub"):
        pass
    with pytest.raises(RuntimeError), store.lock("pub"):
        raise RuntimeError
    with store.lock("pub"):
        pass


def test_lock_is_released_when_the_holder_is_killed(store, hold_lock):
    """A holder killed with SIGKILL leaves no stale lock."""
    holder = hold_lock("pub")
    with pytest.raises(Overlap), store.lock("pub"):
        pass
    holder.send_signal(signal.SIGKILL)
    assert holder.wait(timeout=30) == -signal.SIGKILL
    with store.lock("pub"):
        pass
