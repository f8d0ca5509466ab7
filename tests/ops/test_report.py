"""The report's figures: known answers on logs written by hand, and agreement with real runs."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from agentops.model.status import RunStatus
from agentops.ops import _lines, logtail
from agentops.ops.html import render_html
from agentops.ops.report import (
    ACTION_KEYS,
    CONFIDENCE_KEYS,
    DURATION_KEYS,
    ERROR_KEYS,
    FIGURE_KEYS,
    REPORT_KEYS,
    RETRY_KEYS,
    REVIEW_KEYS,
    bucket_for,
    build_report,
    percentile,
    report_from_logs,
)
from agentops.project.home import Project
from known_logs import ALPHA, BETA, DAILY_COST, HOSTILE_ERROR, NOW, TOTAL, expect, write_known_logs

WEEK_S = 7 * 86400


@pytest.fixture
def known(tmp_path):
    return report_from_logs(write_known_logs(tmp_path / "logs"), now=NOW, since_s=WEEK_S)


def test_percentiles_interpolate_between_ranks():
    """p50 and p95 as numpy computes them by default; nothing for no values."""
    assert percentile([1.0, 2.0, 3.0, 4.0, 10.0], 0.5) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 10.0], 0.95) == pytest.approx(8.8)
    assert percentile([1.0, 2.0], 0.5) == 1.5
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([], 0.5) is None


def test_every_figure_of_an_agent_with_every_kind_of_run(known):
    """alpha: statuses, rates, durations, errors, retries, circuit, actions, cost, review."""
    expect(known.agents["alpha"], ALPHA)


def test_the_commonest_errors_come_first_with_when_they_last_happened(known):
    """The same message twice comes first; runs that could not say why get a plain line."""
    top = known.agents["alpha"]["errors"]["top"]
    assert top[0] == {
        "message": "alpha: run() raised OSError: boom",
        "count": 2,
        "last_at": "2026-11-19T13:00:10Z",
    }
    messages = {error["message"] for error in top[1:]}
    assert messages == {
        "alpha: rejected",
        "alpha: params rejected: max: not an int",
        "alpha: the process died; the next run recovered its journal",
        "alpha: the run passed its hard deadline and was ended",
    }
    assert known.agents["beta"]["errors"]["top"][0]["message"] == HOSTILE_ERROR


def test_the_total_is_over_every_run_not_an_average_of_agents(known):
    """Percentiles of the total are over all durations together; counts and money add up."""
    expect(known.agents["beta"], BETA)
    expect(known.total, TOTAL)
    assert known.total["errors"]["total"] == 7
    assert known.total["review"] == ALPHA["review"]


def test_json_keys_are_the_documented_ones(known):
    """--json's keys and order are REPORT_KEYS, FIGURE_KEYS and the sub-keys, for each agent."""
    report = json.loads(json.dumps(known.as_json()))
    assert tuple(report) == REPORT_KEYS
    assert list(report["agents"]) == ["alpha", "beta"]
    for figures in [*report["agents"].values(), report["total"]]:
        assert tuple(figures) == FIGURE_KEYS
        assert tuple(figures["duration_s"]) == DURATION_KEYS
        assert tuple(figures["errors"]) == ERROR_KEYS
        assert tuple(figures["retries"]) == RETRY_KEYS
        assert tuple(figures["actions"]) == ACTION_KEYS
        assert tuple(figures["confidence"]) == CONFIDENCE_KEYS
        assert tuple(figures["review"]) == REVIEW_KEYS
        assert set(figures["statuses"]) == {str(status) for status in RunStatus}
        assert set(figures["errors"]["by_category"]) == {
            str(s) for s in RunStatus if s.failed or s == RunStatus.ABORTED
        }
    assert (report["since"], report["until"]) == ("2026-11-15T12:00:00Z", "2026-11-22T12:00:00Z")


def test_the_period_decides_what_counts(tmp_path):
    """--since 1d leaves out what happened before: only the last day's runs count."""
    logs = write_known_logs(tmp_path / "logs")
    day = report_from_logs(logs, now=NOW, since_s=86400)
    assert day.agents["alpha"]["runs"] == 3  # a10 (crashed, at the very start), a11, a12
    assert day.agents["alpha"]["cost_usd"] == 0
    assert day.agents["beta"]["runs"] == 1
    nothing = report_from_logs(logs, now=NOW - timedelta(days=30), since_s=86400)
    assert nothing.total["runs"] == 0
    assert nothing.total["success_rate"] is None
    assert nothing.total["duration_s"] == dict.fromkeys(DURATION_KEYS)


def test_series_for_the_charts(known):
    """Invocations per day by status, one point per run with a duration, cost per day."""
    assert known.bucket == "day"
    starts = known.buckets()
    assert len(starts) == 8  # the 15th (from noon) to the 22nd (to noon)
    assert starts[0] == datetime(2026, 11, 15, tzinfo=UTC)
    total = sum(sum(counts.values()) for counts in known.series.runs.values())
    assert total == known.total["invocations"] - known.total["unfinished"]
    assert known.series.runs[datetime(2026, 11, 19, tzinfo=UTC)] == {"failed": 2}
    assert sorted(p.duration_s for p in known.series.points) == [1, 2, 2, 3, 4, 5, 10, 20, 30]
    cost = {f"{day:%Y-%m-%d}": round(usd, 6) for day, usd in known.series.cost.items()}
    assert cost == DAILY_COST


def test_buckets_follow_the_span():
    """Hours up to two days, days up to 92, weeks beyond."""
    assert [bucket_for(s) for s in (3600, 2 * 86400, 2 * 86400 + 1, 92 * 86400, 93 * 86400)] == [
        "hour",
        "hour",
        "day",
        "day",
        "week",
    ]


def test_old_rotated_files_are_not_read(tmp_path):
    """A rotated file last written before the period is skipped, by its modification time."""
    logs = write_known_logs(tmp_path / "logs")
    rotated = logs["alpha"].with_name("alpha.jsonl.1")
    old = (NOW - timedelta(days=30)).timestamp()
    os.utime(rotated, (old, old))
    report = report_from_logs(logs, now=NOW, since_s=WEEK_S)
    assert report.agents["alpha"]["runs"] < ALPHA["runs"]
    assert report.agents["alpha"]["unreadable_lines"] == 1  # the garbage was in the old file


WORKER = """
from pydantic import BaseModel
from agentops import Context
from agentops.errors import TransientError

class Params(BaseModel):
    fail: bool = False
    flaky: bool = False

class Result(BaseModel):
    done: int

TRIES = []

def run(params: Params, ctx: Context) -> Result:
    ctx.spend(usd=0.25, tokens=120)
    ctx.action("publish", key=ctx.run_id, do=lambda: {"ok": True})
    if params.flaky and not TRIES:
        TRIES.append(1)
        raise TransientError("try again")
    if params.fail:
        raise RuntimeError("the feed is down")
    return Result(done=1)
"""


def test_real_runs_agree_with_the_state(project, invoke):
    """Runs, successes, failures, skips, spend and tokens: the report equals the state's metrics."""
    project.add_agent(
        "worker", WORKER, '[retry]\ninitial = "1ms"\nmax = "1ms"\n[circuit]\nfailures = 2\n'
    )
    project.add_agent("hello")
    runs = [(), ("-p", "flaky=true"), ("-p", "fail=true"), ("-p", "fail=true"), (), ()]
    for params in runs:
        invoke("run", "worker", *params)
    invoke("run", "hello")
    report = build_report(Project(project.home), now=datetime.now(UTC), since_s=3600)
    figures, metrics = report.agents["worker"], project.state("worker")["metrics"]
    statuses = figures["statuses"]
    assert figures["runs"] == metrics["runs"] == 4  # the last two were skipped: circuit open
    assert statuses["succeeded"] == metrics["succeeded"] == 2
    assert statuses["failed"] == metrics["failed"] == 2
    assert statuses["skipped"] == metrics["skipped"] == 2
    assert figures["skip_reasons"] == {"circuit_open": 2}
    assert figures["circuit_openings"] == 1
    assert figures["cost_usd"] == pytest.approx(metrics["cost_usd"])
    assert figures["tokens"] == metrics["tokens"]
    assert figures["retries"] == {"total": 1, "by_category": {"transient": 1}}  # only those
    assert figures["actions"] == {"committed": 4, "skipped": 1, "undone": 0, "failed": 0}
    assert figures["errors"]["top"][0]["count"] == 2
    assert "the feed is down" in figures["errors"]["top"][0]["message"]
    assert list(report.agents) == ["hello", "worker"]
    assert report.total["runs"] == 5


def test_the_log_of_a_removed_agent_is_reported_only_when_asked(project, invoke):
    """Every agent; with removed, also every log of one no longer in agents/."""
    project.add_agent("hello")
    invoke("run", "hello")
    (project.home / "logs" / "gone.jsonl").write_text(
        (project.home / "logs" / "hello.jsonl").read_text().replace('"hello"', '"gone"')
    )
    (project.home / "logs" / "rotated.jsonl.1").write_text("")
    (project.home / "logs" / "not-an-agent!.jsonl").write_text("")
    (project.home / "logs" / "notes.txt").write_text("")
    now = datetime.now(UTC)
    report = build_report(Project(project.home), now=now, since_s=3600, removed=True)
    assert list(report.agents) == ["gone", "hello", "rotated"]
    assert report.agents["gone"]["runs"] == 1
    assert list(build_report(Project(project.home), now=now, since_s=3600).agents) == ["hello"]


def _raw_line(at: datetime, event: str, run_id: str, **data: object) -> str:
    head = {"ts": at.isoformat().replace("+00:00", "Z"), "level": "info", "event": event}
    return json.dumps({**head, "agent": "odd", "run_id": run_id, **data}, separators=(",", ":"))


def test_numbers_that_are_not_finite_and_bounded_make_their_line_unreadable(tmp_path):
    """10**400, NaN, Infinity, -1, "5", true: the line is unreadable; 5e-324 is a number."""
    at = NOW - timedelta(hours=1)
    bad = [10**400, float("nan"), float("inf"), -1, "5", True, 1e300]
    lines = [
        _raw_line(at, "run.started", "tiny"),
        _raw_line(at, "budget.spent", "tiny", usd=5e-324, tokens=1),
        _raw_line(at, "run.finished", "tiny", status="succeeded", duration_s=5e-324),
        *(_raw_line(at, "budget.spent", "b", usd=value, tokens=1) for value in bad),
        *(_raw_line(at, "budget.spent", "b", usd=0.5, tokens=value) for value in bad),
        *(
            _raw_line(at, "run.finished", f"d{i}", status="failed", duration_s=value)
            for i, value in enumerate(bad)
        ),
        _raw_line(
            at, "run.finished", "c", status="held", duration_s=1, result={"confidence": 10**400}
        ),
        _raw_line(
            at,
            "run.finished",
            "n",
            status="held",
            duration_s=1,
            result={"confidence": float("nan")},
        ),
    ]
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = report_from_logs({"odd": path}, now=NOW, since_s=86400)
    odd = report.agents["odd"]
    assert odd["unreadable_lines"] == 3 * len(bad)
    assert (odd["runs"], odd["tokens"], odd["cost_usd"]) == (3, 1, 0.0)
    assert odd["duration_s"]["max"] == 1
    assert odd["confidence"]["count"] == 0  # not numbers from 0 to 1: not confidences
    assert odd["statuses"]["failed"] == 0
    page = render_html(report, generated_at=NOW)
    assert 'class="cost"' in page  # 5e-324 dollars were spent: a bar too small to see
    json.dumps(report.as_json(), allow_nan=False)  # nothing infinite or NaN reached the figures


def test_skipping_what_is_older_than_the_period_changes_no_figure(tmp_path, monkeypatch):
    """A file bisected to the period's start gives the figures reading all of it gives."""
    lines = []
    for minute in range(0, 3 * 24 * 60, 7):  # three days of runs, the period the last one
        at = NOW - timedelta(minutes=minute)
        run_id = f"{at:%Y%m%dT%H%M%SZ}-aaaaaa"
        lines += [
            _raw_line(at, "budget.spent", run_id, usd=0.01, tokens=10),
            _raw_line(at, "run.finished", run_id, status="succeeded", duration_s=minute % 13),
            _raw_line(at, "run.started", run_id),
        ]
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(reversed(lines)) + "\n")
    whole = report_from_logs({"odd": path}, now=NOW, since_s=86400)
    monkeypatch.setattr(logtail, "BISECT_BYTES", 0)
    monkeypatch.setattr(_lines, "CHUNK", 4096)
    ((_, offset),) = logtail.periods_of(path, NOW - timedelta(days=1))
    assert offset > path.stat().st_size // 2  # two days of three were never read
    skipped = report_from_logs({"odd": path}, now=NOW, since_s=86400)
    assert skipped.as_json() == whole.as_json()
    assert whole.agents["odd"]["runs"] == 206
