"""Logs of two agents written by hand, whose report figures are known: the answers are below.

``alpha`` has every kind of ending (succeeded, held, failed, rejected,
crashed, timed out, skipped, aborted, unfinished, dry run), retries, a
circuit opening, actions, a spend, a reservation settled for less,
confidence and review. ``beta`` has two runs, one failing with a message
that tries to inject HTML, and a run id that does too. Both are stamped
back from a moment (:data:`NOW` unless told), and a run of ``alpha`` eight days old lies outside
the default seven-day period.

Also what the log tests share: :func:`line` and :func:`write` make a log as
agentops writes it, and :class:`Script` is a sleep for following one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
"""The moment the report is made."""

HOSTILE_ERROR = 'beta: <script>alert("x")</script> & "><img src=x onerror=alert(1)>'
HOSTILE_RUN = 'b1"><script>alert(2)</script>'


T0 = datetime(2026, 11, 22, 3, 10, tzinfo=UTC)
"""When a line written with :func:`line` happened, unless told."""


def line(event, run_id="r1", *, level="info", at=T0, agent="hello", **data) -> str:
    """One log line as agentops writes it."""
    ts = at.isoformat().replace("+00:00", "Z")
    head = {"ts": ts, "level": level, "event": event, "agent": agent, "run_id": run_id}
    return json.dumps({**head, **data}, separators=(",", ":"))


def write(path: Path, *lines: str) -> None:
    """Append ``lines`` to the log at ``path`` (made with its folder if need be)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as file:
        file.writelines(text + "\n" for text in lines)


class _Log:
    def __init__(self, agent: str, now: datetime) -> None:
        self.agent = agent
        self.now = now
        self.lines: list[str] = []

    def add(self, ago: timedelta, event: str, run_id: str, level: str = "info", **data) -> None:
        self.lines.append(
            line(event, run_id, level=level, at=self.now - ago, agent=self.agent, **data)
        )

    def run(self, ago: timedelta, run_id: str, status: str, duration: float, **data) -> None:
        """run.started, then run.finished ``duration`` seconds later."""
        self.add(ago, "run.started", run_id, params={})
        exit_code = {"succeeded": 0, "held": 0, "rejected": 65}.get(status, 1)
        self.add(
            ago - timedelta(seconds=duration),
            "run.finished",
            run_id,
            status=status,
            exit_code=exit_code,
            duration_s=duration,
            **data,
        )


def _alpha(now: datetime) -> _Log:
    log, day, hour = _Log("alpha", now), timedelta(days=1), timedelta(hours=1)
    log.run(8 * day, "a0", "succeeded", 99.0, degraded=False)  # before the period
    log.lines.append("this line is not JSON")
    # a1: succeeded in 1 s, spent $0.10 and 100 tokens, two actions, confidence 0.9
    log.add(6 * day, "run.started", "a1")
    log.add(6 * day, "budget.spent", "a1", usd=0.10, tokens=100)
    log.add(6 * day, "action.committed", "a1", action="publish", key="k1")
    log.add(6 * day, "action.committed", "a1", action="publish", key="k2")
    log.add(
        6 * day - timedelta(seconds=1),
        "run.finished",
        "a1",
        status="succeeded",
        exit_code=0,
        duration_s=1.0,
        degraded=False,
        result={"confidence": 0.9},
    )
    # a2: succeeded in 2 s; reserved $0.50 and 1000 tokens, settled at $0.20 and 400
    log.add(5 * day, "run.started", "a2")
    log.add(5 * day, "budget.reserved", "a2", id="alpha-a2-1", usd=0.5, tokens=1000)
    log.add(5 * day, "budget.settled", "a2", id="alpha-a2-1", usd=0.2, tokens=400, reserved_usd=0.5)
    log.add(5 * day, "action.skipped", "a2", action="publish", key="k1", reason="duplicate")
    log.add(
        5 * day - timedelta(seconds=2),
        "run.finished",
        "a2",
        status="succeeded",
        exit_code=0,
        duration_s=2.0,
        degraded=False,
    )
    # a3: held for review in 3 s, confidence 0.6
    log.add(4 * day, "run.started", "a3")
    log.add(4 * day, "review.held", "a3", id="a3", confidence=0.6, escalated=False)
    log.add(
        4 * day - timedelta(seconds=3),
        "run.finished",
        "a3",
        status="held",
        exit_code=0,
        duration_s=3.0,
        degraded=False,
        result={"confidence": 0.6},
    )
    # a4, a5: failed the same way, retried twice first; a5 opened the circuit
    log.add(3 * day, "run.started", "a4")
    for attempt in (1, 2):
        log.add(
            3 * day,
            "retry.attempt",
            "a4",
            level="warning",
            attempt=attempt,
            category="http_5xx",
            wait_s=1.0,
            error="HTTPStatusError: 503",
        )
    log.add(
        3 * day,
        "run.failed",
        "a4",
        level="error",
        status="failed",
        error="alpha: run() raised OSError: boom",
    )
    log.add(
        3 * day - timedelta(seconds=4),
        "run.finished",
        "a4",
        status="failed",
        exit_code=1,
        duration_s=4.0,
        degraded=False,
    )
    log.add(3 * day - hour, "run.started", "a5")
    log.add(
        3 * day - hour,
        "run.failed",
        "a5",
        level="error",
        status="failed",
        error="alpha: run() raised OSError: boom",
    )
    log.add(
        3 * day - hour,
        "circuit.opened",
        "a5",
        level="error",
        fingerprint="error:abc",
        failures=2,
        until="2026-11-19T13:00:00Z",
    )
    log.add(
        3 * day - hour - timedelta(seconds=10),
        "run.finished",
        "a5",
        status="failed",
        exit_code=1,
        duration_s=10.0,
        degraded=False,
    )
    # a6: output rejected in 5 s, its action undone
    log.add(2 * day, "run.started", "a6")
    log.add(2 * day, "gate.rejected", "a6", level="warning", stage="output", errors=["bad"])
    log.add(2 * day, "action.undone", "a6", action="publish", key="k3")
    log.add(
        2 * day - timedelta(seconds=5),
        "run.finished",
        "a6",
        status="rejected",
        exit_code=65,
        duration_s=5.0,
        degraded=False,
    )
    # a7, a8: skipped; a9: could not start
    log.add(2 * day - hour, "run.skipped", "a7", reason="circuit_open", retry_after_s=60)
    log.add(2 * day - 2 * hour, "run.skipped", "a8", reason="overlap")
    log.add(
        2 * day - 3 * hour,
        "run.aborted",
        "a9",
        level="error",
        error="alpha: params rejected: max: not an int",
        exit_code=65,
    )
    # a10: died after an action (crashed), found by a11, which fell back (degraded) in 2 s
    log.add(day, "run.started", "a10")
    log.add(day, "action.committed", "a10", action="publish", key="k4")
    log.add(
        day - hour,
        "run.recovered",
        "a11",
        level="warning",
        crashed_run="a10",
        records=3,
        unresolved=[],
    )
    log.add(day - hour, "run.started", "a11")
    log.add(day - hour, "run.degraded", "a11", level="warning", error="alpha: primary failed")
    log.add(
        day - hour - timedelta(seconds=2),
        "run.finished",
        "a11",
        status="succeeded",
        exit_code=0,
        duration_s=2.0,
        degraded=True,
    )
    # a12: stuck past its hard deadline, recorded by a13, which was then skipped
    log.add(day - 2 * hour, "run.started", "a12")
    log.add(
        day - 3 * hour, "run.deadline_passed", "a13", level="error", dead_run="a12", stack="..."
    )
    log.add(day - 3 * hour, "run.skipped", "a13", reason="budget", retry_after_s=None)
    # a14: a dry run: it counts only as a dry run
    log.add(hour * 5, "run.started", "a14", dry_run=True)
    log.add(hour * 5, "budget.spent", "a14", usd=5.0, tokens=5000, dry_run=True)
    log.add(
        hour * 5,
        "run.finished",
        "a14",
        status="failed",
        exit_code=1,
        duration_s=50.0,
        degraded=False,
        dry_run=True,
    )
    # operators: an approval, a rejection, a drop; a line whose status means nothing
    log.add(hour * 4, "review.approved", "op1", id="a3")
    log.add(hour * 4, "review.rejected", "op2", id="x", reason="no")
    log.add(hour * 4, "review.dropped", "a3", level="warning", id="old", escalated=False)
    log.add(hour * 3, "run.finished", "a16", status="exploded", exit_code=3, duration_s=1.0)
    # a15: running now
    log.add(hour, "run.started", "a15")
    return log


def _beta(now: datetime) -> _Log:
    log = _Log("beta", now)
    log.add(timedelta(days=1, hours=6), "run.started", HOSTILE_RUN)
    log.add(timedelta(days=1, hours=6), "budget.spent", HOSTILE_RUN, usd=1.0, tokens=50)
    log.add(
        timedelta(days=1, hours=6) - timedelta(seconds=20),
        "run.finished",
        HOSTILE_RUN,
        status="succeeded",
        exit_code=0,
        duration_s=20.0,
        degraded=False,
    )
    log.add(timedelta(hours=2), "run.started", "b2")
    log.add(
        timedelta(hours=2), "run.failed", "b2", level="error", status="timeout", error=HOSTILE_ERROR
    )
    log.add(
        timedelta(hours=2) - timedelta(seconds=30),
        "run.finished",
        "b2",
        status="timeout",
        exit_code=1,
        duration_s=30.0,
        degraded=False,
    )
    return log


def write_known_logs(logs_dir: Path, now: datetime = NOW) -> dict[str, Path]:
    """Write ``alpha``'s and ``beta``'s logs into ``logs_dir`` (alpha's split by a rotation).

    The lines are stamped back from ``now``: the figures of a report made
    then over seven days are the ones below, whenever that is.
    """
    logs_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for log in (_alpha(now), _beta(now)):
        path = logs_dir / f"{log.agent}.jsonl"
        if log.agent == "alpha":  # its first half in a rotated file
            half = len(log.lines) // 2
            path.with_name("alpha.jsonl.1").write_text("\n".join(log.lines[:half]) + "\n")
            path.write_text("\n".join(log.lines[half:]) + "\n")
        else:
            path.write_text("\n".join(log.lines) + "\n")
        paths[log.agent] = path
    return paths


ALPHA = {
    "invocations": 14,
    "runs": 9,
    "statuses": {
        "succeeded": 3,
        "held": 1,
        "failed": 2,
        "rejected": 1,
        "crashed": 1,
        "timeout": 1,
        "skipped": 3,
        "aborted": 1,
    },
    "skip_reasons": {"budget": 1, "circuit_open": 1, "overlap": 1},
    "success_rate": 0.444444,
    "duration_s": {"p50": 3.0, "p95": 8.5, "max": 10.0},
    "errors": {
        "total": 6,
        "by_category": {"failed": 2, "rejected": 1, "crashed": 1, "timeout": 1, "aborted": 1},
    },
    "retries": {"total": 2, "by_category": {"http_5xx": 2}},
    "circuit_openings": 1,
    "actions": {"committed": 3, "skipped": 1, "undone": 1, "failed": 0},
    "tokens": 500,
    "cost_usd": 0.3,
    "confidence": {"count": 2, "mean": 0.75, "min": 0.6, "p50": 0.75},
    "review": {"held": 1, "escalated": 0, "approved": 1, "rejected": 1, "dropped": 1},
    "degraded": 1,
    "recovered": 1,
    "deadline_passed": 1,
    "unfinished": 1,
    "dry_runs": 1,
    "unreadable_lines": 2,
}
"""alpha's figures (statuses and error categories not named are 0)."""

BETA = {
    "invocations": 2,
    "runs": 2,
    "statuses": {"succeeded": 1, "timeout": 1},
    "success_rate": 0.5,
    "duration_s": {"p50": 25.0, "p95": 29.5, "max": 30.0},
    "errors": {"total": 1, "by_category": {"timeout": 1}},
    "tokens": 50,
    "cost_usd": 1.0,
}

TOTAL = {
    "invocations": 16,
    "runs": 11,
    "success_rate": 0.454545,
    "duration_s": {"p50": 4.0, "p95": 26.0, "max": 30.0},
    "tokens": 550,
    "cost_usd": 1.3,
}
"""Durations over both: 1, 2, 2, 3, 4, 5, 10, 20, 30."""

DAILY_COST = {"2026-11-16": 0.1, "2026-11-17": 0.2, "2026-11-21": 1.0}
"""alpha's spend on the 16th and (settled) on the 17th; beta's on the 21st."""


def expect(figures: dict, known_answers: dict) -> None:
    """Every figure in ``known_answers`` is what ``figures`` says (statuses and errors in full)."""
    for key, value in known_answers.items():
        if key == "statuses":
            assert figures[key] == {s: value.get(s, 0) for s in figures[key]}, key
            assert set(value) <= set(figures[key])
        elif key == "errors":
            assert figures[key]["total"] == value["total"]
            categories = figures[key]["by_category"]
            assert categories == {c: value["by_category"].get(c, 0) for c in categories}, key
        else:
            assert figures[key] == value, key


class Script:
    """A sleep for LogReader.follow that plays one step of a script per call, then stops."""

    class Done(Exception):
        """The script has run out."""

    def __init__(self, *steps) -> None:
        self.steps = list(steps)

    def __call__(self, _seconds: float) -> None:
        if not self.steps:
            raise self.Done
        self.steps.pop(0)()
