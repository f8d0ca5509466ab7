"""How the agents did over a period, from their logs: ``agentops report``.

A read model: it reads ``logs/<name>.jsonl`` and its rotated files (never the
state, never agent code, never a lock) and counts what the runs logged since
a moment: invocations and how each ended, success rate, durations, errors,
retries, circuit openings, guarded actions, tokens and cost, confidence and
review. Figures are per agent and in total, under the documented keys of
:data:`FIGURE_KEYS`, and over time (:class:`Series`) for the charts of
:mod:`agentops.ops.html`.

How runs are told apart: every line carries its invocation's ``run_id``. An
invocation ends with one of ``run.finished`` (its ``status``),
``run.skipped``, ``run.aborted`` or ``run.abandoned`` (recorded as
``timeout``, as the next run records it). A run that started and never
ended is ``crashed`` once a later run logged ``run.recovered`` for it
(``timeout`` if ``run.deadline_passed`` names it), else ``unfinished``
(running now, or not recovered yet). Durations are those ``run.finished``
gives, and for an abandoned run the time from its start to its abandonment;
the duration of a run that died is not known. Dry runs are counted apart
and nowhere else.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from agentops.ops.logs import line_time, log_files, scan_file
from agentops.status import RunStatus
from agentops.timestamps import iso

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

    from agentops.ops.logs import LogLine
    from agentops.project import Project

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
    "TOP_ERRORS",
    "Report",
    "Series",
    "bucket_for",
    "build_report",
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
)
"""The keys of one agent's figures (and of the total), in order."""

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
"""The widths of the time buckets of the charts, in seconds."""

ERROR_CATEGORIES = (*(status for status in RunStatus if status.failed), RunStatus.ABORTED)
"""What ``errors.by_category`` counts: failed runs by status, and runs that could not start."""

_TIMEOUT_STATUS = RunStatus.TIMEOUT


def percentile(ordered: list[float], fraction: float) -> float | None:
    """The ``fraction`` percentile of sorted values, interpolated linearly (numpy's default)."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def usd(value: float) -> str:
    """Dollars as people read them: ``$1,234.50``, ``$0.30``, and ``$0.0042`` below a cent."""
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"  # noqa: PLR2004


def seconds(value: float | None) -> str:
    """A duration as people read it: ``0.25 s``, ``8.5 s``, ``1,234 s``; ``-`` for none."""
    if value is None:
        return "-"
    return f"{value:.3g} s" if value < 10 else f"{value:,.0f} s"  # noqa: PLR2004


def bucket_for(span_s: float) -> str:
    """The chart bucket for a period: hours up to two days, days up to 92, then weeks."""
    if span_s <= 2 * 86400:
        return "hour"
    return "day" if span_s <= 92 * 86400 else "week"


def _floor(moment: datetime, bucket: str) -> datetime:
    start = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if bucket == "hour":
        return start
    start = start.replace(hour=0)
    return start if bucket == "day" else start - timedelta(days=start.weekday())


@dataclass(slots=True)
class _Run:
    """One invocation, as its lines tell it."""

    run_id: str
    started: datetime | None = None
    ended: datetime | None = None
    last_seen: datetime | None = None
    status: RunStatus | None = None
    duration_s: float | None = None
    error: str | None = None
    recovered: bool = False
    deadline: bool = False


@dataclass(frozen=True, slots=True)
class Point:
    """One executed run on the duration chart."""

    at: datetime
    duration_s: float
    status: str
    agent: str
    run_id: str


@dataclass(slots=True)
class Series:
    """What the charts draw: invocations by status, durations, cost, over the period."""

    runs: dict[datetime, Counter[str]] = field(default_factory=dict)
    """Bucket start -> status -> invocations that ended in it."""
    points: list[Point] = field(default_factory=list)
    """Every executed run whose duration is known."""
    cost: dict[datetime, float] = field(default_factory=dict)
    """Day (UTC) -> USD spent."""

    def merge(self, other: Series) -> None:
        """Add ``other``'s figures to these."""
        for start, counts in other.runs.items():
            self.runs.setdefault(start, Counter()).update(counts)
        self.points.extend(other.points)
        for day, usd in other.cost.items():
            self.cost[day] = self.cost.get(day, 0.0) + usd


@dataclass(slots=True)
class _Tally:
    """Everything counted for one agent (or for all of them)."""

    agent: str
    statuses: Counter[str] = field(default_factory=Counter)
    skip_reasons: Counter[str] = field(default_factory=Counter)
    durations: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)
    last_seen: dict[str, str] = field(default_factory=dict)
    retries: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    review: Counter[str] = field(default_factory=Counter)
    confidences: list[float] = field(default_factory=list)
    usd: float = 0.0
    tokens: int = 0
    series: Series = field(default_factory=Series)

    def merge(self, other: _Tally) -> None:
        """Add ``other``'s counts to these."""
        for mine, theirs in (
            (self.statuses, other.statuses),
            (self.skip_reasons, other.skip_reasons),
            (self.errors, other.errors),
            (self.messages, other.messages),
            (self.retries, other.retries),
            (self.counts, other.counts),
            (self.actions, other.actions),
            (self.review, other.review),
        ):
            mine.update(theirs)
        for message, when in other.last_seen.items():
            self.last_seen[message] = max(when, self.last_seen.get(message, when))
        self.durations += other.durations
        self.confidences += other.confidences
        self.usd += other.usd
        self.tokens += other.tokens
        self.series.merge(other.series)

    def figures(self) -> dict[str, Any]:
        """The figures under :data:`FIGURE_KEYS`."""
        runs = sum(n for status, n in self.statuses.items() if RunStatus(status).executed)
        ok = sum(n for status, n in self.statuses.items() if RunStatus(status).ok)
        durations = sorted(self.durations)
        confidences = sorted(self.confidences)
        top = self.messages.most_common(TOP_ERRORS)
        return {
            "invocations": self.statuses.total() + self.counts["unfinished"],
            "runs": runs,
            "statuses": {str(status): self.statuses[status] for status in RunStatus},
            "skip_reasons": dict(sorted(self.skip_reasons.items())),
            "success_rate": _round(ok / runs) if runs else None,
            "duration_s": {
                "p50": _round(percentile(durations, 0.5)),
                "p95": _round(percentile(durations, 0.95)),
                "max": _round(durations[-1] if durations else None),
            },
            "errors": {
                "total": self.errors.total(),
                "by_category": {str(c): self.errors[c] for c in ERROR_CATEGORIES},
                "top": [
                    {"message": message, "count": count, "last_at": self.last_seen[message]}
                    for message, count in top
                ],
            },
            "retries": {
                "total": self.retries.total(),
                "by_category": dict(sorted(self.retries.items())),
            },
            "circuit_openings": self.counts["circuit_openings"],
            "actions": {key: self.actions[key] for key in ACTION_KEYS},
            "tokens": self.tokens,
            "cost_usd": round(self.usd, 6),
            "confidence": {
                "count": len(confidences),
                "mean": _round(sum(confidences) / len(confidences)) if confidences else None,
                "min": _round(confidences[0]) if confidences else None,
                "p50": _round(percentile(confidences, 0.5)),
            },
            "review": {key: self.review[key] for key in REVIEW_KEYS},
            "degraded": self.counts["degraded"],
            "recovered": self.counts["recovered"],
            "deadline_passed": self.counts["deadline_passed"],
            "unfinished": self.counts["unfinished"],
            "dry_runs": self.counts["dry_runs"],
            "unreadable_lines": self.counts["unreadable_lines"],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _number(value: object) -> float | None:
    """A finite number read from a log line (a boolean or ``"NaN"`` is none)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class _Reader:
    """Reads one agent's lines into a :class:`_Tally`."""

    def __init__(self, agent: str, *, since: datetime, until: datetime, bucket: str) -> None:
        self.tally = _Tally(agent)
        self.since = since
        self.until = until
        self.bucket = bucket
        self.runs: dict[str, _Run] = {}
        self.reserved: dict[str, tuple[float, int]] = {}

    def read(self, lines: Iterable[LogLine]) -> _Tally:
        counts = self.tally.counts
        for line in lines:
            event = line.event
            moment = None if event is None else line_time(event)
            if event is None or moment is None:
                counts["unreadable_lines"] += 1
                continue
            if moment < self.since or moment > self.until:
                continue
            name = event.get("event")
            handler = _HANDLERS.get(name) if isinstance(name, str) else None
            if handler is None:
                continue
            if event.get("dry_run") is True:
                if name == "run.finished":
                    counts["dry_runs"] += 1
                continue
            run_id = event.get("run_id")
            if not isinstance(run_id, str):
                counts["unreadable_lines"] += 1
                continue
            handler(self, event, moment, run_id)
        self._finish()
        return self.tally

    def _run(self, run_id: str, moment: datetime) -> _Run:
        run = self.runs.get(run_id)
        if run is None:
            run = self.runs[run_id] = _Run(run_id)
        run.last_seen = moment
        return run

    # -- the events --------------------------------------------------------------------

    def _started(self, _event: dict[str, Any], moment: datetime, run_id: str) -> None:
        self._run(run_id, moment).started = moment

    def _finished(self, event: dict[str, Any], moment: datetime, run_id: str) -> None:
        try:
            status = RunStatus(str(event.get("status")))
        except ValueError:
            self.tally.counts["unreadable_lines"] += 1
            return
        run = self._run(run_id, moment)
        run.status, run.ended = status, moment
        run.duration_s = _number(event.get("duration_s"))
        if event.get("degraded") is True:
            self.tally.counts["degraded"] += 1
        result = event.get("result")
        confidence = _number(result.get("confidence")) if isinstance(result, dict) else None
        if confidence is not None:
            self.tally.confidences.append(confidence)

    def _skipped(self, event: dict[str, Any], moment: datetime, run_id: str) -> None:
        run = self._run(run_id, moment)
        run.status, run.ended = RunStatus.SKIPPED, moment
        reason = event.get("reason")
        self.tally.skip_reasons[reason if isinstance(reason, str) else "unknown"] += 1

    def _aborted(self, event: dict[str, Any], moment: datetime, run_id: str) -> None:
        run = self._run(run_id, moment)
        run.status, run.ended = RunStatus.ABORTED, moment
        run.error = _text(event.get("error")) or run.error

    def _abandoned(self, _event: dict[str, Any], moment: datetime, run_id: str) -> None:
        run = self._run(run_id, moment)
        run.status, run.ended = _TIMEOUT_STATUS, moment  # as the next run records it
        if run.started is not None:
            run.duration_s = (moment - run.started).total_seconds()

    def _failed(self, event: dict[str, Any], moment: datetime, run_id: str) -> None:
        self._run(run_id, moment).error = _text(event.get("error"))

    def _recovered(self, event: dict[str, Any], _moment: datetime, _run_id: str) -> None:
        self.tally.counts["recovered"] += 1
        crashed = event.get("crashed_run")
        if isinstance(crashed, str) and crashed in self.runs:
            self.runs[crashed].recovered = True

    def _deadline(self, event: dict[str, Any], moment: datetime, _run_id: str) -> None:
        self.tally.counts["deadline_passed"] += 1
        dead = event.get("dead_run")
        if isinstance(dead, str):
            run = self.runs.get(dead) or self.runs.setdefault(dead, _Run(dead, last_seen=moment))
            run.deadline = True

    def _retry(self, event: dict[str, Any], _moment: datetime, _run_id: str) -> None:
        category = event.get("category")
        self.tally.retries[category if isinstance(category, str) else "unknown"] += 1

    def _circuit(self, _event: dict[str, Any], _moment: datetime, _run_id: str) -> None:
        self.tally.counts["circuit_openings"] += 1

    def _action(self, event: dict[str, Any], _moment: datetime, _run_id: str) -> None:
        self.tally.actions[str(event["event"]).removeprefix("action.")] += 1

    def _spent(self, event: dict[str, Any], moment: datetime, _run_id: str) -> None:
        self._cost(moment, _number(event.get("usd")) or 0.0, _number(event.get("tokens")) or 0)

    def _reserved(self, event: dict[str, Any], moment: datetime, _run_id: str) -> None:
        usd, tokens = _number(event.get("usd")) or 0.0, _number(event.get("tokens")) or 0
        self.reserved[str(event.get("id"))] = (usd, int(tokens))
        self._cost(moment, usd, tokens)

    def _settled(self, event: dict[str, Any], moment: datetime, _run_id: str) -> None:
        # A settlement replaces its reservation (if the reservation is in the period).
        usd, tokens = _number(event.get("usd")) or 0.0, _number(event.get("tokens")) or 0
        was_usd, was_tokens = self.reserved.pop(str(event.get("id")), (0.0, 0))
        self._cost(moment, usd - was_usd, tokens - was_tokens)

    def _cost(self, moment: datetime, usd: float, tokens: float) -> None:
        self.tally.usd += usd
        self.tally.tokens += int(tokens)
        day = _floor(moment, "day")
        cost = self.tally.series.cost
        cost[day] = cost.get(day, 0.0) + usd

    def _held(self, event: dict[str, Any], _moment: datetime, _run_id: str) -> None:
        self.tally.review["escalated" if event.get("escalated") is True else "held"] += 1

    def _reviewed(self, event: dict[str, Any], _moment: datetime, _run_id: str) -> None:
        self.tally.review[str(event["event"]).removeprefix("review.")] += 1

    # -- the end -----------------------------------------------------------------------

    def _finish(self) -> None:
        tally = self.tally
        for run in self.runs.values():
            if run.status is None and run.deadline:
                run.status = _TIMEOUT_STATUS
            elif run.status is None and run.recovered:
                run.status = RunStatus.CRASHED
            if run.status is None:
                if run.started is not None:
                    tally.counts["unfinished"] += 1
                continue
            if run.ended is None:  # died: placed when it was last heard of; how long, unknown
                run.ended = run.last_seen
            self._count(run)

    def _count(self, run: _Run) -> None:
        tally, status = self.tally, run.status
        assert status is not None  # noqa: S101 - only runs that ended are counted
        assert run.ended is not None  # noqa: S101 - every run that ended has a time
        tally.statuses[status] += 1
        start = _floor(run.ended, self.bucket)
        tally.series.runs.setdefault(start, Counter())[status] += 1
        if status.executed and run.duration_s is not None and run.duration_s >= 0:
            tally.durations.append(run.duration_s)
            tally.series.points.append(
                Point(run.ended, run.duration_s, str(status), tally.agent, run.run_id)
            )
        if status.failed or status == RunStatus.ABORTED:
            tally.errors[status] += 1
            message = run.error or f"{tally.agent}: {_UNSAID.get(status, status)}"
            tally.messages[message] += 1
            tally.last_seen[message] = max(iso(run.ended), tally.last_seen.get(message, ""))


_UNSAID = {
    RunStatus.CRASHED: "the process died; the next run recovered its journal",
    RunStatus.TIMEOUT: "the run passed its hard deadline and was ended",
}
"""What a run that could not say why it ended is listed as, among the errors."""


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


_HANDLERS = {
    "run.started": _Reader._started,  # noqa: SLF001 - the table of the class's own methods
    "run.finished": _Reader._finished,  # noqa: SLF001
    "run.skipped": _Reader._skipped,  # noqa: SLF001
    "run.aborted": _Reader._aborted,  # noqa: SLF001
    "run.abandoned": _Reader._abandoned,  # noqa: SLF001
    "run.failed": _Reader._failed,  # noqa: SLF001
    "run.stopped": _Reader._failed,  # noqa: SLF001
    "run.recovered": _Reader._recovered,  # noqa: SLF001
    "run.deadline_passed": _Reader._deadline,  # noqa: SLF001
    "retry.attempt": _Reader._retry,  # noqa: SLF001
    "circuit.opened": _Reader._circuit,  # noqa: SLF001
    "action.committed": _Reader._action,  # noqa: SLF001
    "action.skipped": _Reader._action,  # noqa: SLF001
    "action.undone": _Reader._action,  # noqa: SLF001
    "action.failed": _Reader._action,  # noqa: SLF001
    "budget.spent": _Reader._spent,  # noqa: SLF001
    "budget.reserved": _Reader._reserved,  # noqa: SLF001
    "budget.settled": _Reader._settled,  # noqa: SLF001
    "review.held": _Reader._held,  # noqa: SLF001
    "review.approved": _Reader._reviewed,  # noqa: SLF001
    "review.rejected": _Reader._reviewed,  # noqa: SLF001
    "review.dropped": _Reader._reviewed,  # noqa: SLF001
}


_WANTED = frozenset(_HANDLERS)


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
        step = timedelta(seconds=BUCKETS[self.bucket])
        start, end = _floor(self.since, self.bucket), self.until
        starts = []
        while start <= end:
            starts.append(start)
            start += step
        return starts

    def days(self) -> list[datetime]:
        """The start of every day (UTC) of the period, oldest first."""
        start, starts = _floor(self.since, "day"), []
        while start <= self.until:
            starts.append(start)
            start += timedelta(days=1)
        return starts


def report_from_logs(logs: Mapping[str, Path], *, now: datetime, since_s: float) -> Report:
    """The report of ``logs`` (agent name -> log path) over ``since_s`` seconds up to ``now``."""
    since = now - timedelta(seconds=since_s)
    bucket = bucket_for(since_s)
    agents: dict[str, dict[str, Any]] = {}
    total = _Tally("total")
    for name in sorted(logs):
        tally = _Reader(name, since=since, until=now, bucket=bucket).read(
            _lines_since(logs[name], since)
        )
        agents[name] = tally.figures()
        total.merge(tally)
    return Report(since, now, bucket, agents, total.figures(), total.series)


def _lines_since(path: Path, since: datetime) -> Iterable[LogLine]:
    # A rotated file last written before the period holds nothing of it: its
    # modification time is that of its last line (a rename keeps it).
    cutoff = since.timestamp()
    for file in log_files(path):
        try:
            if file != path and file.lstat().st_mtime < cutoff:
                continue
        except OSError:
            continue
        yield from scan_file(file, _WANTED)


def build_report(
    project: Project, names: Iterable[str] | None = None, *, now: datetime, since_s: float
) -> Report:
    """The report of ``names`` (default: every agent, and every log of one no longer there)."""
    if names is None:
        found = set(project.agent_names())
        try:
            with os.scandir(project.logs_dir) as entries:
                found |= {
                    entry.name.removesuffix(".jsonl")
                    for entry in entries
                    if entry.name.endswith(".jsonl") and _is_agent_name(entry.name[:-6])
                }
        except FileNotFoundError:
            pass
        names = found
    return report_from_logs(
        {name: project.log_path(name) for name in names}, now=now, since_s=since_s
    )


def _is_agent_name(name: str) -> bool:
    from agentops.errors import UsageError  # noqa: PLC0415
    from agentops.project import check_agent_name  # noqa: PLC0415

    try:
        check_agent_name(name)
    except UsageError:
        return False
    return True
