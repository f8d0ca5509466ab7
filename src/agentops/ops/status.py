"""What every agent is doing, as people and scripts read it: ``agentops status`` and ``health``.

A read model: it reads agent.toml, the state, and the small records the store
keeps beside it (last attempt, pause, lease holder). It never imports agent
code, never takes a lock, and never reads a ledger (``ledger_summary`` says
what it needs), so a status over hundreds of agents stays cheap.

Health, most pressing first (an agent has the first that applies):

=================  ===========================================================
``paused``         an operator paused it (``agentops pause``)
``blocked``        a process that is not a run of it holds its lock: every run is skipped
``circuit_open``   the same failure repeated: runs are skipped until the cooldown
``unresolved``     a guarded action's effect is unknown after a crash
``failing``        its last run failed (or timed out, crashed, was rejected...)
``over_budget``    a cost window has no room: runs are skipped until it has
``running``        a run holds its lease now
``stale``          no success since the schedule's last tick, plus a grace
``never_run``      it has never run, and no tick was due since it was set up
``ok``             none of the above
``broken``         its agent.toml or state cannot be read (``why`` says what)
=================  ===========================================================

``agentops health`` is content with ``ok``, ``running``, ``paused`` and
``never_run``; any other needs a human. A last run that succeeded but was
slow (:mod:`agentops.notify.slow`) is no health: the row's ``slow`` says so.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from agentops._infra.procs import command_of
from agentops._infra.timestamps import iso, iso_second
from agentops.errors import AgentOpsError
from agentops.guards.costs import full_window
from agentops.model.money import LONGEST_WINDOW_S
from agentops.model.status import RunStatus
from agentops.notify.slow import slow_run
from agentops.project.schedule import next_run, previous_run
from agentops.store.base import StoreMisconfigured, StoreUnavailable

if TYPE_CHECKING:
    from datetime import tzinfo

    from agentops.model.state import AgentState
    from agentops.project.home import AgentSpec, Project
    from agentops.store import Attempt, Holder, Pause, Store

__all__ = ["CONTENT", "HEALTHS", "ROW_KEYS", "AgentStatus", "agent_status", "project_status"]

HEALTHS = (
    "paused",
    "blocked",
    "circuit_open",
    "unresolved",
    "failing",
    "over_budget",
    "running",
    "stale",
    "never_run",
    "ok",
    "broken",
)
"""Every health an agent can have."""

CONTENT = frozenset({"ok", "running", "paused", "never_run"})
"""The healths that need nobody: ``agentops health`` exits 0 when every agent has one."""

ROW_KEYS = (
    "agent",
    "description",
    "schedule",
    "health",
    "why",
    "last_run",
    "last_success_at",
    "last_attempt",
    "next_run",
    "consecutive_failures",
    "circuit",
    "paused",
    "running",
    "unresolved",
    "held",
    "escalated",
    "spent_usd_24h",
    "cost_usd_per_day",
    "slow",
)
"""The keys of a row of ``agentops status --json``, in order: a stable interface."""


Verdict = tuple[str, str | None]
"""A health, and why."""


class AgentStatus(NamedTuple):
    """One agent's row: its health and the facts it was judged on."""

    agent: str
    health: str
    why: str | None
    """One line saying why the health is not ``ok`` (None when it is)."""
    row: dict[str, Any]
    """The row as ``agentops status --json`` prints it (documented keys)."""


def project_status(
    project: Project,
    store: Store,
    *,
    now: datetime,
    zone: tzinfo,
) -> list[AgentStatus]:
    """The status of every agent, sorted by name."""
    return [
        agent_status(project, store, name, now=now, zone=zone) for name in project.agent_names()
    ]


def agent_status(
    project: Project, store: Store, name: str, *, now: datetime, zone: tzinfo
) -> AgentStatus:
    """The status of the agent ``name``; ``broken`` if its files cannot be read."""
    try:
        spec = project.agent(name)
        state = store.load(name)
        attempt = store.last_attempt(name)
        pause = store.pause(name)
        holder = store.holder(name)
    except (StoreUnavailable, StoreMisconfigured):  # no agent's status can be: stop (74, 78)
        raise
    except AgentOpsError as exc:
        return AgentStatus(name, "broken", exc.message, _broken_row(name, exc.message))
    facts = _Facts(spec, state, attempt, pause, holder, now=now, zone=zone)
    health, why = facts.judge()
    return AgentStatus(name, health, why, facts.row(health, why))


class _Facts:
    """What is known of one agent, and the judgement of its health."""

    def __init__(
        self,
        spec: AgentSpec,
        state: AgentState,
        attempt: Attempt | None,
        pause: Pause | None,
        holder: Holder | None,
        *,
        now: datetime,
        zone: tzinfo,
    ) -> None:
        self.spec = spec
        self.state = state
        self.attempt = attempt
        self.pause = pause
        self.holder = holder
        self.now = now
        local = now.astimezone(zone)
        schedule = spec.config.schedule
        self.next_run = next_run(schedule, local) if schedule else None
        grace = timedelta(seconds=spec.config.grace_s)
        self.due = previous_run(schedule, local - grace) if schedule else None
        """The last tick whose run should have succeeded by now."""

    def judge(self) -> tuple[str, str | None]:
        """The health, and why: the first check, most pressing first, that applies."""
        checks = (
            self._paused,
            self._blocked,
            self._circuit_open,
            self._unresolved,
            self._failing,
            self._over_budget,
            self._running,
            self._stale,
        )
        for check in checks:
            verdict = check()
            if verdict is not None:
                return verdict
        return ("never_run", None) if self.state.last_run is None else ("ok", None)

    def _paused(self) -> Verdict | None:
        pause = self.pause
        if pause is None or not pause.holds(self.now):
            return None
        until = f" until {iso_second(pause.until)}" if pause.until else ""
        return "paused", f"paused{until}" + (f": {pause.reason}" if pause.reason else "")

    def _circuit_open(self) -> Verdict | None:
        circuit = self.state.circuit
        if circuit.state != "open" or circuit.until is None or circuit.until <= self.now:
            return None
        return "circuit_open", f"circuit open until {iso(circuit.until)}: {circuit.reason}"

    def _unresolved(self) -> Verdict | None:
        unresolved = self.state.ledger_summary.unresolved
        if not unresolved:
            return None
        action, key = unresolved[0]
        return "unresolved", f"{len(unresolved)} unresolved action(s), first {action} {key!r}"

    def _failing(self) -> Verdict | None:
        last = self.state.last_run
        if last is not None and last.status.failed:
            return "failing", f"{self.state.consecutive_failures} failed run(s): {last.error}"
        refused = self._refused_attempt()
        return None if refused is None else ("failing", refused)

    def _blocked(self) -> Verdict | None:
        holder = self.holder
        if holder is None or not holder.stray:
            return None
        who = f"pid {holder.pid} ({command_of(holder.pid)})" if holder.pid else "a process"
        return (
            "blocked",
            f"{who} holds its lock and is not a run of it: runs are skipped until it ends",
        )

    def _running(self) -> Verdict | None:
        return None if self.holder is None or self.holder.stray else ("running", None)

    def _stale(self) -> Verdict | None:
        if self.due is None or self._succeeded_since(self.due):
            return None
        if (
            self.state.last_run is None
            and self.attempt is None
            and not self._set_up_before(self.due)
        ):
            return "never_run", None
        return "stale", f"no successful run since the tick at {iso(self.due)}"

    def _refused_attempt(self) -> str | None:
        # Runs that cannot even start (a broken agent.toml or state, params the
        # model refuses) leave no last_run: only their attempt says so. By hand
        # only such breakage counts; from cron, any refusal.
        attempt, last = self.attempt, self.state.last_run
        if attempt is None or (last is not None and attempt.at <= last.finished_at):
            return None
        broken = attempt.status == RunStatus.ABORTED
        refused = attempt.scheduled and attempt.status == RunStatus.REJECTED
        if not (broken or refused):
            return None
        return f"the last attempt, at {iso(attempt.at)}, could not start (exit {attempt.exit_code})"

    def _over_budget(self) -> Verdict | None:
        full = full_window(self.spec.config.limits, self.state.budget, self.now)
        if full is None:
            return None
        window, room_in = full
        when = "ever" if room_in == float("inf") else f"{room_in:.0f}s"
        return "over_budget", f"{window.name} {window.cap_usd:g} has no room for {when}"

    def _succeeded_since(self, tick: datetime) -> bool:
        success = self.state.last_success_at
        return success is not None and success >= tick

    def _set_up_before(self, tick: datetime) -> bool:
        # Without a run or an attempt, only agent.toml says since when the agent exists.
        try:
            written = (self.spec.directory / "agent.toml").stat().st_mtime
        except OSError:
            return False
        return datetime.fromtimestamp(written, UTC) <= tick

    def row(self, health: str, why: str | None) -> dict[str, Any]:
        state, config = self.state, self.spec.config
        last = state.last_run
        cap = config.limits.cost_usd_per_day
        return {
            "agent": self.spec.name,
            "description": config.description,
            "schedule": config.schedule,
            "health": health,
            "why": why,
            "last_run": None
            if last is None
            else {
                "run_id": last.run_id,
                "status": str(last.status),
                "started_at": iso(last.started_at),
                "finished_at": iso(last.finished_at),
                "duration_s": last.duration_s,
                "error": last.error,
            },
            "last_success_at": _iso(state.last_success_at),
            "last_attempt": None
            if self.attempt is None
            else {
                "at": iso(self.attempt.at),
                "run_id": self.attempt.run_id,
                "status": str(self.attempt.status),
                "exit_code": self.attempt.exit_code,
                "reason": self.attempt.reason,
            },
            "next_run": _iso(self.next_run),
            "consecutive_failures": state.consecutive_failures,
            "circuit": {
                "state": state.circuit.state,
                "until": _iso(state.circuit.until),
                "failures": state.circuit.failures,
            },
            "paused": None
            if self.pause is None or not self.pause.holds(self.now)
            else {
                "at": iso(self.pause.at),
                "reason": self.pause.reason,
                "until": _iso(self.pause.until),
            },
            "running": None
            if self.holder is None or self.holder.stray
            else {
                "pid": self.holder.pid,
                "host": self.holder.host,
                "run_id": self.holder.run_id,
                "since": iso(self.holder.since),
            },
            "unresolved": len(state.ledger_summary.unresolved),
            "held": sum(not held.escalated for held in state.review),
            "escalated": sum(held.escalated for held in state.review),
            "spent_usd_24h": round(state.budget.spent(LONGEST_WINDOW_S, self.now), 6),
            "cost_usd_per_day": cap,
            "slow": _slow(state, config.expected_duration),
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def _slow(state: AgentState, expected_s: float | None) -> dict[str, Any] | None:
    slow = slow_run(state, expected_s)
    return None if slow is None else slow._asdict()


def _broken_row(name: str, why: str) -> dict[str, Any]:
    return dict.fromkeys(ROW_KEYS) | {"agent": name, "health": "broken", "why": why}
