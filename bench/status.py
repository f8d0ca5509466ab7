"""`agentops status --json` over 500 agents with big ledgers, against `agentops list --json`.

``status`` is what an operator (or ``agentops health`` from cron) runs over a
whole home. It reads each agent's agent.toml and state, and the small records
beside the state (last attempt, pause, lock), and must never import agent
code nor read a ledger: ``ledger_summary`` in the state says what it needs. So
its floor is ``list``, which reads every agent.toml (and computes the next
run) and nothing else; the state files are the difference.

The home: 500 agents, each with a schedule, a daily cost cap, and a state
holding history (a last run, a tenth of them failing with a count of failures
in a row, recent errors, a day of spends, an attempt record) and a ledger of
2,000 entries (one an hour; one agent in 25 has an unresolved action), all written by the product's
own :class:`~agentops.store.file.FileStore`. Measured: the real ``agentops
--home H status --json`` and ``agentops --home H list --json`` (subprocesses,
start-up included, both printing 500 rows), alternating, the median of the
paired ratios kept. Target: at most 2.5x.

    python bench/status.py [--agents 500] [--entries 2000] [--rounds 10] [--target 2.5] [--quick]

Exits 1 if the median ratio passes the target.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _bench import ENV, Row, agentops_executable, alternate, ratio_row, report, write_agent
from agentops._infra.timestamps import iso_second
from agentops.model.ledger import Entry, Ledger
from agentops.model.money import Budget
from agentops.model.state import AgentState, ErrorRecord, LastRun, LedgerSummary, Metrics
from agentops.model.status import RunStatus
from agentops.store import Attempt
from agentops.store.file import FileStore

TARGET = 2.5
FAILING = 10
"""One agent in this many failed its last runs."""
UNRESOLVED = 25
"""One agent in this many has an unresolved action in its ledger (its newest entry)."""

AGENT = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    published: int

def run(params: Params, ctx: Context) -> Result:
    return Result(published=0)
"""

TOML = """
description = "benchmark agent {index}"
schedule = "{minute} * * * *"
timeout = "5m"

[limits]
cost_usd_per_day = 5.0
"""


def ledger_of(entries: int, now: datetime, *, unresolved: bool) -> Ledger:
    """A ledger of ``entries`` actions, one an hour back from now; the newest maybe unresolved."""
    lines = {
        f"post-{i:06d}": Entry(
            iso_second(now - timedelta(hours=i)),
            "unresolved" if unresolved and i == 0 else "committed",
            f"{now - timedelta(hours=i):%Y%m%dT%H%M%SZ}-3fa2c1",
            f'{{"path":"outbox/post-{i:06d}.md"}}',
        ).line
        for i in range(entries)
    }
    ledger = Ledger({"publish": lines})
    ledger.changed = True
    return ledger


def state_of(name: str, index: int, ledger: Ledger, now: datetime) -> AgentState:
    """A state with history: runs every hour, the last one failed for every tenth agent."""
    failing = index % FAILING == 0
    finished = now - timedelta(minutes=20)
    run_id = f"{finished:%Y%m%dT%H%M%SZ}-{index:06x}"
    budget = Budget()
    for hour in range(23, -1, -1):
        at = now - timedelta(hours=hour, minutes=20)
        budget.record(at=at, run_id=f"{at:%Y%m%dT%H%M%SZ}-{index:06x}", usd=0.01, tokens=900)
    state = AgentState(
        agent=name,
        last_run=LastRun(
            run_id=run_id,
            started_at=finished - timedelta(seconds=42),
            finished_at=finished,
            status=RunStatus.FAILED if failing else RunStatus.SUCCEEDED,
            duration_s=42.0,
            error="RuntimeError: the feed is down" if failing else None,
        ),
        last_success_at=finished - timedelta(hours=3) if failing else finished,
        consecutive_failures=3 if failing else 0,
        metrics=Metrics(runs=2000, succeeded=1990, failed=10, tokens=1_800_000, cost_usd=20.0),
        budget=budget,
        ledger_summary=LedgerSummary.of(ledger.entries),
    )
    for hours in (3, 2, 1) if failing else (400,):
        at = finished - timedelta(hours=hours)
        state.record_error(
            ErrorRecord(
                at=at,
                run_id=f"{at:%Y%m%dT%H%M%SZ}-{index:06x}",
                category=RunStatus.FAILED,
                message="RuntimeError: the feed is down",
            )
        )
    return state


def build_home(home: Path, agents: int, entries: int, now: datetime) -> list[str]:
    """Write ``agents`` agents, their states, ledgers and attempts under ``home``; their names."""
    store = FileStore(home / "state")
    names = [f"agent-{index:04d}" for index in range(agents)]
    ledgers = {flag: ledger_of(entries, now, unresolved=flag) for flag in (False, True)}
    for index, name in enumerate(names):
        write_agent(home, name, AGENT, TOML.format(index=index, minute=index % 60))
        ledger = ledgers[index % UNRESOLVED == 0]
        ledger.changed = True  # the last commit cleared it: write it for this agent too
        state = state_of(name, index, ledger, now)
        with store.lease(name, run_id=state.last_run.run_id if state.last_run else "x") as lease:
            store.commit(lease, state, ledger=ledger)
        last = state.last_run
        if last is not None:
            store.record_attempt(
                name,
                Attempt(
                    at=last.started_at,
                    run_id=last.run_id,
                    status=last.status,
                    exit_code=last.status.exit_code,
                    scheduled=True,
                ),
            )
    if len(store.load_ledger(names[-1])) != entries:
        sys.exit("a ledger did not load back whole")
    return names


def printed_s(command: list[str], rows: int) -> float:
    """Seconds a subprocess took; it must exit 0 and print a JSON array of ``rows`` rows."""
    started = time.perf_counter()
    done = subprocess.run(command, env=ENV, check=False, capture_output=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(
            f"{' '.join(command)} exited {done.returncode}: "
            f"{done.stderr.decode(errors='replace').strip()}"
        )
    printed = json.loads(done.stdout)
    if len(printed) != rows:
        sys.exit(f"{' '.join(command)} printed {len(printed)} rows, not {rows}")
    return elapsed


def rows(
    *,
    quick: bool = False,
    agents: int | None = None,
    entries: int | None = None,
    rounds: int | None = None,
    target: float = TARGET,
) -> list[Row]:
    """``agentops status --json`` against ``agentops list --json``, over the same agents."""
    agents = agents or (20 if quick else 500)
    entries = entries or 2000
    rounds = rounds or (1 if quick else 10)
    agentops = agentops_executable()
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # the disk agentops would use
        home = Path(tmp)
        names = build_home(home, agents, entries, datetime.now(UTC))
        status = [agentops, "--home", str(home), "status", "--json"]
        listing = [agentops, "--home", str(home), "list", "--json"]
        for command in (status, listing):  # warm the page cache and the .pyc files
            printed_s(command, len(names))
        status_s, list_s = alternate(
            rounds,
            lambda: printed_s(listing, len(names)),
            lambda: printed_s(status, len(names)),
        )
    return [
        ratio_row(
            "status",
            f"agentops status --json, {agents:,} agents x {entries:,} ledger entries",
            status_s,
            "agentops list --json",
            list_s,
            target=target,
        )
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, help="agents in the home (default 500)")
    parser.add_argument("--entries", type=int, help="ledger entries of each agent (default 2,000)")
    parser.add_argument("--rounds", type=int, help="measurements of each command (default 10)")
    parser.add_argument("--target", type=float, default=TARGET, help="highest acceptable ratio")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20 agents, one round")
    args = parser.parse_args()
    return report(
        rows(
            quick=args.quick,
            agents=args.agents,
            entries=args.entries,
            rounds=args.rounds,
            target=args.target,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
