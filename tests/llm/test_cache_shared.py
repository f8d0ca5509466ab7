"""The LLM reply cache in the PostgreSQL store: a reply paid for on one home serves every home."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pytest

from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import run_agent
from agentops.store import STORE_URL_ENV
from agentops.store.postgres import PostgresStore
from fakellm import FakeLLM, reply
from llm.test_llm import Waits, result_of, writer
from suite import Project

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def server() -> Iterator[FakeLLM]:
    """The models' fake server, on loopback."""
    with FakeLLM() as fake:
        yield fake


@pytest.fixture
def store(postgres) -> Iterator[PostgresStore]:
    """A fresh database whose tables ``agentops store init`` made."""
    found = PostgresStore(postgres.database())
    yield found
    found.close()


def test_the_stores_cache_keeps_a_reply_for_its_ttl_and_its_bound(store):
    """As the file cache: found until the TTL, the oldest pushed out past the bound, per agent."""
    cache = store.reply_cache("a", ttl_s=60, max_entries=2)
    cache.put("k", {"text": "hi", "cost_usd": 0.5}, 1000.0)
    assert cache.get("k", 1059.0) == {"text": "hi", "cost_usd": 0.5}
    assert cache.get("k", 1060.0) is None
    assert store.reply_cache("b", ttl_s=60, max_entries=2).get("k", 1000.0) is None
    for number, key in enumerate("abc"):
        cache.put(key, {"text": key}, 1001.0 + number)
    assert [cache.get(key, 1004.0) is not None for key in "kabc"] == [False, False, True, True]
    cache.put("c", {"text": "again"}, 1005.0)
    assert cache.get("c", 1005.0) == {"text": "again"}
    assert (cache.reset_because, cache.unavailable) == (None, None)


def test_a_cache_whose_store_fails_is_done_without(store):
    """A store that cannot answer makes the cache unavailable for the run, never an error."""
    cache = store.reply_cache("a", ttl_s=60, max_entries=2)
    store.execute("DROP TABLE {s}.reply")
    assert cache.get("k", 1000.0) is None
    assert cache.unavailable is not None
    assert "reply" in cache.unavailable
    cache.put("k", {"text": "hi"}, 1000.0)  # not even tried


def test_a_reply_cached_on_one_home_is_reused_on_another(tmp_path, project, clock, server, store):
    """Home A pays for the reply; home B (another host or pod) is served from the store."""
    writer(project, server, llm='cache = "1h"')
    server.default = reply("cached answer", usage=(40, 20))
    other = Project(tmp_path / "host-b")
    shutil.copytree(project.home / "agents", other.home / "agents")
    shutil.copy(project.home / "agentops.toml", other.home / "agentops.toml")
    environ = {STORE_URL_ENV: store.url}
    for home in (project, other):
        outcome = run_agent(
            AgentopsProject(home.home), "writer", environ=environ, clock=clock, sleep=Waits(clock)
        )
        assert outcome.exit_code == 0, outcome.message
    assert len(server.requests) == 1
    assert result_of(other)["cached"] == [True]
    assert result_of(other)["texts"] == ["cached answer"]
    for home in (project, other):
        assert not list((home.home / "state").glob("*.llm-cache.sqlite*"))
