"""Reading the end of a log: backward, in bounded memory, only as far as needed, and right.

What is read backward must agree with what reading the whole log forward
gives: the same lines, the same last N lines picked by the same filters,
the same last run. Hypothesis checks that on logs of any shape (lines that
are not JSON, half-written last lines, rotated files, lines longer than a
chunk); the rest checks what it costs: a 2 GB log read with ``-n 5`` under
a memory limit, and files bisected rather than read.
"""

from __future__ import annotations

import collections
import json
import os
import resource
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentops.errors import StateError
from agentops.ops import _lines, logtail
from agentops.ops._lines import CHUNK, HEAD_BYTES, MAX_LINE_BYTES, Splitter, backward
from agentops.ops.logs import LogFilter, LogReader, last_run_id, line_time
from agentops.ops.logtail import last_run, periods_of, start_of_last
from suite import AGENTOPS, cron_env

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def line(event: str, run_id: str, at: datetime, *, level: str = "info", **data) -> str:
    head = {"ts": stamp(at), "level": level, "event": event, "agent": "a", "run_id": run_id}
    return json.dumps({**head, **data}, separators=(",", ":"))


# -- bytes, forward and backward -------------------------------------------------------------


def forward_lines(data: bytes) -> list[tuple[int, bytes, bool]]:
    """(offset, data, complete) of every line of ``data``, fed in small chunks."""
    splitter = Splitter()
    found = []
    for start in range(0, len(data), 7):
        found += [(r.offset, r.data, r.complete) for r in splitter.feed(data[start : start + 7])]
    last = splitter.flush()
    if last is not None:
        found.append((last.offset, last.data, last.complete))
    return found


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"\n", b"a", b"{}", b"\xff", b" "]), max_size=60))
def test_backward_gives_the_lines_forward_gives_last_first(tmp_path_factory, parts):
    """Every line with its offset, whatever the bytes: forward in chunks and backward agree."""
    data = b"".join(parts)
    path = tmp_path_factory.mktemp("b") / "log"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        back = [(r.offset, r.data, r.complete) for r in backward(fd, len(data))]
    finally:
        os.close(fd)
    assert list(reversed(back)) == forward_lines(data)


def test_a_line_longer_than_the_bound_keeps_only_its_head(tmp_path, monkeypatch):
    """Forward and backward, a line past MAX_LINE_BYTES is its head and its size, not all of it."""
    monkeypatch.setattr(_lines, "MAX_LINE_BYTES", 3 * CHUNK)
    size = 7 * CHUNK + 5
    data = b"short\n" + b"x" * size + b"\nafter\n"
    path = tmp_path / "log"
    path.write_bytes(data)
    splitter = Splitter()
    ahead = [*splitter.feed(data[: CHUNK + 3]), *splitter.feed(data[CHUNK + 3 :])]
    fd = os.open(path, os.O_RDONLY)
    try:
        behind = list(backward(fd, len(data)))
    finally:
        os.close(fd)
    for lines in (ahead, list(reversed(behind))):
        assert [(r.offset, r.size, r.clipped) for r in lines] == [
            (0, 5, False),
            (6, size, True),
            (7 + size, 5, False),
        ]
        assert lines[1].data == b"x" * HEAD_BYTES
    assert MAX_LINE_BYTES >= 1 << 20  # the real bound holds any line agentops writes


# -- the last N lines, the last run --------------------------------------------------------

RUNS = ("20261122T030000Z-aaaaaa", "20261122T031000Z-bbbbbb", "r-without-time")


@st.composite
def logs(draw: st.DrawFn) -> list[list[str]]:
    """The files of a log, oldest first: runs' lines, operator lines, garbage, blank lines."""
    lines, at = [], T0
    for _ in range(draw(st.integers(0, 40))):
        at += timedelta(seconds=draw(st.integers(0, 90)))
        kind = draw(st.sampled_from(["run", "run", "run", "mark", "garbage", "blank", "op"]))
        run_id = draw(st.sampled_from(RUNS))
        if kind == "garbage":
            lines.append(draw(st.sampled_from(["not json", "[1]", '{"ts": 5}', "x" * 300])))
        elif kind == "blank":
            lines.append("  ")
        elif kind == "op":
            lines.append(line("agent.paused", "op-1", at))
        else:
            name = (
                "http.request"
                if kind == "run"
                else draw(st.sampled_from(["run.started", "run.finished", "run.skipped"]))
            )
            level = draw(st.sampled_from(["info", "warning", "error"]))
            lines.append(line(name, run_id, at, level=level))
    cuts = sorted(draw(st.lists(st.integers(0, len(lines)), max_size=3)))
    files, start = [], 0
    for cut in [*cuts, len(lines)]:
        files.append(lines[start:cut])
        start = cut
    return files


def write_log(directory, files: list[list[str]], *, torn: bool) -> object:
    """Write the files of a log (the last is the current one); its last line torn if asked."""
    path = directory / "a.jsonl"
    for index, lines in enumerate(files):
        rotated = len(files) - 1 - index
        target = path if rotated == 0 else path.with_name(f"a.jsonl.{rotated}")
        text = "".join(f"{text}\n" for text in lines)
        if torn and rotated == 0 and text:
            text = text[:-1] + '{"ts": "2026'  # a line being written, no newline yet
        target.write_text(text)
    return path


FILTERS = st.builds(
    LogFilter,
    run_id=st.none() | st.sampled_from(RUNS),
    level=st.none() | st.sampled_from(["warning", "error"]),
    events=st.sampled_from([(), ("run.*",), ("http.request", "run.skipped")]),
    since=st.none() | st.integers(0, 3000).map(lambda s: T0 + timedelta(seconds=s)),
)


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    files=logs(), chosen=FILTERS, count=st.integers(0, 12), torn=st.booleans(), follow=st.booleans()
)
def test_the_last_lines_read_from_the_end_are_those_of_the_whole_log(
    tmp_path_factory, files, chosen, count, torn, follow
):
    """start_of_last then forward gives exactly the last N of every line the filters pick."""
    path = write_log(tmp_path_factory.mktemp("log"), files, torn=torn)
    with LogReader(path) as whole:
        expected = collections.deque(chosen.select(whole.lines(partial=not follow)), maxlen=count)
    with LogReader(path) as reader:
        start = start_of_last(reader, chosen, count, partial=not follow)
        got = collections.deque(
            chosen.select(reader.lines(partial=not follow, start=start)), maxlen=count
        )
    assert [(x.path, x.offset, x.text) for x in got] == [
        (x.path, x.offset, x.text) for x in expected
    ]


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(files=logs(), torn=st.booleans())
def test_the_last_run_read_from_the_end_is_that_of_the_whole_log(tmp_path_factory, files, torn):
    """last_run names the run last_run_id finds, and from where it says every line of it comes."""
    path = write_log(tmp_path_factory.mktemp("log"), files, torn=torn)
    with LogReader(path) as whole:
        lines = list(whole.lines())
    run_id = last_run_id(lines)
    with LogReader(path) as reader:
        found = last_run(reader, partial=True)
        if run_id is None:
            assert found is None
            return
        assert found is not None
        assert found[0] == run_id
        chosen = LogFilter(run_id=run_id)
        got = list(chosen.select(reader.lines(start=found[1])))
    expected = list(chosen.select(lines))
    assert [(x.path, x.offset) for x in got] == [(x.path, x.offset) for x in expected]


def test_the_last_run_is_found_without_reading_what_came_long_before(tmp_path):
    """Lines stamped well before the run began are not read: the search stops there."""
    path = tmp_path / "a.jsonl"
    old = [line("http.request", "20261122T000000Z-000000", T0 - timedelta(hours=3))] * 5
    path.write_text(
        "\n".join(
            [
                *old,
                "garbage",
                *(
                    line(e, RUNS[1], T0 + timedelta(minutes=10))
                    for e in ("run.started", "run.finished")
                ),
            ]
        )
        + "\n"
    )
    with LogReader(path) as reader:
        seen = []
        original = reader.backward

        def counting(**kwargs):
            for found in original(**kwargs):
                seen.append(found)
                yield found

        reader.backward = counting
        run_id, start = last_run(reader, partial=True)
    assert run_id == RUNS[1]
    assert len(seen) == 4  # the run's two lines, the garbage, and one old line: then it stopped
    assert start.offset == path.read_text().index('{"ts":"2026-11-22T03:10')


# -- skipping what is older than a period ---------------------------------------------------


def test_a_large_file_is_bisected_to_the_period(tmp_path, monkeypatch):
    """Past BISECT_BYTES, reading starts near the period's first line, never after it."""
    monkeypatch.setattr(logtail, "BISECT_BYTES", 0)
    monkeypatch.setattr(_lines, "CHUNK", 512)
    path = tmp_path / "a.jsonl"
    lines = [
        line("http.request", "r", T0 + timedelta(minutes=i), pad="x" * 100) for i in range(2000)
    ]
    path.write_text("\n".join(lines) + "\n")
    since = T0 + timedelta(minutes=1500)
    ((file, offset),) = list(periods_of(path, since))
    assert file == path
    text = path.read_bytes()
    first = text.index(line("http.request", "r", since, pad="x" * 100).encode())
    skipped = text[:offset].count(b"\n")
    assert offset <= first
    assert skipped > 1000  # most of what is older was never read
    for text_line in text[:offset].decode().splitlines():  # and all of it was older
        assert line_time(json.loads(text_line)) < since - timedelta(
            seconds=logtail.SLACK_S
        ) + timedelta(minutes=2)


def test_rotated_files_older_than_the_period_are_not_opened(tmp_path):
    """A rotated file last written before the period is skipped; the current one never is."""
    path = tmp_path / "a.jsonl"
    for name in ("a.jsonl.2", "a.jsonl.1", "a.jsonl"):
        (tmp_path / name).write_text(line("x", "r", T0) + "\n")
    old = (T0 - timedelta(days=2)).timestamp()
    for name in ("a.jsonl.2", "a.jsonl"):
        os.utime(tmp_path / name, (old, old))
    assert [file.name for file, _ in periods_of(path, T0 - timedelta(days=1))] == [
        "a.jsonl.1",
        "a.jsonl",
    ]


# -- what it costs ---------------------------------------------------------------------------

GIB = 1 << 30
LIMIT = 768 << 20
"""The address space the reading process gets: far less than the log, enough for Python."""


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def test_the_end_of_a_2_gb_log_is_read_under_a_memory_limit(project):
    """-n, --json and --last on a 2 GB log, the process held to 768 MB: they answer.

    Most of the log is a hole (no disk, zeros, no newline): one line of 2 GB.
    The last lines and the last run are found without reading it; asked for
    the lines that include it, it is read through, a chunk at a time, and
    shown clipped.
    """
    project.add_agent("big")
    path = project.log_path("big")
    path.parent.mkdir()
    head = line("run.started", RUNS[0], T0) + "\n"
    tail = [
        "garbage",
        line("http.request", RUNS[0], T0),
        *(line(e, RUNS[1], T0 + timedelta(minutes=30)) for e in ("run.started", "work.done")),
        line("run.finished", RUNS[1], T0 + timedelta(minutes=30)),
    ]
    with path.open("wb") as file:
        file.write(head.encode())
        file.seek(2 * GIB)  # a hole: 2 GB that take no disk, read as zeros
        file.write(("\n" + "\n".join(tail) + "\n").encode())
    assert path.stat().st_size > 2 * GIB

    def logs(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(AGENTOPS), "--home", str(project.home), "logs", "big", *args],
            env=cron_env(project.home),
            capture_output=True,
            text=True,
            timeout=600,
            preexec_fn=_limited,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done

    try:
        assert logs("-n", "5", "--json").stdout.splitlines() == tail[1:]
        assert logs("--last", "--json").stdout.splitlines() == tail[2:]
        assert logs("-n", "2").stdout.splitlines()[0] == f"--- run {RUNS[1]}"
        through = logs("-n", "6", "--json")  # the 2 GB line too: read through, flat
    finally:
        # Written by the test, not agentops: the session's scan for leaked
        # secrets (conftest) need not read 2 GB of zeros at the end.
        path.unlink()
    assert through.stdout.splitlines() == tail[1:]
    hole, garbage = through.stderr.splitlines()
    assert hole.startswith(f"agentops: {path} at byte {len(head)}: not a JSON line: \\x00")
    assert garbage == f"agentops: {path} at byte {2 * GIB + 1}: not a JSON line: garbage"


def test_a_fifo_at_a_logs_place_is_refused_not_waited_on(project, run_agentops):
    """logs and report refuse a FIFO where a log should be, in one line, at once."""
    project.add_agent("odd")
    (project.home / "logs").mkdir()
    os.mkfifo(project.log_path("odd"))
    for args in (("logs", "odd"), ("logs", "odd", "-n", "3"), ("report", "odd")):
        done = run_agentops(*args, timeout=60)
        assert done.returncode == 74, done.stderr
        assert done.stderr.splitlines() == [
            f"agentops: {project.log_path('odd')}: cannot read: not a regular file"
        ]


def test_a_fifo_is_refused_by_the_reader(tmp_path):
    """open_log refuses anything but a regular file: StateError, never a wait."""
    fifo = tmp_path / "a.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(StateError, match="not a regular file"):
        list(LogReader(fifo).backward())
    assert sys.platform.startswith("linux")  # mkfifo and O_NONBLOCK as Linux has them
