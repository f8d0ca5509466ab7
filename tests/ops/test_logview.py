"""What ``agentops logs`` shows of one log or many: merged by time, from where the options say.

Real log files written as agentops writes them (JSON lines, and lines that
are not JSON among them), several agents' at once: the lines shown now,
merged by time with each log's own order kept, the last lines or the last
run of each, then what any of them gains (``-f``), with a sleep that plays
a script instead of waiting. One log's reading, filtering and rotation are
tested in test_logs.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from agentops.ops.logs import LogFilter
from agentops.ops.logview import followed, open_views, shown
from known_logs import T0, Script, line, write


def test_following_several_logs_merges_what_they_append_by_time(tmp_path):
    """-f on every agent: each look gives what any log gained, in time order, filters applied."""
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write(a, line("new.before", at=T0))
    write(b, line("old", at=T0))
    chosen = LogFilter(events=("new.*",))
    views = open_views({"a": a, "b": b}, chosen, count=0, last=False, follow=True)

    def append():
        write(a, line("new.second", at=T0 + timedelta(seconds=2)), line("other", at=T0))
        write(b, line("new.first", at=T0 + timedelta(seconds=1)), "not json, goes with it")

    seen = []

    def follow_all() -> None:
        for view, entry in followed(views, sleep=Script(append)):
            seen.append((view.agent, entry.event["event"] if entry.event else entry.text))

    try:
        assert list(shown(views, count=0, follow=True)) == []
        with pytest.raises(Script.Done):
            follow_all()
    finally:
        for view in views:
            view.reader.close()
    assert seen == [("b", "new.first"), ("b", "not json, goes with it"), ("a", "new.second")]


def texts(pairs) -> list[tuple[str, str]]:
    """(agent, event or text) of each line shown."""
    return [
        (view.agent, entry.event["event"] if entry.event else entry.text) for view, entry in pairs
    ]


def shown_now(logs, chosen=None, *, count=None, last=False) -> list[tuple[str, str]]:
    views = open_views(logs, chosen or LogFilter(), count=count, last=last, follow=False)
    try:
        return texts(shown(views, count=count, follow=False))
    finally:
        for view in views:
            view.reader.close()


def test_several_logs_are_merged_by_time_and_each_keeps_its_own_order(tmp_path):
    """By ts across logs; a line not JSON stays after its own; a ts stepped back moves nothing."""
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write(a, line("a.first", at=T0), line("a.late", at=T0 + timedelta(seconds=5)))
    write(a, line("a.stepped_back", at=T0 + timedelta(seconds=1)))
    write(b, line("b.second", at=T0 + timedelta(seconds=2)), "a traceback line")
    write(b, line("b.third", at=T0 + timedelta(seconds=3)))
    assert shown_now({"a": a, "b": b}) == [
        ("a", "a.first"),
        ("b", "b.second"),
        ("b", "a traceback line"),
        ("b", "b.third"),
        ("a", "a.late"),
        ("a", "a.stepped_back"),
    ]
    assert shown_now({"a": a}) == [("a", "a.first"), ("a", "a.late"), ("a", "a.stepped_back")]


def test_the_last_lines_are_the_last_of_the_merged_lines(tmp_path):
    """-n 3 on every agent: the three newest lines of all, not three of each."""
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for second in range(0, 10, 2):
        write(a, line(f"a.{second}", at=T0 + timedelta(seconds=second)))
        write(b, line(f"b.{second + 1}", at=T0 + timedelta(seconds=second + 1)))
    assert shown_now({"a": a, "b": b}, count=3) == [("b", "b.7"), ("a", "a.8"), ("b", "b.9")]
    assert shown_now({"a": a, "b": b}, count=0) == []


def test_the_last_run_of_each_log_and_none_from_a_log_without_a_run(tmp_path):
    """--last: each log from its own last run (its run id then picks the lines); no run: nothing."""
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write(
        a,
        line("run.started", "r1", at=T0),
        line("run.finished", "r1", at=T0),
        line("run.started", "r2", at=T0 + timedelta(seconds=1)),
        line("other.run", "r9", at=T0 + timedelta(seconds=2)),
        line("run.finished", "r2", at=T0 + timedelta(seconds=3)),
    )
    write(b, line("store.checked", "", at=T0))
    views = open_views({"a": a, "b": b}, LogFilter(), count=None, last=True, follow=False)
    try:
        assert [view.run_found for view in views] == [True, False]
        assert texts(shown(views, count=None, follow=False)) == [
            ("a", "run.started"),
            ("a", "run.finished"),
        ]
    finally:
        for view in views:
            view.reader.close()
