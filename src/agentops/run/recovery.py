"""Recovering a run that died: fold its journal in, and record how it ended.

At every start, under the agent's lease and before anything else, the
invocation (:mod:`agentops.run.invocation`) looks for what a dead run left behind:

- its **journal** (a run killed, or crashed): the records are folded into
  the state and the ledger (:func:`agentops.model.journal.recover`), so nothing it
  committed is lost and nothing it may have done is blindly redone;
- its **deadline marker** (:mod:`agentops.run.deadline`): the run was ended by
  its hard deadline, or abandoned for swallowing its stop. It is the local
  file the run wrote, or the copy published to a store shared by hosts
  (:mod:`agentops.run.markers`), found wherever the next run starts;
  :func:`marker_of` picks the one that tells of the dead run.

The dead run is then recorded like any run (:func:`agentops.run.ending.record_run`),
from its :class:`~agentops.model.outcome.Outcome`: as ``timeout`` if its
deadline ended it, so the breaker counts it, else as ``crashed``. Recording is
idempotent: a run already recorded is not again.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from agentops.guards import rates
from agentops.model.journal import needs_ledger, recover
from agentops.model.outcome import Outcome
from agentops.model.status import RunStatus
from agentops.run.deadline import hard_deadline_s
from agentops.run.ending import record_run

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from pydantic import BaseModel

    from agentops._infra.log import EventLogger
    from agentops.model.ledger import Ledger
    from agentops.model.state import AgentState
    from agentops.project.home import AgentSpec
    from agentops.run.deadline import Marker

__all__ = ["marker_of", "recorded", "recover_dead_run"]

CRASHED_MESSAGE = "the run died before it finished (killed or crashed); its journal was recovered"


def marker_of(
    state: AgentState, records: list[BaseModel] | None, markers: Sequence[Marker]
) -> Marker | None:
    """Of the ``markers`` found (published first, then the local one), the one to recover with.

    With a journal, the marker of the journal's run; without, the first
    ended run not recorded already. The same run's marker found twice (in
    the store and in the local file) is one marker: its run is recorded once.
    """
    if records:
        run_id = getattr(records[0], "run_id", None)
        return next((m for m in markers if m.run_id == run_id), markers[0] if markers else None)
    unrecorded = (m for m in markers if m.ended and not recorded(state, m.run_id))
    return next(unrecorded, markers[0] if markers else None)


def recover_dead_run(
    state: AgentState,
    spec: AgentSpec,
    *,
    records: list[BaseModel] | None,
    marker: Marker | None,
    ledger: Callable[[], Ledger],
    log: EventLogger,
    log_path: Path,
) -> Outcome | None:
    """Fold a dead run's journal ``records`` into ``state`` and record the run that left them.

    ``ledger`` loads the ledger, if the records touch it. The caller commits.
    Returns the outcome of the dead run, if one was recorded now (its
    ``circuit`` says whether that opened the circuit); ``log_path`` is the
    agent's log, for it.
    """
    ended = marker if marker is not None and marker.ended else None
    if records:
        loaded = ledger() if needs_ledger(records) else None
        recovered = recover(state, loaded, records)
        if not recovered.new:
            return None
        unresolved = loaded.unresolved() if loaded is not None else []
        log.warning(
            "run.recovered",
            crashed_run=recovered.run_id,
            records=recovered.records,
            unresolved=[f"{a}:{k}" for a, k in unresolved[:20]],
        )
        if recovered.kind != "run":
            return None
        timed_out = ended is not None and ended.run_id == recovered.run_id
        rates.count_run(state, recovered.started_at)
        return _record_death(
            state,
            spec,
            log,
            log_path,
            run_id=recovered.run_id,
            started=recovered.started_at,
            last_seen=recovered.last_at,
            words=ended.last_words if timed_out and ended is not None else None,
        )
    if ended is not None and ended.kind != "run":
        log.warning(
            "run.deadline_passed", dead_run=ended.run_id, kind=ended.kind, stack=ended.last_words
        )
        return None
    if ended is not None and not recorded(state, ended.run_id):
        # Ended before it wrote a journal (stuck importing its code, say). A
        # marker a frozen host kept of a run another host recovered already (as
        # crashed) is not that run's second death: it was recorded once.
        return _record_death(
            state,
            spec,
            log,
            log_path,
            run_id=ended.run_id,
            started=ended.started_at,
            last_seen=ended.started_at + timedelta(seconds=hard_deadline_s(spec.config.timeout)),
            words=ended.last_words,
        )
    return None


def recorded(state: AgentState, run_id: str) -> bool:
    """Whether the run ``run_id`` is recorded in ``state`` already (as its last run or an error).

    Every dead run is recorded with an error (its message): the errors keep
    the recent ones, whatever succeeded since.
    """
    last = state.last_run
    return (last is not None and last.run_id == run_id) or any(
        error.run_id == run_id for error in state.errors
    )


def _record_death(
    state: AgentState,
    spec: AgentSpec,
    log: EventLogger,
    log_path: Path,
    *,
    run_id: str,
    started: datetime,
    last_seen: datetime,
    words: str | None,
) -> Outcome:
    failure = None
    if words is None:
        status, message = RunStatus.CRASHED, CRASHED_MESSAGE
    else:
        from agentops.guards.failure import Failure  # noqa: PLC0415 - only failed runs need it

        where = _stuck_at(words)
        status = RunStatus.TIMEOUT
        message = (
            f"{spec.name}: the run passed its hard deadline "
            f"({hard_deadline_s(spec.config.timeout):g}s) and was ended"
            + (f", stuck at {where}" if where else "")
        )
        failure = Failure("timeout", message, transient=False)
        log.error("run.deadline_passed", dead_run=run_id, stack=words)
    dead = Outcome(
        agent=spec.name,
        run_id=run_id,
        status=status,
        exit_code=status.exit_code,
        message=message,
        log_path=log_path,
        duration_s=(last_seen - started).total_seconds(),
        started_at=started,
        finished_at=last_seen,
    )
    return dead._replace(circuit=record_run(state, dead, spec.config.circuit, failure=failure))


def _stuck_at(words: str) -> str | None:
    # faulthandler lists every thread, the main one last, each innermost frame
    # first: '  File "/x/agent.py", line 12 in run'. The main thread is the run.
    main = words.rsplit("Thread 0x", 1)[-1]
    match = re.search(r'File "([^"]+)", line (\d+) in (\S+)', main)
    if match is None:
        return None
    return f"{Path(match[1]).name}:{match[2]} in {match[3]}()"
