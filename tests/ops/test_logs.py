"""Reading logs: rotated files in order, lines that are not JSON, filters, following."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agentops._infra.log import console_renderer
from agentops.cli.logs import LEVEL_NAMES
from agentops.errors import StateError
from agentops.ops.logs import (
    LEVELS,
    LogFilter,
    LogReader,
    last_run_id,
    level_rank,
    log_files,
    parse_line,
    printable,
    readable,
    scan_file,
)
from known_logs import T0, Script, line, write


def events(lines) -> list[str]:
    return [entry.event["event"] if entry.event else entry.text for entry in lines]


@pytest.fixture
def log(tmp_path):
    return tmp_path / "logs" / "hello.jsonl"


# -- files and lines -----------------------------------------------------------------------


def test_rotated_files_come_oldest_first_and_others_are_ignored(log):
    """.jsonl.3, .2, .1, then .jsonl; .bak, .tmp and other agents' files are not the log."""
    for suffix in (".1", ".3", ".2", "", ".tmp"):
        write(log.with_name(f"hello.jsonl{suffix}"), line("x"))
    write(log.with_name("hello.jsonl.1.bak"), line("x"))
    write(log.with_name("hello2.jsonl.1"), line("x"))
    assert [p.name for p in log_files(log)] == [
        "hello.jsonl.3",
        "hello.jsonl.2",
        "hello.jsonl.1",
        "hello.jsonl",
    ]


def test_no_log_directory_means_no_files(log):
    """An agent that never ran has no log: no files, and no lines."""
    assert log_files(log) == []
    assert list(LogReader(log).lines()) == []


def test_real_rotation_is_read_back_in_order(project, invoke):
    """Runs that rotated the log ([logs] max_size) read back as one history, oldest first."""
    (project.home / "agentops.toml").write_text('[logs]\nmax_size = "1KB"\nkeep = 5\n')
    project.add_agent("hello")
    for _ in range(8):
        assert invoke("run", "hello").exit_code == 0
    path = project.log_path("hello")
    assert len(log_files(path)) >= 3
    lines = list(LogReader(path).lines())
    finished = [entry.event for entry in lines if entry.event["event"] == "run.finished"]
    assert [event["result"]["greeting"] for event in finished] == ["Hello, world!"] * 8
    stamps = [entry.event["ts"] for entry in lines]
    assert stamps == sorted(stamps)
    assert events(lines) == ["run.started", "run.finished"] * 8


def test_a_line_that_is_not_json_is_kept_as_text(log):
    """Garbage, JSON that is not an object, bad UTF-8 and deep nesting: text, never fatal."""
    write(log, line("run.started"), "not json at all", "[1, 2]", "42")
    with log.open("ab") as file:
        file.write(b"\xff\xfe broken bytes\n" + b"[" * 100_000 + b"\n\n   \n")
    write(log, line("run.finished"))
    lines = list(LogReader(log).lines())
    assert [entry.event is None for entry in lines] == [False, True, True, True, True, True, False]
    assert lines[1].text == "not json at all"
    assert lines[4].text.startswith("\ufffd")
    assert [entry.lineno for entry in lines] == [1, 2, 3, 4, 5, 6, 9]


def test_a_last_line_without_its_newline_waits_when_following(log):
    """lines() gives a half-written last line; lines(partial=False) leaves it for follow()."""
    write(log, line("run.started"))
    with log.open("a") as file:
        file.write(line("run.finished")[:20])
    assert len(list(LogReader(log).lines())) == 2
    assert len(list(LogReader(log).lines(partial=False))) == 1


# -- filters -------------------------------------------------------------------------------


def test_levels_are_a_minimum():
    """--level warning keeps warning, error and critical; warn, exception and fatal alias."""
    assert LEVELS == LEVEL_NAMES
    assert [level_rank(name) for name in LEVELS] == [0, 1, 2, 3, 4]
    assert (level_rank("warn"), level_rank("exception"), level_rank("FATAL")) == (2, 3, 4)
    assert level_rank("chatter") == level_rank(None) == level_rank("info")
    keep = LogFilter(level="warning")
    assert [keep.matches({"level": name}) for name in LEVELS] == [False, False, True, True, True]


def test_each_filter_and_all_together(log):
    """--run, --level, --event (globs, any of them) and --since: a line must pass every one."""
    write(
        log,
        line("run.started", "r1", at=T0),
        line("action.committed", "r1", at=T0 + timedelta(seconds=1)),
        line("action.failed", "r1", level="warning", at=T0 + timedelta(seconds=2)),
        line("run.finished", "r1", at=T0 + timedelta(seconds=3)),
        line("run.started", "r2", at=T0 + timedelta(hours=1)),
        line("action.failed", "r2", level="warning", at=T0 + timedelta(hours=1, seconds=1)),
        line("run.failed", "r2", level="error", at=T0 + timedelta(hours=1, seconds=2)),
    )

    def pick(**filters):
        return events(LogFilter(**filters).select(LogReader(log).lines()))

    assert len(pick()) == 7
    assert pick(run_id="r1") == [
        "run.started",
        "action.committed",
        "action.failed",
        "run.finished",
    ]
    assert pick(level="warning") == ["action.failed", "action.failed", "run.failed"]
    assert pick(level="error") == ["run.failed"]
    assert pick(events=("action.*",)) == ["action.committed", "action.failed", "action.failed"]
    assert pick(events=("run.started", "*.failed")) == [
        "run.started",
        "action.failed",
        "run.started",
        "action.failed",
        "run.failed",
    ]
    assert pick(since=T0 + timedelta(minutes=30)) == ["run.started", "action.failed", "run.failed"]
    assert pick(run_id="r1", level="warning", events=("action.*",)) == ["action.failed"]
    assert pick(run_id="r3") == []


def test_a_line_that_is_not_json_goes_with_the_line_before(log):
    """Garbage is shown when the line before it is, and at the start only without filters."""
    write(
        log,
        "garbage first",
        line("run.started", "r1"),
        "after r1",
        line("run.started", "r2"),
        "after r2",
    )
    reader = LogReader(log)
    assert events(LogFilter().select(reader.lines())) == [
        "garbage first",
        "run.started",
        "after r1",
        "run.started",
        "after r2",
    ]
    assert events(LogFilter(run_id="r2").select(reader.lines())) == ["run.started", "after r2"]


def test_a_line_missing_what_a_filter_needs_does_not_pass():
    """No ts for --since, an event that is not text for --event: not shown."""
    assert not LogFilter(since=T0).matches({"event": "x", "ts": "yesterday"})
    assert not LogFilter(since=T0).matches({"event": "x"})
    assert not LogFilter(events=("*",)).matches({"event": 3})
    assert LogFilter(since=T0).matches({"ts": "2026-11-22T03:10:00"})  # no zone: UTC


def test_the_last_run_is_the_last_that_started_or_ended(project, invoke):
    """Operator edits log under run ids of their own: --last is the last run, even a skip."""
    project.add_agent("hello")
    assert invoke("run", "hello").exit_code == 0
    assert invoke("pause", "hello").exit_code == 0
    path = project.log_path("hello")
    paused = LogReader(path)
    lines = list(paused.lines())
    run_id = lines[0].event["run_id"]
    assert lines[-1].event["event"] == "agent.paused"
    assert last_run_id(lines) == run_id
    assert invoke("run", "hello").exit_code == 75
    skipped = list(LogReader(path).lines())[-1].event
    assert skipped["event"] == "run.skipped"
    assert last_run_id(LogReader(path).lines()) == skipped["run_id"]


def test_a_running_run_is_the_last_one(log):
    """A run that started and has not ended yet is the last run."""
    write(log, line("run.started", "r1"), line("run.finished", "r1"), line("run.started", "r2"))
    assert last_run_id(LogReader(log).lines()) == "r2"
    assert last_run_id([]) is None


# -- following -----------------------------------------------------------------------------


def follow(reader: LogReader) -> list[str]:
    seen: list[str] = []

    def take() -> None:
        seen.extend(
            entry.event["event"] if entry.event else entry.text for entry in reader.follow()
        )

    with pytest.raises(Script.Done):
        take()
    return seen


def test_follow_gives_appended_lines_once_and_completes_half_lines(log):
    """Lines appended later come once; a line written in two parts comes when it is whole."""
    write(log, line("old"))
    half = line("halves")

    def append_half():
        with log.open("a") as file:
            file.write(half[:15])

    def append_rest():
        with log.open("a") as file:
            file.write(half[15:] + "\n" + line("next") + "\n")

    reader = LogReader(log, sleep=Script(lambda: write(log, line("new")), append_half, append_rest))
    assert events(reader.lines(partial=False)) == ["old"]
    assert follow(reader) == ["new", "halves", "next"]


def test_follow_survives_a_rotation(log):
    """The file replaced (renamed to .1, a new one written): the rest of the old, then the new."""
    write(log, line("before"))

    def rotate():
        write(log, line("last of the old file"))
        log.rename(log.with_name("hello.jsonl.1"))

    reader = LogReader(
        log,
        sleep=Script(
            rotate,
            lambda: None,  # nothing in its place yet: the reader waits
            lambda: write(log, line("first of the new file")),
            lambda: write(log, line("second")),
        ),
    )
    assert events(reader.lines(partial=False)) == ["before"]
    assert follow(reader) == ["last of the old file", "first of the new file", "second"]


def test_follow_reads_on_from_a_rotated_file_a_run_still_writes(log):
    """A run that had the old file open when another invocation rotated it: its lines still come."""
    write(log, line("run.started", "long"))
    running = log.open("a")  # the long run's own descriptor

    def rotate_under_it():
        log.rename(log.with_name("hello.jsonl.1"))
        write(log, line("run.skipped", "other"))

    def finish_the_long_run():
        running.write(line("run.finished", "long") + "\n")
        running.flush()

    reader = LogReader(
        log, sleep=Script(rotate_under_it, finish_the_long_run, lambda: write(log, line("next")))
    )
    try:
        assert events(reader.lines(partial=False)) == ["run.started"]
        assert follow(reader) == ["run.skipped", "run.finished", "next"]
    finally:
        running.close()


def test_follow_waits_for_a_log_that_does_not_exist_yet(log):
    """-f on an agent that never ran: its first lines come when they are written."""
    reader = LogReader(log, sleep=Script(lambda: None, lambda: write(log, line("first"))))
    assert list(reader.lines()) == []
    assert follow(reader) == ["first"]


def test_follow_starts_again_after_a_truncation(log):
    """A log cut in place (copytruncate) is read again from its start."""
    write(log, line("one"), line("two"))

    def truncate():
        with log.open("w") as file:
            file.write(line("fresh") + "\n")

    reader = LogReader(log, sleep=Script(truncate))
    assert len(list(reader.lines())) == 2
    assert follow(reader) == ["fresh"]


def test_follow_without_lines_first_gives_everything(log):
    """follow() alone starts at the beginning of the current file."""
    write(log, line("one"))
    reader = LogReader(log, sleep=Script())
    assert follow(reader) == ["one"]


def test_a_log_that_is_a_link_is_refused(log, tmp_path):
    """agentops does not read through a symbolic link planted as a log: one clear error."""
    target = tmp_path / "elsewhere.jsonl"
    write(target, line("planted"))
    log.parent.mkdir(parents=True)
    log.symlink_to(target)
    with pytest.raises(StateError, match="symbolic link"):
        list(LogReader(log).lines())


# -- scanning and rendering ----------------------------------------------------------------


def test_scan_file_gives_only_wanted_events_and_what_it_cannot_tell(log):
    """Unwanted agentops lines are skipped unparsed; other shapes and garbage are parsed."""
    write(
        log,
        line("http.request"),
        line("run.finished"),
        "garbage",
        '{"event": "run.started", "ts": "2026-11-22T03:10:00Z"}',  # spaced: not ours, parsed
        "",
    )
    found = list(scan_file(log, frozenset({"run.finished"})))
    assert [(entry.lineno, entry.event is None) for entry in found] == [
        (2, False),
        (3, True),
        (4, False),
    ]
    assert list(scan_file(log.with_name("missing.jsonl"), frozenset())) == []


def test_readable_is_what_a_run_shows_without_agent_and_run_id():
    """The console rendering of a run: time, level, event, then the data."""
    entry = parse_line(line("run.finished", status="succeeded", exit_code=0), None, 1)
    text = readable(entry, console_renderer(colors=False))
    assert text.startswith("2026-11-22T03:10:00Z [info     ] run.finished")
    assert "status=succeeded exit_code=0" in text
    assert "hello" not in text
    assert "r1" not in text


def test_readable_escapes_terminal_control_characters():
    """An agent cannot move the cursor or recolour a terminal through its log lines."""
    hostile = "ok\x1b[2J\x1b]0;owned\x07\r\u202eevil\x9b"
    entry = parse_line(line("agent.output", output=hostile, **{"k\x1b": "v"}), None, 1)
    text = readable(entry, console_renderer(colors=False))
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "\r" not in text
    assert "\u202e" not in text
    assert "\x9b" not in text
    assert "ok\\x1b[2J\\x1b]0;owned\\x07\\x0d\\u202eevil\\x9b" in text
    assert printable("tab\tand\nnewline") == "tab\tand\nnewline"
    assert readable(parse_line("raw \x1b[31m", None, 1), console_renderer(colors=False)) == (
        "raw \\x1b[31m"
    )


def test_readable_copes_with_odd_objects():
    """JSON objects that are not agentops lines render without an error."""
    renderer = console_renderer(colors=False)
    for odd in ("{}", '{"event": 5, "level": 3}', '{"ts": null, "nested": {"a": [1, "\\u001b"]}}'):
        assert isinstance(readable(parse_line(odd, None, 1), renderer), str)
