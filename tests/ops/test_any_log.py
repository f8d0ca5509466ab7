"""Any log content: report, logs, status, health and the HTML page answer, never exit 70.

Hypothesis writes logs whose lines carry arbitrary JSON in every field a
reader looks at (``ts``, ``event``, ``run_id``, ``status``, ``duration_s``,
``usd``, ``tokens``, ``result.confidence``...): numbers too small, too
large or not numbers at all, nesting deep enough to trouble a renderer,
text that is not text, and lines that are not JSON. Every command that
reads a log is run on it in-process.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentops.ops.html import render_html
from agentops.ops.report import report_from_logs
from agentops.ops.tally import EVENTS

NOW = datetime.now(UTC)

HOSTILE_NUMBERS = st.sampled_from(
    [5e-324, -5e-324, 1e308, -1e308, 10**400, -(10**400), math.nan, math.inf, -math.inf, 0, -1]
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | HOSTILE_NUMBERS
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
"""Any JSON value Python's json writes (NaN and Infinity included)."""

DEEP = st.integers(min_value=1, max_value=995).map(lambda depth: "[" * depth + "]" * depth)
"""Nesting deep enough to reach Python's recursion limit once parsed and rendered."""

RUN_IDS = st.sampled_from(
    [f"{NOW - timedelta(hours=1):%Y%m%dT%H%M%SZ}-aaaaaa", "r1", "r2", "", "20261122T99Z"]
)

STAMPS = st.one_of(
    st.integers(min_value=0, max_value=7 * 86400).map(
        lambda ago: (NOW - timedelta(seconds=ago)).isoformat().replace("+00:00", "Z")
    ),
    st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "yesterday"]),
    JSON,
)

FIELDS = {
    "ts": STAMPS,
    "level": st.sampled_from(["info", "error", "warn"]) | JSON,
    "event": st.sampled_from(sorted(EVENTS | {"http.request", "agent.paused"})) | JSON,
    "run_id": RUN_IDS | JSON,
    "status": st.sampled_from(["succeeded", "failed", "held", "timeout", "exploded"]) | JSON,
    "duration_s": HOSTILE_NUMBERS | JSON,
    "usd": HOSTILE_NUMBERS | JSON,
    "tokens": HOSTILE_NUMBERS | JSON,
    "result": st.fixed_dictionaries({"confidence": HOSTILE_NUMBERS | JSON}) | JSON,
    "degraded": JSON,
    "dry_run": JSON,
    "reason": JSON,
    "category": JSON,
    "error": JSON,
    "id": JSON,
    "escalated": JSON,
    "crashed_run": RUN_IDS | JSON,
    "dead_run": RUN_IDS | JSON,
    "exception": JSON,
    "stack": JSON,
}


@st.composite
def log_lines(draw: st.DrawFn) -> str:
    """One line of a log: agentops-shaped with hostile values, deep nesting, or not JSON."""
    kind = draw(st.sampled_from(["event", "event", "event", "deep", "text"]))
    if kind == "text":
        return draw(st.text(max_size=60)).replace("\n", " ")
    if kind == "deep":
        return f'{{"ts":"{NOW.isoformat()}","event":"run.finished","result":{draw(DEEP)}}}'
    keys = draw(st.lists(st.sampled_from(sorted(FIELDS)), unique=True, min_size=2))
    event = {key: draw(FIELDS[key]) for key in ("ts", "event", "run_id", *keys)}
    return json.dumps(event, allow_nan=True)


LOGS = st.lists(log_lines(), min_size=1, max_size=25)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=LOGS)
def test_any_log_is_reported_without_an_internal_error(tmp_path, lines):
    """The report's figures and page from any lines: finite figures, a page, no exception."""
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = report_from_logs({"odd": path}, now=NOW, since_s=7 * 86400)
    json.dumps(report.as_json(), allow_nan=False)  # every figure finite
    assert render_html(report, generated_at=NOW).startswith("<!DOCTYPE html>")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=LOGS)
def test_any_log_leaves_every_command_that_reads_it_answering(project, invoke, lines):
    """report, logs (every way), status and health: their usual exit codes, never 70."""
    project.add_agent("odd")
    project.log_path("odd").parent.mkdir(exist_ok=True)
    project.log_path("odd").write_text("\n".join(lines) + "\n")
    for args, codes in (
        (("report", "--json"), {0}),
        (("report", "--html", "-"), {0}),
        (("logs", "odd"), {0}),
        (("logs", "odd", "--json", "-n", "3"), {0}),
        (("logs", "odd", "--last"), {0}),
        (("logs", "odd", "--level", "error", "--event", "run.*", "-n", "2"), {0}),
        (("logs", "--since", "2h"), {0}),
        (("status", "--json"), {0}),
        (("health",), {0, 1}),
    ):
        result = invoke(*args)
        assert result.exit_code in codes, (args, result.output)
