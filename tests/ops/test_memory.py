"""What an agent remembers, read for a person: live working memory, notes newest or ranked."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agentops.errors import UnknownAgent
from agentops.ops.memory import KEYS, read_memory
from agentops.project.home import Project as Home
from suite import MEMO


def test_a_view_holds_what_is_live_at_that_moment(project, clock):
    """An entry past its ttl is not shown, whatever the state file still holds."""
    project.add_agent("memo", MEMO)
    project.run("memo", clock=clock, overrides={"remember": {"short": 1}, "ttl": "10m"})
    project.run("memo", clock=clock, overrides={"remember": {"long": 2}, "ttl": "1d"})
    now = read_memory(Home(project.home), "memo", now=clock())
    assert sorted(now.working) == ["long", "short"]
    later = read_memory(Home(project.home), "memo", now=clock() + timedelta(hours=1))
    assert sorted(later.working) == ["long"]


def test_notes_come_newest_first_or_ranked_for_a_search(project, clock):
    """Without a search the newest first, as many as the limit; with one, ranked, with scores."""
    project.add_agent("memo", MEMO)
    for text, importance in (("disk full", 9), ("deploy done", 1), ("disk slow", 2)):
        project.run("memo", clock=clock, overrides={"note": [text], "importance": importance})
        clock.advance(minutes=1)
    newest = read_memory(Home(project.home), "memo", now=clock(), limit=2)
    assert [n.text for n in newest.notes] == ["disk slow", "deploy done"]
    assert newest.notes_total == 3
    ranked = read_memory(Home(project.home), "memo", now=clock(), search="disk")
    assert [n.text for n in ranked.notes] == ["disk full", "disk slow"]
    assert all(n.score is not None for n in ranked.notes)


def test_an_agent_without_notes_has_an_empty_view_and_a_row_of_the_documented_keys(project, clock):
    """No notes file yet: no notes; the JSON row has exactly KEYS."""
    project.add_agent("memo", MEMO)
    view = read_memory(Home(project.home), "memo", now=clock())
    assert (view.notes, view.notes_total, view.working) == ([], 0, {})
    assert tuple(view.row()) == KEYS
    assert not project.home.joinpath("state", "memo.memory.sqlite").exists(), "reading makes none"


def test_an_unknown_agent_is_an_error_not_an_empty_memory(project, clock):
    """A typo in the name must not look like an agent that forgot everything."""
    with pytest.raises(UnknownAgent):
        read_memory(Home(project.home), "ghost", now=clock())
