"""Deadline markers handed to a shared store: each ended run's, once, and only those.

In process, with a store that keeps markers (``memory://``, tests/memstore.py)
and the marker files runs leave in ``state/``, written here as the hard
deadline writes them: a first line naming the run, then, once the run was
ended, the stack it was stuck in. The guarantees with real processes (the
tick's parent, a run abandoning itself, PID 1 of a container) are in
tests/processes/test_deadline_markers.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from agentops.project.home import Project as AgentopsProject
from agentops.run.deadline import Marker
from agentops.run.markers import publish_ended
from agentops.store import STORE_URL_ENV
from memstore import registered
from storeprocess import open_at

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from memstore import MemoryBackend
    from suite import Project

STARTED = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
STACK = 'File "agent.py", line 9 in run'
URL = "memory://shared"


@pytest.fixture
def memory() -> Iterator[MemoryBackend]:
    """``memory://`` registered as a store backend for the test."""
    with registered() as backend:
        yield backend


def leave(project: Project, file: str, run_id: str, *, words: str = "") -> Path:
    """The marker ``state/<file>`` of run ``run_id``: ended if it has ``words`` after its line."""
    state = project.home / "state"
    state.mkdir(exist_ok=True)
    first = {"run_id": run_id, "started_at": STARTED.isoformat(), "kind": "run"}
    path = state / file
    path.write_text(json.dumps(first) + "\n" + (words + "\n" if words else ""))
    return path


def ended(run_id: str, words: str = STACK) -> Marker:
    return Marker(run_id, STARTED, ended=True, last_words=words)


@pytest.mark.usefixtures("memory")
def test_every_ended_run_in_state_is_published_once_and_only_those(project):
    """Two ended runs go to the store; a run still going and a dry run's marker do not."""
    a = leave(project, "a.deadline", "run-a", words=STACK)
    b = leave(project, "b.deadline", "run-b", words="abandoned: it ignored every stop")
    leave(project, "live.deadline", "run-live")
    leave(project, "a.dry-run.deadline", "run-dry", words=STACK)
    home = AgentopsProject(project.home)
    for _ in range(2):  # publishing again changes nothing
        assert publish_ended(home, environ={STORE_URL_ENV: URL}) == {"a": None, "b": None}
    store = open_at(URL)
    assert store.remains("a").markers == (ended("run-a"),)
    assert store.remains("b").markers == (ended("run-b", "abandoned: it ignored every stop"),)
    assert store.remains("live").markers == ()
    assert a.exists(), "without remove, a watcher may still read it"
    assert b.exists()


@pytest.mark.usefixtures("memory")
def test_with_remove_a_marker_the_store_keeps_leaves_state_and_the_others_stay(project):
    """Only the markers published are removed; only the names asked about are looked at."""
    a = leave(project, "a.deadline", "run-a", words=STACK)
    b = leave(project, "b.deadline", "run-b", words=STACK)
    live = leave(project, "live.deadline", "run-live")
    home = AgentopsProject(project.home)
    assert publish_ended(home, ["a", "live"], environ={STORE_URL_ENV: URL}, remove=True) == {
        "a": None
    }
    assert not a.exists()
    assert b.exists(), "not asked about"
    assert live.exists(), "its run is not over"
    assert open_at(URL).remains("b").markers == ()


def test_no_ended_run_opens_no_store(project, memory):
    """Nothing to publish: the store is never opened (a failing one says nothing either)."""
    leave(project, "live.deadline", "run-live")
    home = AgentopsProject(project.home)
    assert publish_ended(home, environ={STORE_URL_ENV: URL}) == {}
    assert memory.places == {}
    assert publish_ended(home, environ={STORE_URL_ENV: "nosuch://db"}) == {}


def test_a_store_that_cannot_be_opened_names_each_ended_run_and_keeps_its_file(project):
    """One line per run, saying it is recorded only on this host; the local marker stays."""
    a = leave(project, "a.deadline", "run-a", words=STACK)
    home = AgentopsProject(project.home)
    problems = publish_ended(home, environ={STORE_URL_ENV: "nosuch://db"}, remove=True)
    assert list(problems) == ["a"]
    line = problems["a"]
    assert line is not None
    assert line.startswith("a: run run-a was ended by its deadline, but the store could not ")
    assert line.endswith("; only a run on this host will record it")
    assert "\n" not in line
    assert a.exists()


def test_the_file_store_keeps_no_copy_and_its_marker_stays(project):
    """Without a shared store the local file is the marker: it is not removed, nothing is wrong."""
    a = leave(project, "a.deadline", "run-a", words=STACK)
    assert publish_ended(AgentopsProject(project.home), environ={}, remove=True) == {"a": None}
    assert a.exists()
