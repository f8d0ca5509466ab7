"""`agentops memory`: what an agent remembers and the notes it kept, for a person or as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from agentops.ops.memory import KEYS, NOTE_KEYS, WORKING_KEYS
from suite import MEMO


def test_agentops_memory_shows_working_memory_and_notes(project, clock, invoke):
    """Text: the live entries, then the notes newest first (or ranked, with a score)."""
    project.add_agent("memo", MEMO)
    project.run("memo", clock=clock, overrides={"remember": {"cursor": 42}})
    project.run("memo", clock=clock, overrides={"note": ["first disk note"], "tags": ["ops"]})
    clock.advance(minutes=1)
    project.run("memo", clock=clock, overrides={"note": ["second note \x1b[31m"], "importance": 9})
    before = project.snapshot()
    result = invoke("memory", "memo")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "working memory: 1"
    assert lines[2].split() == ["cursor", "-", "42"]
    assert "notes: 2 of 2, newest first" in result.stdout
    texts = [line for line in lines if "note" in line and not line.startswith("notes:")]
    assert "second note \\x1b[31m" in texts[0]  # control characters escaped
    assert "first disk note" in texts[1]
    assert "\x1b" not in result.stdout
    ranked = invoke("memory", "memo", "--search", "disk note", "--limit", "1")
    assert ranked.exit_code == 0
    assert "notes: 1 of 2, best first for 'disk note'" in ranked.stdout
    assert "SCORE" in ranked.stdout
    none = invoke("memory", "memo", "--search", "zebra")
    assert "notes: none of 2 match 'zebra'" in none.stdout
    huge = invoke("memory", "memo", "--limit", "9" * 30)
    assert huge.exit_code == 2
    assert "is not in the range 1<=x<=1000000" in huge.stderr
    assert project.snapshot() == before  # a read command


def test_agentops_memory_json_has_the_documented_keys(project, clock, invoke):
    """--json: an object with KEYS; entries with WORKING_KEYS and NOTE_KEYS."""
    project.add_agent("memo", MEMO)
    result = invoke("memory", "memo", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "agent": "memo",
        "working": [],
        "notes": [],
        "notes_total": 0,
        "search": None,
    }
    clock.now = datetime.now(UTC)  # agentops memory reads by the real clock
    project.run("memo", clock=clock, overrides={"remember": {"k": [1]}, "ttl": "1h"})
    project.run("memo", clock=clock, overrides={"note": ["a note"], "tags": ["t"], "importance": 7})
    shown = json.loads(invoke("memory", "memo", "--json").stdout)
    assert tuple(shown) == KEYS
    assert tuple(shown["working"][0]) == WORKING_KEYS
    assert tuple(shown["notes"][0]) == NOTE_KEYS
    assert shown["working"][0]["value"] == [1]
    assert shown["notes"][0]["tags"] == ["t"]
    assert shown["notes"][0]["importance"] == 7
    assert shown["notes"][0]["score"] is None
    searched = json.loads(invoke("memory", "memo", "--json", "--search", "note").stdout)
    assert searched["notes"][0]["score"] > 0
    assert searched["search"] == "note"


def test_agentops_memory_of_an_unknown_agent_is_78(project, invoke):
    """An unknown agent is a configuration error, in one line; a bad --limit is usage (2)."""
    result = invoke("memory", "ghost")
    assert result.exit_code == 78
    assert "unknown agent 'ghost'" in result.stderr
    project.add_agent("memo", MEMO)
    assert invoke("memory", "memo", "--limit", "0").exit_code == 2
