"""Counting one agent's log: what each invocation did, and what was spent, acted and reviewed.

:class:`Reader` goes through the lines of a period once and keeps, per run
id, how the invocation began and ended; then it counts them into a
:class:`Tally` with everything else the lines say (retries, circuit
openings, actions, spends, review). :mod:`agentops.ops.report` turns
tallies into figures.

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
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from agentops._infra.timestamps import iso
from agentops.model.status import RunStatus
from agentops.ops.logs import line_time

if TYPE_CHECKING:
    from collections.abc import Iterable

    from agentops.ops.logs import LogLine

__all__ = ["EVENTS", "Point", "Reader", "Series", "Tally", "floor", "percentile"]

_TIMEOUT_STATUS = RunStatus.TIMEOUT


def percentile(ordered: list[float], fraction: float) -> float | None:
    """The ``fraction`` percentile of sorted values, interpolated linearly (numpy's default)."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def floor(moment: datetime, bucket: str) -> datetime:
    """The start of the hour, day (UTC) or week (from Monday) ``moment`` falls in."""
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
class Tally:
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

    def merge(self, other: Tally) -> None:
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


def _number(value: object) -> float | None:
    """A finite number read from a log line (a boolean or ``"NaN"`` is none)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class Reader:
    """Reads one agent's lines into a :class:`Tally`."""

    def __init__(self, agent: str, *, since: datetime, until: datetime, bucket: str) -> None:
        """Count ``agent``'s lines stamped from ``since`` to ``until``; runs by ``bucket``."""
        self.tally = Tally(agent)
        self.handlers = {event: getattr(self, name) for event, name in _HANDLERS.items()}
        self.since = since
        self.until = until
        self.bucket = bucket
        self.runs: dict[str, _Run] = {}
        self.reserved: dict[str, tuple[float, int]] = {}

    def read(self, lines: Iterable[LogLine]) -> Tally:
        """Count ``lines`` (oldest first), then the invocations they told of."""
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
            handler = self.handlers.get(name) if isinstance(name, str) else None
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
            handler(event, moment, run_id)
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
        day = floor(moment, "day")
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
        start = floor(run.ended, self.bucket)
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


_HANDLERS = {  # event -> the method of Reader that counts it
    "run.started": "_started",
    "run.finished": "_finished",
    "run.skipped": "_skipped",
    "run.aborted": "_aborted",
    "run.abandoned": "_abandoned",
    "run.failed": "_failed",
    "run.stopped": "_failed",
    "run.recovered": "_recovered",
    "run.deadline_passed": "_deadline",
    "retry.attempt": "_retry",
    "circuit.opened": "_circuit",
    "action.committed": "_action",
    "action.skipped": "_action",
    "action.undone": "_action",
    "action.failed": "_action",
    "budget.spent": "_spent",
    "budget.reserved": "_reserved",
    "budget.settled": "_settled",
    "review.held": "_held",
    "review.approved": "_reviewed",
    "review.rejected": "_reviewed",
    "review.dropped": "_reviewed",
}


EVENTS = frozenset(_HANDLERS)
"""The events a tally counts: the only lines of a log it needs to parse."""
