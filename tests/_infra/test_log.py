import io
import json
import logging
from pathlib import Path

import pytest

from agentops._infra.log import RunLogSink, make_logger
from agentops._infra.redact import REDACTED, Redactor
from suite import agent_source

ENV_SECRET = "correct-horse-battery-staple"


@pytest.fixture
def log_path(tmp_path):
    return tmp_path / "logs" / "publisher.jsonl"


@pytest.fixture
def make_log(log_path, clock):
    """Build a logger on a real file sink, closing every sink made at the end."""
    sinks = []

    def make(*, console=None, level=logging.INFO, environ=None):
        redactor = Redactor(environ or {"OPENAI_API_KEY": ENV_SECRET})
        sink = RunLogSink(log_path, console=console)
        sinks.append(sink)
        return make_logger(
            sink, clock=clock, redactor=redactor, agent="publisher", run_id="run-1", level=level
        )

    yield make
    for sink in sinks:
        sink.close()


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_line_starts_with_the_same_keys_in_order(make_log, log_path):
    """Each line is a JSON object beginning with ts, level, event, agent, run_id."""
    log = make_log()
    log.info("run.started", dry_run=False)
    log.warning("gate.skipped", reason="overlap")
    lines = read_lines(log_path)
    assert [list(line)[:5] for line in lines] == [["ts", "level", "event", "agent", "run_id"]] * 2
    assert [(line["level"], line["event"]) for line in lines] == [
        ("info", "run.started"),
        ("warning", "gate.skipped"),
    ]
    assert {(line["agent"], line["run_id"]) for line in lines} == {("publisher", "run-1")}


def test_ts_is_utc_iso8601_from_the_injected_clock(make_log, log_path, clock):
    """ts is the injected clock's time, UTC, ISO 8601 ending in Z."""
    log = make_log()
    log.info("run.started")
    clock.advance(seconds=90.5)
    log.info("run.finished")
    assert [line["ts"] for line in read_lines(log_path)] == [
        "2026-11-22T12:00:00Z",
        "2026-11-22T12:01:30.500000Z",
    ]


def test_extra_keys_are_kept(make_log, log_path):
    """The event's data follows the first keys; values JSON cannot hold are logged as text."""
    log = make_log()
    log.info("action.committed", action="publish", count=3, tags=["a", "b"], path=Path("/x/y"))
    (line,) = read_lines(log_path)
    assert line["action"] == "publish"
    assert line["count"] == 3
    assert line["tags"] == ["a", "b"]
    assert line["path"] == "/x/y"


def test_log_exception_renders_the_traceback_as_text(make_log, log_path):
    """log.exception writes an error line whose text carries the exception and traceback."""
    log = make_log()
    try:
        raise ValueError("feed returned garbage")  # noqa: TRY301 - the test needs a traceback
    except ValueError:
        log.exception("run.crashed")
    (line,) = read_lines(log_path)
    assert (line["level"], line["event"]) == ("error", "run.crashed")
    assert "Traceback" in line["exception"]
    assert "ValueError: feed returned garbage" in line["exception"]


def test_exc_info_renders_a_given_exception_as_text(make_log, log_path):
    """exc_info=<exception> renders that exception, even outside its except block."""
    log = make_log()
    try:
        raise KeyError("missing-field")  # noqa: TRY301 - the test needs a traceback
    except KeyError as exc:
        error = exc
    log.error("run.failed", exc_info=error)
    (line,) = read_lines(log_path)
    assert "KeyError: 'missing-field'" in line["exception"]


def test_secrets_are_redacted_in_the_file(make_log, log_path):
    """Env secrets, key shapes and secret-named keys never reach the file."""
    log = make_log()
    log.info(
        "llm.called",
        note=f"used key {ENV_SECRET}",
        password="hunter2",
        headers={"Authorization": "Token unshaped-value"},
        url="https://api.example.com/?api_key=abc123",
    )
    text = log_path.read_text()
    for secret in (ENV_SECRET, "hunter2", "unshaped-value", "abc123"):
        assert secret not in text
    (line,) = read_lines(log_path)
    assert line["note"] == f"used key {REDACTED}"
    assert line["password"] == REDACTED
    assert line["headers"] == {"Authorization": REDACTED}
    assert line["url"] == f"https://api.example.com/?api_key={REDACTED}"


def test_no_file_is_created_when_nothing_is_logged(make_log, log_path):
    """A run that logs nothing (or only filtered debug lines) leaves no log file."""
    log = make_log()
    log.debug("cache.hit", key="x")
    assert not log_path.exists()
    assert not log_path.parent.exists()


def test_debug_is_filtered_at_info_level(make_log, log_path):
    """At INFO, debug lines are dropped; at DEBUG they are written."""
    make_log().debug("cache.hit")
    make_log().info("run.started")
    make_log(level=logging.DEBUG).debug("cache.miss")
    assert [line["event"] for line in read_lines(log_path)] == ["run.started", "cache.miss"]


def test_console_shows_lines_for_humans_still_redacted(make_log, log_path):
    """With a console, each line is also rendered there as text, redacted too."""
    console = io.StringIO()
    log = make_log(console=console)
    log.info("run.started", attempt=2, note=f"key {ENV_SECRET}")
    shown = console.getvalue()
    assert "run.started" in shown
    assert "attempt=2" in shown
    assert not shown.lstrip().startswith("{")
    assert ENV_SECRET not in shown
    assert REDACTED in shown
    assert [line["event"] for line in read_lines(log_path)] == ["run.started"]


def test_console_escapes_terminal_control_characters_an_agent_logged(make_log, log_path):
    """A run's echo cannot clear the operator's screen or reorder text; the log keeps them."""
    console = io.StringIO()
    log = make_log(console=console)
    log.info("page.read\x1b[2J", title="\x1b]0;owned\x07 \u202eevil", **{"k\x1b": "v"})
    shown = console.getvalue()
    assert "\x1b" not in shown
    assert "\u202e" not in shown
    assert "\\x1b[2J" in shown
    assert "\\u202eevil" in shown
    (line,) = read_lines(log_path)
    assert line["title"] == "\x1b]0;owned\x07 \u202eevil"  # the log holds what was logged


def test_console_shows_exceptions(make_log):
    """An exception logged with a console shows its message there too."""
    console = io.StringIO()
    log = make_log(console=console)
    try:
        raise RuntimeError("disk full")  # noqa: TRY301 - the test needs a traceback
    except RuntimeError:
        log.exception("run.crashed")
    assert "RuntimeError: disk full" in console.getvalue()


def test_a_number_containing_a_secret_keeps_lines_valid(make_log, log_path):
    """A digits-only secret inside a logged number breaks neither the log call nor the file."""
    log = make_log(console=io.StringIO(), environ={"DB_PASSWORD": "20261122"})
    log.info("feed.fetched", items=202611220)
    (line,) = read_lines(log_path)
    assert line["event"] == "feed.fetched"


def strict(line: str) -> dict:
    """Parse ``line`` as strict JSON: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


@pytest.mark.parametrize("note", ["plain", f"key {ENV_SECRET}"], ids=["as-is", "redacted"])
def test_numbers_json_cannot_hold_are_logged_as_strings(make_log, log_path, note):
    """NaN and infinities are written as strings, also on lines that redaction rewrites."""
    log = make_log()
    nan, inf = float("nan"), float("inf")
    log.info("params", ratio=nan, high=inf, low=-inf, nested={"x": [nan]}, note=note)
    (line,) = [strict(text) for text in log_path.read_text().splitlines()]
    assert (line["ratio"], line["high"], line["low"]) == ("NaN", "Infinity", "-Infinity")
    assert line["nested"] == {"x": ["NaN"]}
    assert ENV_SECRET not in log_path.read_text()


def test_every_line_of_a_run_given_nan_is_strict_json(project, invoke):
    """agentops run -p ratio=nan: the params, the agent's own lines, the result, all strict JSON."""
    project.add_agent(
        "agent",
        agent_source(
            """
            ctx.log.info("ratio.seen", ratio=params.ratio, scaled=params.ratio * 2)
            return Result(ratio=str(params.ratio))
            """,
            params="ratio: float = 1.0",
            result="ratio: str",
        ),
    )
    result = invoke("run", "agent", "-p", "ratio=nan")
    assert result.exit_code == 0, result.output
    lines = [strict(text) for text in project.log_path("agent").read_text().splitlines()]
    assert [line["event"] for line in lines] == ["run.started", "ratio.seen", "run.finished"]
    assert lines[0]["params"] == {"ratio": "NaN"}
    assert lines[1]["scaled"] == "NaN"


NOISY = """
import logging, sys, warnings
from pydantic import BaseModel
from agentops import Context

print("at import")

class Params(BaseModel):
    pass

class Result(BaseModel):
    ok: bool

def run(params: Params, ctx: Context) -> Result:
    print("hello from print")
    print("to stderr", file=sys.stderr)
    warnings.warn("careful")
    logging.getLogger("somelib").warning("a library speaks")
    return Result(ok=True)
"""


def test_what_an_agent_prints_goes_to_the_log_not_to_cron(project, run_agentops):
    """print, stderr, warnings and stray logging from a successful run: nothing printed."""
    project.add_agent("agent", NOISY)
    result = run_agentops("run", "agent")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    lines = [
        (e["stream"], e["line"]) for e in project.events("agent") if e["event"] == "agent.output"
    ]
    assert ("stdout", "at import") in lines
    assert ("stdout", "hello from print") in lines
    assert ("stderr", "to stderr") in lines
    assert any("careful" in line for stream, line in lines if stream == "stderr")
    assert ("stderr", "a library speaks") in lines


# -- the logger's structlog interface -------------------------------------------------


def test_bind_unbind_and_new_shape_the_context_but_keep_the_agent(make_log, log_path):
    """bind adds keys, unbind and try_unbind drop them, new starts over: agent and run stay."""
    log = make_log()
    feed = log.bind(feed="news", page=1)
    feed.info("feed.read")
    feed.unbind("page").info("feed.paged")
    feed.try_unbind("page", "absent").info("feed.tried")
    feed.new(item=3).info("item.seen")
    with pytest.raises(KeyError):
        feed.unbind("absent")
    lines = read_lines(log_path)
    assert [(line["event"], line.get("feed"), line.get("page")) for line in lines] == [
        ("feed.read", "news", 1),
        ("feed.paged", "news", None),
        ("feed.tried", "news", None),
        ("item.seen", None, None),
    ]
    assert all((line["agent"], line["run_id"]) == ("publisher", "run-1") for line in lines)
    assert lines[-1]["item"] == 3


def test_levels_positional_arguments_and_exceptions(make_log, log_path):
    """debug is dropped; warn is warning; %-args format the event; exception has the traceback."""
    log = make_log()
    log.debug("too.chatty")
    log.warn("disk.%s", "low")  # noqa: G010 - structlog's alias, which agents may use
    log.log(logging.ERROR, "by.number")
    log.log("critical", "by.name")
    try:
        int("bad feed")
    except ValueError:
        log.exception("feed.failed")
    log.error("feed.failed.again", exc_info=ValueError("given, not raised"))
    lines = read_lines(log_path)
    assert [(line["level"], line["event"]) for line in lines] == [
        ("warning", "disk.low"),
        ("error", "by.number"),
        ("critical", "by.name"),
        ("error", "feed.failed"),
        ("error", "feed.failed.again"),
    ]
    assert lines[3]["exception"].startswith("Traceback (most recent call last):")
    assert lines[3]["exception"].endswith(
        "ValueError: invalid literal for int() with base 10: 'bad feed'"
    )
    assert lines[4]["exception"] == "ValueError: given, not raised"


def test_a_run_never_imports_structlog(project, run_agentops):
    """structlog costs a third of a run's start-up: a run (not on a terminal) never imports it."""
    project.add_agent(
        "probe",
        agent_source(
            """
            ctx.log.info("probe.logged", n=1)
            return Result(structlog="structlog" in sys.modules)
            """,
            result="structlog: bool",
            imports="import sys",
        ),
    )
    assert run_agentops("run", "probe").returncode == 0
    assert project.events("probe")[-1]["result"] == {"structlog": False}
