"""Counting one agent's log: how each invocation ended, told apart by its run id.

The lines are real ones: written by runs in-process (a fake clock stamps
them), then read back as the report reads them. The report's figures over
hand-written logs are tests/ops/test_report.py's.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from agentops.ops.logs import parse_line, read_file
from agentops.ops.tally import Reader, percentile
from suite import T0, agent_source

WORKER = agent_source(
    """
    ctx.spend(usd=params.usd, tokens=params.tokens)
    if params.fail:
        raise RuntimeError("the feed is down")
    return Result()
    """,
    params="fail: bool = False\nusd: float = 0.0\ntokens: int = 0",
)


def tally(project, name: str = "agent", *, since=T0 - timedelta(days=1), until=None):
    until = until or T0 + timedelta(days=1)
    reader = Reader(name, since=since, until=until, bucket="hour", grain="hour")
    return reader.read(read_file(project.log_path(name)))


def test_each_invocation_is_counted_once_by_how_it_ended(project, clock):
    """Two successes, a failure and a skip: statuses by run id, the skip's reason, the error."""
    project.add_agent("agent", WORKER, '[limits]\nruns = "3/hour"\n')
    for fail in (False, True, False, False):
        project.run(clock=clock, overrides={"fail": fail})
        clock.advance(minutes=1)
    counted = tally(project)
    assert counted.statuses == {"succeeded": 2, "failed": 1, "skipped": 1}
    assert counted.skip_reasons == {"rate_limit": 1}
    assert sum(counted.errors.values()) == 1
    assert counted.durations.count == 3, "only runs that executed have a duration"


def test_money_and_tokens_are_summed_and_dry_runs_counted_apart(project, clock):
    """Spends add up; a dry run's lines count as a dry run only."""
    project.add_agent("agent", WORKER)
    project.run(clock=clock, overrides={"usd": 0.25, "tokens": 10})
    project.run(clock=clock, overrides={"usd": 0.5, "tokens": 5})
    project.run(clock=clock, dry_run=True, overrides={"usd": 1.0})
    counted = tally(project)
    assert counted.usd == pytest.approx(0.75)
    assert counted.tokens == 15
    assert counted.counts["dry_runs"] == 1
    assert counted.statuses == {"succeeded": 2}


def test_lines_outside_the_period_and_unreadable_lines(project, clock):
    """A run before ``since`` is not counted; a line that is not JSON is counted as such."""
    project.add_agent("agent", WORKER)
    project.run(clock=clock)
    clock.advance(days=2)
    project.run(clock=clock)
    with project.log_path("agent").open("a") as log:
        log.write("not json\n")
    counted = tally(project, since=T0 + timedelta(days=1), until=T0 + timedelta(days=3))
    assert counted.statuses == {"succeeded": 1}
    assert counted.counts["unreadable_lines"] == 1


def test_tallies_merge_into_the_projects():
    """Two agents' tallies add up, each counter and the money."""
    lines = [
        parse_line(
            '{"ts": "2026-11-22T12:00:00Z", "event": "run.finished", "run_id": "r1",'
            ' "status": "succeeded", "duration_s": 2.0}',
            path=Path("a.jsonl"),
            lineno=1,
        )
    ]
    period = {"since": T0 - timedelta(hours=1), "until": T0, "bucket": "day", "grain": "day"}
    one = Reader("a", **period).read(lines)
    two = Reader("b", **period).read(lines)
    one.merge(two)
    assert one.statuses == {"succeeded": 2}
    assert one.durations.ordered() == [2.0, 2.0]


def test_percentiles_interpolate_as_numpy_does():
    """Linear interpolation between ranks; nothing to rank, no percentile."""
    assert percentile([], 0.5) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.95) == pytest.approx(3.85)
    assert percentile([7.0], 0.99) == 7.0
