"""The reply cache: a reply kept for its TTL and its bound, owner-only, never through a link."""

from __future__ import annotations

import stat

import pytest

from agentops._infra.fs import FileSystem
from agentops.llm.cache import ReplyCache, request_key


def cache_at(tmp_path, *, ttl_s: float = 3600.0, entries: int = 100) -> ReplyCache:
    return ReplyCache(
        FileSystem(), tmp_path / "a.llm-cache.sqlite", ttl_s=ttl_s, max_entries=entries
    )


def test_the_cache_keeps_a_reply_for_its_ttl(tmp_path):
    """A reply is found until its TTL has passed, and across reopening."""
    cache = cache_at(tmp_path, ttl_s=60)
    cache.put("k", {"text": "hi", "tokens_in": 1, "tokens_out": 1, "cost_usd": 0.5}, 1000.0)
    assert cache.get("k", 1059.0) == {
        "text": "hi",
        "tokens_in": 1,
        "tokens_out": 1,
        "cost_usd": 0.5,
    }
    cache.close()
    reopened = cache_at(tmp_path, ttl_s=60)
    assert reopened.get("k", 1059.9) is not None
    assert reopened.get("k", 1060.0) is None
    assert reopened.get("other", 1000.0) is None
    reopened.close()


def test_the_cache_keeps_at_most_its_bound_the_oldest_going_first(tmp_path):
    """cache_entries = 2: the third reply pushes out the first."""
    cache = cache_at(tmp_path, entries=2)
    for number, key in enumerate("abc"):
        cache.put(key, {"text": key}, 1000.0 + number)
    assert [cache.get(key, 1003.0) is not None for key in "abc"] == [False, True, True]
    cache.close()


def test_the_bound_keeps_the_newest_even_when_stored_in_the_same_instant(tmp_path):
    """A clock that did not move (a coarse or fake one): the reply just stored stays."""
    cache = cache_at(tmp_path, entries=2)
    for key in "abcd":
        cache.put(key, {"text": key}, 1000.0)
        assert cache.get(key, 1000.0) == {"text": key}
    assert [cache.get(key, 1000.0) is not None for key in "abcd"] == [False, False, True, True]
    cache.close()


def test_an_unreadable_cache_is_started_afresh_and_says_why(tmp_path):
    """A file that is not a database: replaced by an empty one, the reason kept for the log."""
    path = tmp_path / "a.llm-cache.sqlite"
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 100)
    cache = cache_at(tmp_path)
    assert cache.get("k", 1000.0) is None
    assert cache.reset_because is not None
    assert "DatabaseError" in cache.reset_because
    cache.put("k", {"text": "fresh"}, 1000.0)
    assert cache.get("k", 1000.0) == {"text": "fresh"}
    cache.close()


def test_the_cache_and_its_side_files_are_owner_only(tmp_path):
    """0600 for the database and the write-ahead log SQLite makes beside it."""
    cache = cache_at(tmp_path)
    cache.put("k", {"text": "hi"}, 1000.0)
    made = sorted(p for p in tmp_path.iterdir() if p.name.startswith("a.llm-cache"))
    assert tmp_path / "a.llm-cache.sqlite" in made
    assert tmp_path / "a.llm-cache.sqlite-wal" in made
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in made} == dict.fromkeys(
        (p.name for p in made), 0o600
    )
    cache.close()


@pytest.mark.parametrize("suffix", ["", "-wal"])
def test_a_link_at_the_cache_path_is_refused(tmp_path, suffix):
    """A symlink where the database or its log would go: not used, and its target untouched."""
    target = tmp_path / "elsewhere.txt"
    target.write_text("not yours")
    (tmp_path / f"a.llm-cache.sqlite{suffix}").symlink_to(target)
    cache = cache_at(tmp_path)
    assert cache.get("k", 1000.0) is None
    cache.put("k", {"text": "kept?"}, 1000.0)
    assert cache.get("k", 1000.0) is None
    assert cache.unavailable is not None
    assert "symbolic link" in cache.unavailable
    assert target.read_text() == "not yours"


def test_a_request_key_ignores_the_order_of_keys():
    """Equal requests, equal keys; any difference, another key."""
    one = {"url": "u", "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}
    two = {"body": {"messages": [{"content": "hi", "role": "user"}], "model": "m"}, "url": "u"}
    assert request_key(one) == request_key(two)
    assert request_key(one) != request_key({**one, "url": "v"})
