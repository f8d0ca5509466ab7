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

Every number read from a line is checked before it is counted: a duration,
a cost or a token count that is not a finite number within what agentops
could have logged (:data:`~agentops.model.money.MAX_USD`,
:data:`~agentops.model.money.MAX_TOKENS`, ten years) makes the line
unreadable, as a line that is not JSON is. A result's ``confidence`` is the
agent's own field: only a number from 0 to 1 is taken as one.

Memory stays bounded however long the log: an invocation is counted as
soon as it ends, durations and confidences are kept as a sample past
:data:`~agentops.ops._sample.MAX_SAMPLE` values, and the commonest errors
are counted among at most :data:`MAX_MESSAGES` distinct messages.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentops._infra.timestamps import iso
from agentops.model.status import RunStatus
from agentops.ops._numbers import (
    MAX_DURATION_S,
    Unreadable,
    amounts_of,
    bounded,
    confidence_of,
    id_of,
    run_of,
)
from agentops.ops._sample import Sample
from agentops.ops.logs import line_time
from agentops.ops.series import Ending, Point, Series, floor

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from agentops.ops.logs import LogLine

__all__ = [
    "EVENTS",
    "MAX_KEYS",
    "MAX_MESSAGES",
    "MAX_OPEN",
    "MESSAGE_CHARS",
    "Point",
    "Reader",
    "Series",
    "Tally",
    "floor",
    "percentile",
]

_TIMEOUT_STATUS = RunStatus.TIMEOUT

MAX_MESSAGES = 10_000
"""Distinct error messages counted at most; past this, the rarest half is forgotten."""

MESSAGE_CHARS = 1000
"""An error message is counted by its first this many characters."""

MAX_KEYS = 100
"""Distinct skip reasons, or retry categories, counted at most; the rest count as ``other``."""

MAX_OPEN = 100_000
"""Runs started and not ended yet (or reservations not settled) kept at most; the oldest go."""


def percentile(ordered: list[float], fraction: float) -> float | None:
    """The ``fraction`` percentile of sorted values, interpolated linearly (numpy's default)."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


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


@dataclass(slots=True)
class ToolTally:
    """One tool's calls (``llm.tool_call``): how many, how many failed, how long each took."""

    calls: int = 0
    errors: int = 0
    durations_ms: Sample = field(default_factory=Sample)

    def merge(self, other: ToolTally) -> None:
        """Add ``other``'s calls to these."""
        self.calls += other.calls
        self.errors += other.errors
        self.durations_ms.merge(other.durations_ms)


@dataclass(slots=True)
class Tally:
    """Everything counted for one agent (or for all of them)."""

    agent: str
    statuses: Counter[str] = field(default_factory=Counter)
    skip_reasons: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)
    last_seen: dict[str, str] = field(default_factory=dict)
    retries: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    review: Counter[str] = field(default_factory=Counter)
    confidences: Sample = field(default_factory=Sample)
    durations: Sample = field(default_factory=Sample)
    usd: float = 0.0
    tokens: int = 0
    series: Series = field(default_factory=Series)
    tools: dict[str, ToolTally] = field(default_factory=dict)
    """Tool name -> its calls (a model's invented names past MAX_KEYS counted as ``other``)."""
    offered: set[str] = field(default_factory=set)
    """The tools ``ctx.llm.run`` offered a model (``llm.tools_offered``)."""

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
        self.durations.merge(other.durations)
        self.confidences.merge(other.confidences)
        self.usd += other.usd
        self.tokens += other.tokens
        self.series.merge(other.series)
        for name, tool in other.tools.items():
            self.tools.setdefault(name, ToolTally()).merge(tool)
        self.offered |= other.offered
        self._forget_rare_messages()

    def error(self, message: str, when: str) -> None:
        """Count one error ``message``, last seen ``when``."""
        message = message[:MESSAGE_CHARS]
        self.messages[message] += 1
        self.last_seen[message] = max(when, self.last_seen.get(message, ""))
        self._forget_rare_messages()

    def _forget_rare_messages(self) -> None:
        if len(self.messages) <= MAX_MESSAGES:
            return
        for message, _count in self.messages.most_common()[MAX_MESSAGES // 2 :]:
            del self.messages[message]
            del self.last_seen[message]


def _key(counter: Counter[str], value: object) -> str:
    """The key ``value`` is counted under: itself if it is text and room is left, else a word."""
    if not isinstance(value, str):
        return "unknown"
    return value if value in counter or len(counter) < MAX_KEYS else "other"


class Reader:
    """Reads one agent's lines into a :class:`Tally`."""

    def __init__(
        self, agent: str, *, since: datetime, until: datetime, bucket: str, grain: str
    ) -> None:
        """Count ``agent``'s lines stamped from ``since`` to ``until``.

        Invocations are kept by ``grain`` (the series' finest buckets), and
        given by ``bucket`` (the period's) as the series' ``runs``.
        """
        self.tally = Tally(agent, series=Series(grain=grain, bucket=bucket))
        self.handlers = {event: getattr(self, name) for event, name in _HANDLERS.items()}
        self.since = since
        self.until = until
        self.runs: dict[str, _Run] = {}
        """Runs heard of that have not ended (yet)."""
        self.done: dict[str, None] = {}
        """The ids of the runs that ended last (a later line may name one)."""
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
            try:
                handler(event, moment, run_of(run_id))
            except Unreadable:
                counts["unreadable_lines"] += 1
        self._finish()
        return self.tally

    def _run(self, run_id: str, moment: datetime) -> _Run:
        run = self.runs.get(run_id)
        if run is None:
            if len(self.runs) >= MAX_OPEN:  # the oldest left open: it will never be heard of
                self._settle(self.runs.pop(next(iter(self.runs))))
            run = self.runs[run_id] = _Run(run_id)
        run.last_seen = moment
        return run

    def _ended(self, run: _Run) -> None:
        """Count a run that ended, and forget it."""
        self.runs.pop(run.run_id, None)
        if len(self.done) >= MAX_OPEN:
            del self.done[next(iter(self.done))]
        self.done[run.run_id] = None
        self._count(run)

    # -- the events --------------------------------------------------------------------

    def _started(self, _event: dict[str, Any], moment: datetime, run_id: str) -> None:
        self._run(run_id, moment).started = moment

    def _finished(self, event: dict[str, Any], moment: datetime, run_id: str) -> None:
        status = event.get("status")
        if not isinstance(status, str) or status not in _STATUSES:
            raise Unreadable
        duration = bounded(event.get("duration_s"), MAX_DURATION_S)
        run = self._run(run_id, moment)
        run.status, run.ended, run.duration_s = RunStatus(status), moment, duration
        if event.get("degraded") is True:
            self.tally.counts["degraded"] += 1
        confidence = confidence_of(event.get("result"))
        if confidence is not None:
            self.tally.confidences.add(confidence)
        self._ended(run)

    def _skipped(self, event: dict[str, Any], moment: datetime, run_id: str) -> None:
        run = self._run(run_id, moment)
        run.status, run.ended = RunStatus.SKIPPED, moment
        reasons = self.tally.skip_reasons
        reasons[_key(reasons, event.get("reason"))] += 1
        self._ended(run)

    def _aborted(self, event: dict[str, Any], moment: datetime, run_id: str) -> None:
        run = self._run(run_id, moment)
        run.status, run.ended = RunStatus.ABORTED, moment
        run.error = _text(event.get("error")) or run.error
        self._ended(run)

    def _abandoned(self, _event: dict[str, Any], moment: datetime, run_id: str) -> None:
        run = self._run(run_id, moment)
        run.status, run.ended = _TIMEOUT_STATUS, moment  # as the next run records it
        if run.started is not None:
            run.duration_s = (moment - run.started).total_seconds()
        self._ended(run)

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
        if isinstance(dead, str) and dead not in self.done:
            run = self.runs.get(dead) or self.runs.setdefault(dead, _Run(dead, last_seen=moment))
            run.deadline = True

    def _retry(self, event: dict[str, Any], _moment: datetime, _run_id: str) -> None:
        retries = self.tally.retries
        retries[_key(retries, event.get("category"))] += 1

    def _circuit(self, _event: dict[str, Any], _moment: datetime, _run_id: str) -> None:
        self.tally.counts["circuit_openings"] += 1

    def _action(self, event: dict[str, Any], _moment: datetime, _run_id: str) -> None:
        self.tally.actions[str(event["event"]).removeprefix("action.")] += 1

    def _spent(self, event: dict[str, Any], moment: datetime, _run_id: str) -> None:
        self._cost(moment, *amounts_of(event))

    def _reserved(self, event: dict[str, Any], moment: datetime, _run_id: str) -> None:
        usd, tokens = amounts_of(event)
        if len(self.reserved) >= MAX_OPEN:  # the oldest never settled: it stays spent
            del self.reserved[next(iter(self.reserved))]
        self.reserved[id_of(event)] = (usd, tokens)
        self._cost(moment, usd, tokens)

    def _settled(self, event: dict[str, Any], moment: datetime, _run_id: str) -> None:
        # A settlement replaces its reservation (if the reservation is in the period).
        usd, tokens = amounts_of(event)
        was_usd, was_tokens = self.reserved.pop(id_of(event), (0.0, 0))
        self._cost(moment, usd - was_usd, tokens - was_tokens)

    def _cost(self, moment: datetime, usd: float, tokens: int) -> None:
        self.tally.usd += usd
        self.tally.tokens += tokens
        self.tally.series.spent(moment, usd)

    def _held(self, event: dict[str, Any], _moment: datetime, _run_id: str) -> None:
        if event.get("again") is True:  # a tool call held already: one hold, asked again
            return
        self.tally.review["escalated" if event.get("escalated") is True else "held"] += 1

    def _tool_call(self, event: dict[str, Any], _moment: datetime, _run_id: str) -> None:
        if event.get("held") is True:  # not performed: counted when it is approved
            return
        tools = self.tally.tools
        name = event.get("tool")
        known = isinstance(name, str) and (name in tools or len(tools) < MAX_KEYS)
        tool = tools.setdefault(str(name) if known else "other", ToolTally())
        tool.calls += 1
        tool.errors += event.get("ok") is not True
        duration = event.get("duration_ms")
        if isinstance(duration, int | float) and not isinstance(duration, bool) and duration >= 0:
            tool.durations_ms.add(float(duration))

    def _tools_offered(self, event: dict[str, Any], _moment: datetime, _run_id: str) -> None:
        offered = event.get("tools")
        if isinstance(offered, list) and len(self.tally.offered) < MAX_KEYS:
            self.tally.offered.update(name for name in offered if isinstance(name, str))

    def _reviewed(self, event: dict[str, Any], _moment: datetime, _run_id: str) -> None:
        self.tally.review[str(event["event"]).removeprefix("review.")] += 1

    # -- the end -----------------------------------------------------------------------

    def _finish(self) -> None:
        for run in self.runs.values():
            self._settle(run)
        self.runs.clear()

    def _settle(self, run: _Run) -> None:
        """Count a run that never said it ended: it died, passed its deadline, or is running."""
        if run.deadline:
            run.status = _TIMEOUT_STATUS
        elif run.recovered:
            run.status = RunStatus.CRASHED
        else:
            if run.started is not None:
                self.tally.counts["unfinished"] += 1
            return
        run.ended = run.last_seen  # died: placed when it was last heard of; how long, unknown
        self._count(run)

    def _count(self, run: _Run) -> None:
        tally, status = self.tally, run.status
        assert status is not None  # noqa: S101 - only runs that ended are counted
        assert run.ended is not None  # noqa: S101 - every run that ended has a time
        tally.statuses[status] += 1
        duration = run.duration_s if status.executed and run.duration_s is not None else None
        tally.series.ended(Ending(run.ended, str(status), run.run_id, duration))
        if duration is not None and duration >= 0:
            tally.durations.add(duration)
            tally.series.add_point(Point(run.ended, duration, str(status), tally.agent, run.run_id))
        if status.failed or status == RunStatus.ABORTED:
            tally.errors[status] += 1
            tally.error(
                run.error or f"{tally.agent}: {_UNSAID.get(status, status)}", iso(run.ended)
            )


_UNSAID = {
    RunStatus.CRASHED: "the process died; the next run recovered its journal",
    RunStatus.TIMEOUT: "the run passed its hard deadline and was ended",
}
"""What a run that could not say why it ended is listed as, among the errors."""


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


_STATUSES = frozenset(str(status) for status in RunStatus)


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
    "llm.tool_call": "_tool_call",
    "llm.tools_offered": "_tools_offered",
}


EVENTS = frozenset(_HANDLERS)
"""The events a tally counts: the only lines of a log it needs to parse."""
