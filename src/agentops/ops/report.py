"""How the agents did over a period, from their logs: ``agentops report``.

A read model: it reads ``logs/<name>.jsonl`` and its rotated files (never the
state, never agent code, never a lock) and counts what the runs logged since
a moment: invocations and how each ended, success rate, durations, errors,
retries, circuit openings, guarded actions, tokens and cost, confidence and
review, the tools models called (and those offered but never called).
Figures are per agent and in total, under the documented keys of
:data:`FIGURE_KEYS`, and over time (:class:`Series`) for the charts of
:mod:`agentops.ops.html`.

What each invocation did is counted by :mod:`agentops.ops.tally`; this
module turns the counts into figures, and says what every key means.
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from agentops._infra.timestamps import iso, iso_second
from agentops.model.status import RunStatus
from agentops.ops.logs import agent_logs, scan_file
from agentops.ops.logtail import periods_of
from agentops.ops.series import CHART_BUCKETS, Ending, Series, chart_bucket, floor, grain_for
from agentops.ops.tally import EVENTS, Reader, Tally, percentile

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from pathlib import Path

    from agentops.ops.logs import LogLine
    from agentops.project.home import Project

__all__ = [
    "ACTION_KEYS",
    "BUCKETS",
    "CONFIDENCE_KEYS",
    "DURATION_KEYS",
    "ERROR_KEYS",
    "FIGURE_KEYS",
    "REPORT_KEYS",
    "RETRY_KEYS",
    "REVIEW_KEYS",
    "TOOL_KEYS",
    "TOP_ERRORS",
    "Report",
    "Series",
    "bucket_for",
    "build_report",
    "figures",
    "percentile",
    "report_from_logs",
    "seconds",
    "usd",
]

REPORT_KEYS = ("since", "until", "bucket", "agents", "total")
"""The keys of ``agentops report --json``, in order: a stable interface."""

FIGURE_KEYS = (
    "invocations",
    "runs",
    "statuses",
    "skip_reasons",
    "success_rate",
    "duration_s",
    "errors",
    "retries",
    "circuit_openings",
    "actions",
    "tokens",
    "cost_usd",
    "confidence",
    "review",
    "degraded",
    "recovered",
    "deadline_passed",
    "unfinished",
    "dry_runs",
    "unreadable_lines",
    "tools",
    "tools_never_called",
)
"""The keys of one agent's figures (and of the total), in order."""

TOOL_KEYS = ("calls", "errors", "p95_ms")
"""``tools``: by tool name, the calls models made of it, those that failed, their p95 duration."""

DURATION_KEYS = ("p50", "p95", "max")
"""``duration_s``: seconds, over executed runs whose duration is known."""

ERROR_KEYS = ("total", "by_category", "top")
"""``errors``: runs that failed or could not start, by category, and the commonest messages."""

RETRY_KEYS = ("total", "by_category")
"""``retries``: ``retry.attempt`` lines, by failure category."""

ACTION_KEYS = ("committed", "skipped", "undone", "failed")
"""``actions``: guarded actions, by what became of them."""

CONFIDENCE_KEYS = ("count", "mean", "min", "p50")
"""``confidence``: of the results that carried one (``result.confidence`` in ``run.finished``)."""

REVIEW_KEYS = ("held", "escalated", "approved", "rejected", "dropped")
"""``review``: results held for review, escalated, and what people did with them."""

TOP_ERRORS = 5
"""How many of the commonest error messages ``errors.top`` lists."""

BUCKETS = {"hour": 3600, "day": 86400, "week": 7 * 86400}
"""The widths of the period's buckets (``bucket`` in ``--json``), in seconds."""

ERROR_CATEGORIES = (*(status for status in RunStatus if status.failed), RunStatus.ABORTED)
"""What ``errors.by_category`` counts: failed runs by status, and runs that could not start."""


def usd(value: float) -> str:
    """Dollars as people read them: ``$1,234.50``, ``$0.30``, and ``$0.0042`` below a cent."""
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"  # noqa: PLR2004


def seconds(value: float | None) -> str:
    """A duration as people read it: ``7 ms``, ``8.5 s``, ``1,234 s``; ``-`` for none."""
    if value is None:
        return "-"
    if 0 < value < 0.0001:  # noqa: PLR2004 - a tenth of a millisecond
        return "< 0.1 ms"
    if 0 < value < 1:
        return f"{value * 1000:.3g} ms"
    return f"{value:.3g} s" if value < 10 else f"{value:,.0f} s"  # noqa: PLR2004


def bucket_for(span_s: float) -> str:
    """The chart bucket for a period: hours up to two days, days up to 92, then weeks."""
    if span_s <= 2 * 86400:
        return "hour"
    return "day" if span_s <= 92 * 86400 else "week"


def figures(tally: Tally) -> dict[str, Any]:
    """The figures of ``tally``, under :data:`FIGURE_KEYS`."""
    runs = sum(n for status, n in tally.statuses.items() if RunStatus(status).executed)
    ok = sum(n for status, n in tally.statuses.items() if RunStatus(status).ok)
    durations = tally.durations.ordered()
    confidences = tally.confidences.ordered()
    confident = len(tally.confidences)
    top = tally.messages.most_common(TOP_ERRORS)
    return {
        "invocations": tally.statuses.total() + tally.counts["unfinished"],
        "runs": runs,
        "statuses": {str(status): tally.statuses[status] for status in RunStatus},
        "skip_reasons": dict(sorted(tally.skip_reasons.items())),
        "success_rate": _round(ok / runs) if runs else None,
        "duration_s": {
            "p50": _round(percentile(durations, 0.5)),
            "p95": _round(percentile(durations, 0.95)),
            "max": _round(durations[-1] if durations else None),
        },
        "errors": {
            "total": tally.errors.total(),
            "by_category": {str(c): tally.errors[c] for c in ERROR_CATEGORIES},
            "top": [
                {"message": message, "count": count, "last_at": tally.last_seen[message]}
                for message, count in top
            ],
        },
        "retries": {
            "total": tally.retries.total(),
            "by_category": dict(sorted(tally.retries.items())),
        },
        "circuit_openings": tally.counts["circuit_openings"],
        "actions": {key: tally.actions[key] for key in ACTION_KEYS},
        "tokens": tally.tokens,
        "cost_usd": round(tally.usd, 6),
        "confidence": {
            "count": confident,
            "mean": _round(tally.confidences.total / confident) if confident else None,
            "min": _round(confidences[0]) if confidences else None,
            "p50": _round(percentile(confidences, 0.5)),
        },
        "review": {key: tally.review[key] for key in REVIEW_KEYS},
        "degraded": tally.counts["degraded"],
        "recovered": tally.counts["recovered"],
        "deadline_passed": tally.counts["deadline_passed"],
        "unfinished": tally.counts["unfinished"],
        "dry_runs": tally.counts["dry_runs"],
        "unreadable_lines": tally.counts["unreadable_lines"],
        "tools": {
            name: {
                "calls": tool.calls,
                "errors": tool.errors,
                "p95_ms": _round(percentile(tool.durations_ms.ordered(), 0.95)),
            }
            for name, tool in sorted(tally.tools.items())
        },
        "tools_never_called": sorted(tally.offered - set(tally.tools)),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


@dataclass(frozen=True, slots=True)
class Report:
    """The figures of a period, per agent and in total, and the series the charts draw."""

    since: datetime
    until: datetime
    bucket: str
    """The width of the run chart's buckets: ``hour``, ``day`` or ``week``."""
    agents: dict[str, dict[str, Any]]
    """Agent name -> its figures (:data:`FIGURE_KEYS`), sorted by name."""
    total: dict[str, Any]
    series: Series
    """Every agent's series together."""
    recent: dict[str, list[Ending]] = field(default_factory=dict)
    """Agent name -> how its last invocations ended, oldest first."""

    def as_json(self) -> dict[str, Any]:
        """The report as ``agentops report --json`` prints it (:data:`REPORT_KEYS`)."""
        return {
            "since": iso(self.since),
            "until": iso(self.until),
            "bucket": self.bucket,
            "agents": self.agents,
            "total": self.total,
        }

    def buckets(self) -> list[datetime]:
        """The start of every bucket of the run chart, oldest first."""
        return self._starts(self.bucket)

    def days(self) -> list[datetime]:
        """The start of every day (UTC) of the period, oldest first."""
        return self._starts("day")

    def drawn_since(self) -> datetime:
        """Where the charts begin: at the first thing they draw, not before the period."""
        first = self.series.first()
        return self.since if first is None else max(self.since, first)

    def chart_bucket(self) -> str:
        """The width of the run chart's bars: the finest that shows the data's span in few bars."""
        span = (self.until - self.drawn_since()).total_seconds()
        return chart_bucket(span, self.series.grain)

    def chart_buckets(self) -> list[datetime]:
        """The start of every bar of the run chart, oldest first: from the first data on."""
        return self._starts(self.chart_bucket(), since=self.drawn_since())

    def _starts(self, bucket: str, *, since: datetime | None = None) -> list[datetime]:
        step = timedelta(seconds=CHART_BUCKETS[bucket])
        start, starts = floor(since or self.since, bucket), []
        while start <= self.until:
            starts.append(start)
            start += step
        return starts


def report_from_logs(logs: Mapping[str, Path], *, now: datetime, since_s: float) -> Report:
    """The report of ``logs`` (agent name -> log path) over ``since_s`` seconds up to ``now``."""
    since = now - timedelta(seconds=since_s)
    bucket, grain = bucket_for(since_s), grain_for(since_s)
    agents: dict[str, dict[str, Any]] = {}
    recent: dict[str, list[Ending]] = {}
    total = Tally("total", series=Series(grain=grain, bucket=bucket))
    with _without_cycle_collection():
        for name in sorted(logs):
            reader = Reader(name, since=since, until=now, bucket=bucket, grain=grain)
            tally = reader.read(_lines_since(logs[name], since))
            agents[name] = figures(tally)
            recent[name] = tally.series.recent
            total.merge(tally)
    return Report(since, now, bucket, agents, figures(total), total.series, recent)


@contextlib.contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """No cyclic garbage collection meanwhile: reading a log makes millions of short-lived objects.

    None of them is in a cycle (reference counting frees each), yet every
    few thousand allocations the collector would walk them all: a fifth of a
    report's time on a large log.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _lines_since(path: Path, since: datetime) -> Iterable[LogLine]:
    # Lines stamped before the period are skipped unparsed (to the second: the
    # lines of that second are parsed, and the tally leaves out what is older).
    older = iso_second(since)[:19].encode()
    for file, offset in periods_of(path, since):
        yield from scan_file(file, EVENTS, offset=offset, older=older)


def build_report(
    project: Project,
    names: Iterable[str] | None = None,
    *,
    now: datetime,
    since_s: float,
    removed: bool = False,
) -> Report:
    """The report of ``names`` (default: every agent; ``removed``: also logs of agents gone)."""
    logs = agent_logs(project, removed=removed)
    if names is not None:
        logs = {name: project.log_path(name) for name in names}
    return report_from_logs(logs, now=now, since_s=since_s)
