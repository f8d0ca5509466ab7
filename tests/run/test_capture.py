"""What a run prints goes to its log line by line, never to cron's mail.

The capture's own tests hand it a logger that records; the run's, a real run
in-process whose prints must end up as ``agent.output`` lines. Printing at
the file-descriptor level, from a child process, is tests/processes/test_secrets.py's.
"""

from __future__ import annotations

import io
import sys
import threading

from agentops._infra import stderr
from agentops.run.capture import OutputCapture
from suite import agent_source


class Recorded:
    """A logger keeping (level, event, fields) of each line."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict]] = []

    def info(self, event: str, **fields) -> None:
        self.lines.append(("info", event, fields))

    def warning(self, event: str, **fields) -> None:
        self.lines.append(("warning", event, fields))


def test_prints_become_lines_of_the_log_and_the_streams_come_back():
    """stdout lines at info, stderr at warning; a partial line is flushed at stop()."""
    log = Recorded()
    before = sys.stdout, sys.stderr
    capture = OutputCapture(log)
    capture.start()
    try:
        sys.stdout.write("one\ntwo\n")
        sys.stderr.write("warned\n")
        sys.stdout.write("no newline yet")
    finally:
        capture.stop()
    assert (sys.stdout, sys.stderr) == before
    assert log.lines == [
        ("info", "agent.output", {"stream": "stdout", "line": "one"}),
        ("info", "agent.output", {"stream": "stdout", "line": "two"}),
        ("warning", "agent.output", {"stream": "stderr", "line": "warned"}),
        ("info", "agent.output", {"stream": "stdout", "line": "no newline yet"}),
    ]


def test_each_line_is_preceded_by_a_look_at_the_environment():
    """before_line() runs before each line is logged: a key set a moment ago is learnt first."""
    calls = []
    log = Recorded()
    capture = OutputCapture(log, before_line=lambda: calls.append(len(log.lines)))
    capture.start()
    try:
        sys.stdout.write("a\nb\n")
    finally:
        capture.stop()
    assert calls == [0, 1]


def test_the_operators_line_still_reaches_the_stderr_that_was_there():
    """While captured, real_stderr() is the stream the capture replaced, not the log."""
    capture = OutputCapture(Recorded())
    replaced = sys.stderr
    capture.start()
    try:
        assert stderr.real_stderr() is replaced
    finally:
        capture.stop()
    assert stderr.real_stderr() is sys.stderr


def test_lines_from_many_threads_stay_whole():
    """Eight threads printing at once: every line is logged whole, none cut or merged."""
    log = Recorded()
    capture = OutputCapture(log)
    capture.start()
    try:
        threads = [
            threading.Thread(
                target=lambda n=n: [sys.stdout.write(f"thread {n} line {i}\n") for i in range(50)]
            )
            for n in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        capture.stop()
    lines = {fields["line"] for _, _, fields in log.lines}
    assert lines == {f"thread {n} line {i}" for n in range(8) for i in range(50)}


def test_a_run_that_prints_is_silent_and_its_prints_are_in_its_log(project, clock, capsys):
    """An in-process run not on a terminal: print() and sys.stderr reach the log, not the test."""
    project.add_agent(
        "agent",
        agent_source(
            """
            print("fetched 3 items")
            print("a warning", file=sys.stderr)
            return Result()
            """,
            imports="import sys",
        ),
    )
    assert project.run(clock=clock).exit_code == 0
    assert capsys.readouterr() == ("", "")
    output = [
        (e["stream"], e["line"]) for e in project.events("agent") if e["event"] == "agent.output"
    ]
    assert output == [("stdout", "fetched 3 items"), ("stderr", "a warning")]


def test_a_capture_kept_for_threads_steps_aside_once_the_caller_replaces_stderr():
    """Kept for a thread still running, then the caller (a test runner) swaps sys.stderr.

    The operator's line goes to the caller's stream, not to the one the capture
    replaced; once the thread ends the capture is gone altogether.
    """
    release = threading.Event()
    straggler = threading.Thread(target=release.wait, name="straggler")
    straggler.start()
    before = sys.stdout, sys.stderr
    capture = OutputCapture(Recorded())
    capture.start()
    capture.keep([straggler])
    callers = io.StringIO()
    try:
        sys.stderr = callers  # what pytest does between two tests
        assert stderr.real_stderr() is callers
    finally:
        sys.stdout, sys.stderr = before
        release.set()
        straggler.join()
    for keeper in [t for t in threading.enumerate() if t.name == "agentops-output-keeper"]:
        keeper.join(timeout=60)  # bounds a hang only
    assert capture.replaced_stderr not in stderr._SOURCES
